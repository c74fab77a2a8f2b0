import { useEffect, useState } from 'react';

import { api, describeError, type Project, type ServerInfo } from './api';
import { ErrorMessage } from './components/ErrorMessage';
import { Bulb } from './components/Bulb';
import { LiveHeader } from './components/LiveHeader';
import { LoadingPage } from './components/Loading';
import { PageShell } from './components/PageShell';
import { RetryError } from './components/RetryError';
import { HostedApp } from './HostedApp';
import { isEmbeddedView, Link, navigate, useRoute, viewPath, type View } from './router';
import { useProjectEvents } from './useProjectEvents';
import { BatchView } from './views/BatchView';
import { ChartsView } from './views/ChartsView';
import { DatasetView } from './views/DatasetView';
import { ExportView } from './views/ExportView';
import { LabelView } from './views/LabelView';
import { ScoreView } from './views/ScoreView';

/** Asks the server whether accounts are on: hosted mode signs in, embedded mode does not. */
export function App() {
  const [server, setServer] = useState<ServerInfo | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.server().then(setServer, (e: unknown) => setError(describeError(e)));
  }, []);

  if (error) return <StartFailed error={`Could not reach the server: ${error}`} />;
  if (!server) return <LoadingPage />;
  return server.accounts ? <HostedApp server={server} /> : <EmbeddedApp />;
}

/** What the app needs first did not load: say so, and offer to reload the page. */
function StartFailed(props: { error: string }) {
  return (
    <main className="page">
      <h1>Lightbulb</h1>
      <RetryError error={props.error} onRetry={() => window.location.reload()} />
    </main>
  );
}

/** Embedded mode: the config's projects, no sign-in, a labeller id per tab. */
function EmbeddedApp() {
  const route = useRoute();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.projects().then(setProjects, (e: unknown) => setError(describeError(e)));
  }, []);

  // One project (the embedded case): go straight to labelling it.
  const only = projects?.length === 1 ? projects[0] : undefined;
  useEffect(() => {
    if (only && route.pid === null) navigate(viewPath(only.id, 'label'), { replace: true });
  }, [only, route.pid]);

  if (error) return <StartFailed error={`Could not load the projects: ${error}`} />;
  if (!projects) return <LoadingPage />;
  const project = route.pid === null ? undefined : projects.find((p) => p.id === route.pid);
  if (!project) return <ProjectList projects={projects} unknown={route.pid} />;
  const view = isEmbeddedView(route.view) ? route.view : 'label';
  return <ProjectPage key={project.id} projects={projects} project={project} view={view} search={route.search} />;
}

function ProjectPage(props: { projects: Project[]; project: Project; view: View; search: URLSearchParams }) {
  const { projects, project, view, search } = props;
  const events = useProjectEvents(project.id);

  useEffect(() => {
    document.title = `${project.title || project.id} · Lightbulb`;
  }, [project]);

  return (
    <PageShell header={<LiveHeader projects={projects} project={project} view={view} events={events} />}>
      {view === 'label' && <LabelView project={project} />}
      {view === 'batches' && <BatchView project={project} events={events} />}
      {view === 'charts' && <ChartsView stats={events.stats} />}
      {view === 'items' && <DatasetView project={project} search={search} />}
      {view === 'score' && <ScoreView project={project} />}
      {view === 'export' && <ExportView project={project} stats={events.stats} />}
    </PageShell>
  );
}

function ProjectList(props: { projects: Project[]; unknown: string | null }) {
  return (
    <main className="page">
      <h1 className="brand">
        <Bulb /> Lightbulb
      </h1>
      {props.unknown !== null && <ErrorMessage error={`There is no project “${props.unknown}”.`} />}
      {props.projects.length === 0 ? (
        <p>No projects are configured.</p>
      ) : (
        <ul className="project-list" aria-label="Projects" data-testid="project-list">
          {props.projects.map((p) => (
            <li key={p.id} className="card">
              <h2>
                <Link to={viewPath(p.id, 'label')} testId={`project-${p.id}`}>
                  {p.title || p.id}
                </Link>
              </h2>
              <p className="muted">
                {p.data_type} · {p.classes.length} classes · {p.encoder} · {p.strategy}
              </p>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
