import { useEffect } from 'react';

import type { Project, Role } from '../api';
import { canStartLabelling, StatusBadge } from '../components/StatusBadge';
import { Link, viewPath } from '../router';
import { canAdmin, canLabel } from '../roles';

const POLL_MS = 3_000;

/** Where a project's card leads: its progress while the dataset is prepared, else its work. */
export function projectHome(project: Project, role: Role): string {
  if (!canStartLabelling(project.status)) return viewPath(project.id, 'ingest');
  return viewPath(project.id, canLabel(role) ? 'label' : 'charts');
}

/** The organisation's projects with their status; admins and owners may create more. */
export function ProjectsView(props: { projects: Project[]; role: Role; organisation: string; reload: () => void }) {
  const { projects, role, organisation, reload } = props;
  const busy = projects.some((p) => p.status !== undefined && p.status !== 'ready' && p.status !== 'failed');

  useEffect(() => {
    document.title = 'Projects · Lightbulb';
    reload();
  }, [reload]);

  // Statuses move on their own while datasets are imported and embedded.
  useEffect(() => {
    if (!busy) return;
    const timer = window.setInterval(reload, POLL_MS);
    return () => window.clearInterval(timer);
  }, [busy, reload]);

  return (
    <section aria-labelledby="projects-title" data-testid="projects-view">
      <div className="page-head">
        <h1 id="projects-title">Projects{organisation && <span className="muted"> · {organisation}</span>}</h1>
        {canAdmin(role) && (
          <Link to="/projects/new" className="button primary" testId="new-project">
            New project
          </Link>
        )}
      </div>
      {projects.length === 0 ? (
        <div className="empty" data-testid="projects-empty">
          <h2>No projects yet</h2>
          <p>
            {canAdmin(role)
              ? 'Create one: upload a folder of images or text files and pick the classes.'
              : 'An admin of the organisation has not created any yet.'}
          </p>
        </div>
      ) : (
        <ul className="project-list" aria-label="Projects" data-testid="project-list">
          {projects.map((p) => (
            <li key={p.id} className="card" data-testid={`project-card-${p.id}`}>
              <h2>
                <Link to={projectHome(p, role)} testId={`project-${p.id}`}>
                  {p.title || p.id}
                </Link>
              </h2>
              <p className="muted">
                <code>{p.id}</code> · {p.data_type} · {p.classes.length} classes · {p.strategy}
              </p>
              <p className="project-links">
                <StatusBadge status={p.status} testId={`project-status-${p.id}`} />
                {p.status !== undefined && p.status !== 'ready' && (
                  <Link to={viewPath(p.id, 'ingest')}>Progress</Link>
                )}
                <Link to={viewPath(p.id, 'settings')}>Settings</Link>
                {canAdmin(role) && <Link to={viewPath(p.id, 'keys')}>API keys</Link>}
              </p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
