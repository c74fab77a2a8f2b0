// A small history router: the server answers index.html for every non-API path, so the
// browser's own URL is the route. Routes are `/projects/{pid}/{view}`.
import { useSyncExternalStore, type MouseEvent, type ReactNode } from 'react';

export const VIEWS = ['label', 'batches', 'charts', 'items', 'score', 'export'] as const;
export type View = (typeof VIEWS)[number];

export interface Route {
  pid: string | null;
  view: View;
  search: URLSearchParams;
}

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

export function parseRoute(url: string): Route {
  const [path = '/', search = ''] = url.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let pid: string | null = null;
  let view: View = 'label';
  if (parts[0] === 'projects' && parts[1]) {
    pid = parts[1];
    const candidate = parts[2] as View | undefined;
    if (candidate && (VIEWS as readonly string[]).includes(candidate)) view = candidate;
  }
  return { pid, view, search: new URLSearchParams(search) };
}

export function useRoute(): Route {
  const url = useSyncExternalStore(subscribe, snapshot);
  return parseRoute(url);
}

export const viewPath = (pid: string, view: View) => `/projects/${encodeURIComponent(pid)}/${view}`;

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
