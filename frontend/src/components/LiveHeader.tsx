import type { Project } from '../api';
import { Bulb } from './Bulb';
import { count, percent, seconds } from '../format';
import { Link, navigate, viewPath, type ProjectView } from '../router';
import type { ProjectEvents } from '../useProjectEvents';

export interface NavItem {
  view: ProjectView;
  label: string;
}

export const NAV: NavItem[] = [
  { view: 'label', label: 'Label' },
  { view: 'batches', label: 'Batches' },
  { view: 'charts', label: 'Charts' },
  { view: 'items', label: 'Dataset' },
  { view: 'score', label: 'Score' },
  { view: 'export', label: 'Export' },
];

const CONNECTION_TEXT = { live: 'Live', polling: 'Polling', connecting: 'Connecting…' } as const;

export function LiveHeader(props: {
  projects: Project[];
  project: Project;
  view: ProjectView;
  events: ProjectEvents;
  /** The project's views to link (default: all of embedded mode's). */
  nav?: NavItem[];
  /** Hosted mode shows the brand in its own bar above. */
  brand?: boolean;
}) {
  const { projects, project, view, events, nav = NAV, brand = true } = props;
  const stats = events.stats;
  const embedding = stats?.embedding;
  const embeddingBusy = embedding && embedding.total > 0 && embedding.done < embedding.total;
  const readyBatches = stats?.auto_label?.ready_batches ?? 0;

  return (
    <header className="topbar">
      <div className="topbar__row">
        {brand && (
          <a className="brand" href="/" aria-label="Lightbulb home">
            <Bulb /> Lightbulb
          </a>
        )}
        {projects.length > 1 ? (
          <label className="project-picker">
            <span className="visually-hidden">Project</span>
            <select value={project.id} onChange={(e) => navigate(viewPath(e.target.value, view))}>
              {projects.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.title || p.id}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <span className="project-title">{project.title || project.id}</span>
        )}
        <nav aria-label="Views" className="nav">
          {nav.map((item) => (
            <Link
              key={item.view}
              to={viewPath(project.id, item.view)}
              current={item.view === view}
              className="nav__link"
              testId={`nav-${item.view}`}
            >
              {item.label}
              {item.view === 'batches' && readyBatches > 0 && (
                <span className="badge" aria-label={`${readyBatches} ready`}>
                  {readyBatches}
                </span>
              )}
            </Link>
          ))}
        </nav>
      </div>
      <dl className="live" aria-label="Project status" data-testid="live-header">
        <div>
          <dt>Labelled</dt>
          <dd data-testid="header-labelled">
            {stats ? `${count(stats.counts.labelled)} / ${count(stats.counts.total)}` : '—'}
            {stats && stats.counts.model_labelled > 0 && (
              <span className="muted"> + {count(stats.counts.model_labelled)} confirmed</span>
            )}
          </dd>
        </div>
        <div>
          <dt>Accuracy</dt>
          <dd data-testid="header-accuracy" title="Measured on randomly drawn test items the model never trains on; 95 % interval">
            {stats?.accuracy ? (
              <>
                <strong>{percent(stats.accuracy.value)}</strong>{' '}
                <span className="muted">
                  ({percent(stats.accuracy.low)}–{percent(stats.accuracy.high)}, {stats.accuracy.test_labels} test labels)
                </span>
              </>
            ) : (
              <span className="muted">— (needs test labels)</span>
            )}
          </dd>
        </div>
        <div>
          <dt>Training</dt>
          <dd data-testid="header-training">
            {stats?.training ? (
              <span className="training">
                <span className="pulse" aria-hidden="true" /> Yes
              </span>
            ) : (
              'No'
            )}
          </dd>
        </div>
        <div>
          <dt>Time per label</dt>
          <dd data-testid="header-time">{seconds(stats?.median_seconds_per_label)}</dd>
        </div>
        <div>
          <dt>Model</dt>
          <dd data-testid="header-model">{stats?.model_version ? `v${stats.model_version}` : 'none yet'}</dd>
        </div>
        {embeddingBusy && (
          <div>
            <dt>Embedding</dt>
            <dd data-testid="header-embedding">
              <progress max={embedding.total} value={embedding.done} aria-label="Embedding progress" />{' '}
              {count(embedding.done)} / {count(embedding.total)}
            </dd>
          </div>
        )}
        <div className="live__connection">
          <dt className="visually-hidden">Updates</dt>
          <dd>
            <span
              className={`connection connection--${events.connection}`}
              title={
                events.connection === 'polling'
                  ? 'The live connection is down; refreshing every few seconds while reconnecting'
                  : undefined
              }
              data-testid="header-connection"
            >
              {CONNECTION_TEXT[events.connection]}
            </span>
          </dd>
        </div>
      </dl>
    </header>
  );
}
