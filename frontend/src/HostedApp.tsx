// Hosted mode (docs/HOSTED.md): sign-in, organisations, projects created in the browser. Every
// page but sign-in, sign-up and invitations needs a session; a session for another user or
// organisation remounts the signed-in app, so nothing of the previous one is shown.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';

import {
  api,
  describeError,
  keepSessionFresh,
  session,
  type Me,
  type Project,
  type Role,
  type ServerInfo,
  type StoredSession,
} from './api';
import { ErrorMessage } from './components/ErrorMessage';
import { HostedBar } from './components/HostedBar';
import { LiveHeader } from './components/LiveHeader';
import { Loading, LoadingPage } from './components/Loading';
import { PageShell } from './components/PageShell';
import { RetryError } from './components/RetryError';
import { canStartLabelling } from './components/StatusBadge';
import { resetQueues } from './labelQueue';
import { Link, navigate, useRoute, viewPath, type ProjectView, type Route } from './router';
import { canAdmin, canLabel, projectNav } from './roles';
import { useProjectEvents } from './useProjectEvents';
import { AccountView } from './views/AccountView';
import { BatchView } from './views/BatchView';
import { ChartsView } from './views/ChartsView';
import { DatasetView } from './views/DatasetView';
import { ExportView } from './views/ExportView';
import { IngestView } from './views/IngestView';
import { InviteView } from './views/InviteView';
import { KeysView } from './views/KeysView';
import { LabelView } from './views/LabelView';
import { MembersView } from './views/MembersView';
import { NewProjectView } from './views/NewProjectView';
import { ProjectsView } from './views/ProjectsView';
import { ScoreView } from './views/ScoreView';
import { SettingsView } from './views/SettingsView';
import { SignInView } from './views/SignInView';
import { SignUpView } from './views/SignUpView';

const PUBLIC_PAGES = ['signin', 'signup', 'invite'];
/** How often the access token is checked for renewal (it is renewed 90 s before expiry). */
const FRESHNESS_CHECK_MS = 30_000;

/** Where to go after signing in: a path of this app only. */
function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/projects';
}

export function HostedApp(props: { server: ServerInfo }) {
  const route = useRoute();
  const current = useSyncExternalStore(session.subscribe, session.get);
  const signedIn = current !== null;
  const identity = current ? `${current.user_id}:${current.organisation_id}` : '';

  // Another caller (or organisation): the labelling queues of the previous one go.
  const lastIdentity = useRef(identity);
  if (lastIdentity.current !== identity) {
    lastIdentity.current = identity;
    resetQueues();
  }

  const next = route.search.get('next');
  useEffect(() => {
    if (!signedIn && !PUBLIC_PAGES.includes(route.page)) {
      const here = window.location.pathname + window.location.search;
      const keepHere = route.page !== 'home' && route.page !== 'projects';
      navigate(keepHere ? `/signin?next=${encodeURIComponent(here)}` : '/signin', { replace: true });
    } else if (signedIn && (route.page === 'signin' || route.page === 'signup')) {
      navigate(safeNext(next), { replace: true });
    } else if (signedIn && route.page === 'home') {
      navigate('/projects', { replace: true });
    }
  }, [signedIn, route.page, next]);

  if (route.page === 'invite' && route.token) return <InviteView token={route.token} />;
  if (!current) {
    if (route.page === 'signup') return <SignUpView next={next} />;
    return <SignInView next={next} />;
  }
  if (route.page === 'signin' || route.page === 'signup' || route.page === 'home') return <LoadingPage />;
  return <Workspace key={identity} server={props.server} current={current} route={route} />;
}

/** The signed-in app for one user in one organisation. */
function Workspace(props: { server: ServerInfo; current: StoredSession; route: Route }) {
  const { server, current, route } = props;
  const [me, setMe] = useState<Me | null>(null);
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reloadProjects = useCallback(
    () =>
      api.projects().then(
        (list) => {
          setProjects(list);
          setError(null);
        },
        (e: unknown) => setError(describeError(e)),
      ),
    [],
  );

  useEffect(() => {
    api.me().then(setMe, (e: unknown) => setError(describeError(e)));
    void reloadProjects();
  }, [reloadProjects]);

  // Renew the access token ahead of expiry: image, download and WebSocket URLs carry it.
  useEffect(() => {
    const timer = window.setInterval(() => void keepSessionFresh().catch(() => {}), FRESHNESS_CHECK_MS);
    return () => window.clearInterval(timer);
  }, []);

  const role: Role = me?.role ?? current.role;
  const bar = <HostedBar me={me} role={role} current={current} page={route.page} />;

  const page = (body: ReactNode) => <PageShell header={bar}>{body}</PageShell>;

  if (!projects) {
    return page(
      error ? (
        <RetryError error={`Could not load the projects: ${error}`} onRetry={() => void reloadProjects()} />
      ) : (
        <Loading />
      ),
    );
  }

  switch (route.page) {
    case 'new-project':
      return page(
        canAdmin(role) ? <NewProjectView server={server} onCreated={() => void reloadProjects()} /> : <NotAllowed what="create projects" />,
      );
    case 'members':
      return page(canAdmin(role) ? <MembersView me={me} role={role} /> : <NotAllowed what="manage members" />);
    case 'account':
      return page(<AccountView me={me} />);
    case 'project':
      return (
        <ProjectArea
          server={server}
          pid={route.pid!}
          view={route.view}
          search={route.search}
          projects={projects}
          role={role}
          reload={reloadProjects}
          page={page}
          bar={bar}
        />
      );
    case 'unknown':
      return page(
        <div className="empty" data-testid="page-not-found">
          <h1>No such page</h1>
          <p>
            <Link to="/projects">See the projects</Link>
          </p>
        </div>,
      );
    default:
      return page(
        <>
          <ErrorMessage error={error} onDismiss={() => setError(null)} />
          <ProjectsView
            projects={projects}
            role={role}
            organisation={me?.organisation_name || me?.organisation || ''}
            reload={reloadProjects}
          />
        </>,
      );
  }
}

function NotAllowed(props: { what: string }) {
  return (
    <div className="empty" data-testid="not-allowed">
      <h1>Not for your role</h1>
      <p>Only admins and owners {props.what}.</p>
      <p>
        <Link to="/projects">See the projects</Link>
      </p>
    </div>
  );
}

function ProjectArea(props: {
  server: ServerInfo;
  pid: string;
  view: ProjectView;
  search: URLSearchParams;
  projects: Project[];
  role: Role;
  reload: () => Promise<void>;
  page: (body: ReactNode) => ReactNode;
  bar: ReactNode;
}) {
  const { server, pid, view, search, projects, role, reload, page, bar } = props;
  const project = projects.find((p) => p.id === pid);
  // A project missing from the list may be new (made in another tab): ask once more.
  const [checked, setChecked] = useState<string | null>(null);
  useEffect(() => {
    if (project || checked === pid) return;
    let live = true;
    void reload().finally(() => live && setChecked(pid));
    return () => {
      live = false;
    };
  }, [pid, project, checked, reload]);
  const onStatus = useCallback(() => void reload(), [reload]);

  if (!project) {
    if (checked !== pid) return page(<Loading />);
    return page(
      <div data-testid="project-not-found">
        <div className="error" role="alert">
          <span>There is no project “{pid}” in this organisation.</span>
        </div>
        <p>
          <Link to="/projects">See the projects</Link>
        </p>
      </div>,
    );
  }
  if (view === 'ingest') return page(<IngestView server={server} project={project} role={role} onStatus={onStatus} />);
  return <ProjectPage project={project} projects={projects} view={view} search={search} role={role} bar={bar} reload={reload} />;
}

function ProjectPage(props: {
  project: Project;
  projects: Project[];
  view: ProjectView;
  search: URLSearchParams;
  role: Role;
  bar: ReactNode;
  reload: () => Promise<void>;
}) {
  const { project, projects, view, search, role, bar, reload } = props;
  // No live stats before the dataset is indexed: there is nothing to count yet.
  const events = useProjectEvents(canStartLabelling(project.status) ? project.id : null);

  useEffect(() => {
    document.title = `${project.title || project.id} · Lightbulb`;
  }, [project]);

  const notYet = !canStartLabelling(project.status) && ['label', 'batches'].includes(view);
  // The list's status may be a little behind the import: check again until labelling opens.
  useEffect(() => {
    if (!notYet) return;
    const timer = window.setInterval(() => void reload(), 2_000);
    return () => window.clearInterval(timer);
  }, [notYet, reload]);
  const body = (() => {
    if (notYet) {
      return (
        <div className="empty" data-testid="not-ready">
          <h1>The dataset is not ready yet</h1>
          <p>
            Labelling opens once its items are being embedded.{' '}
            <Link to={viewPath(project.id, 'ingest')}>See the progress</Link>
          </p>
        </div>
      );
    }
    switch (view) {
      case 'label':
        return canLabel(role) ? <LabelView project={project} /> : <RoleNotice project={project} what="label" />;
      case 'batches':
        return canLabel(role) ? (
          <BatchView project={project} events={events} />
        ) : (
          <RoleNotice project={project} what="confirm batches" />
        );
      case 'charts':
        return <ChartsView stats={events.stats} />;
      case 'items':
        return <DatasetView project={project} search={search} />;
      case 'score':
        return <ScoreView project={project} />;
      case 'export':
        return canAdmin(role) ? (
          <ExportView project={project} stats={events.stats} />
        ) : (
          <RoleNotice project={project} what="export labels or models" />
        );
      case 'settings':
        return <SettingsView project={project} editable={canAdmin(role)} onSaved={() => void reload()} />;
      case 'keys':
        return canAdmin(role) ? <KeysView project={project} /> : <RoleNotice project={project} what="manage API keys" />;
      default:
        return null;
    }
  })();

  return (
    <PageShell
      header={
        <>
          {bar}
          <LiveHeader projects={projects} project={project} view={view} events={events} nav={projectNav(role)} brand={false} />
        </>
      }
    >
      {body}
    </PageShell>
  );
}

function RoleNotice(props: { project: Project; what: string }) {
  return (
    <div className="empty" data-testid="not-allowed">
      <h1>Not for your role</h1>
      <p>
        Your role in this organisation may not {props.what}.{' '}
        <Link to={viewPath(props.project.id, 'charts')}>See the charts</Link>
      </p>
    </div>
  );
}
