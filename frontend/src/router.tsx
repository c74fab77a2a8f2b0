// A small history router: the server answers index.html for every non-API path, so the
// browser's own URL is the route. Routes are `/projects/{pid}/{view}`; with accounts (hosted
// mode) also `/signin`, `/signup`, `/invite/{token}`, `/projects`, `/projects/new`,
// `/projects/{pid}/{ingest,settings,keys}`, `/members` and `/account`.
import { useSyncExternalStore, type MouseEvent, type ReactNode } from 'react';

export const VIEWS = ['label', 'batches', 'charts', 'items', 'score', 'export'] as const;
export type View = (typeof VIEWS)[number];

/** Project pages of hosted mode only. */
export const HOSTED_VIEWS = ['ingest', 'settings', 'keys'] as const;
export type HostedView = (typeof HOSTED_VIEWS)[number];
export type ProjectView = View | HostedView;

export type Page =
  | 'home'
  | 'projects'
  | 'new-project'
  | 'project'
  | 'signin'
  | 'signup'
  | 'invite'
  | 'members'
  | 'account'
  | 'unknown';

export interface Route {
  page: Page;
  pid: string | null;
  view: ProjectView;
  search: URLSearchParams;
  /** The invitation token of `/invite/{token}`. */
  token: string | null;
}

export const isEmbeddedView = (view: ProjectView): view is View => (VIEWS as readonly string[]).includes(view);

const listeners = new Set<() => void>();
function subscribe(listener: () => void) {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}
const snapshot = () => window.location.pathname + window.location.search;

export function navigate(to: string, options: { replace?: boolean } = {}) {
  if (to === snapshot()) return;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  for (const listener of listeners) listener();
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function parseRoute(url: string): Route {
  const [path = '/', search = ''] = url.split('?');
  const parts = path.split('/').filter(Boolean).map(decode);
  let page: Page = 'unknown';
  let pid: string | null = null;
  let view: ProjectView = 'label';
  let token: string | null = null;
  if (parts.length === 0) {
    page = 'home';
  } else if (parts[0] === 'projects') {
    if (!parts[1]) {
      page = 'projects';
    } else {
      // `/projects/new` is the form; a project named "new" is still `/projects/new/{view}`.
      page = parts[1] === 'new' && parts.length === 2 ? 'new-project' : 'project';
      pid = parts[1];
      const candidate = parts[2] as ProjectView | undefined;
      if (candidate && ([...VIEWS, ...HOSTED_VIEWS] as readonly string[]).includes(candidate)) view = candidate;
    }
  } else if (parts.length === 1 && ['signin', 'signup', 'members', 'account'].includes(parts[0]!)) {
    page = parts[0] as Page;
  } else if (parts[0] === 'invite' && parts[1]) {
    page = 'invite';
    token = parts[1];
  }
  return { page, pid, view, search: new URLSearchParams(search), token };
}

export function useRoute(): Route {
  const url = useSyncExternalStore(subscribe, snapshot);
  return parseRoute(url);
}

export const viewPath = (pid: string, view: ProjectView) => `/projects/${encodeURIComponent(pid)}/${view}`;

/** An `<a>` that navigates without reloading; modified clicks still open new tabs. */
export function Link(props: {
  to: string;
  children: ReactNode;
  className?: string;
  current?: boolean;
  testId?: string;
}) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.to);
  };
  return (
    <a
      href={props.to}
      onClick={onClick}
      className={props.className}
      aria-current={props.current ? 'page' : undefined}
      data-testid={props.testId}
    >
      {props.children}
    </a>
  );
}
