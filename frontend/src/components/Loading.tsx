import type { ReactNode } from 'react';

/** A "Loading…" line, announced to screen readers. */
export function Loading(props: { children?: ReactNode }) {
  return (
    <p className="loading" role="status">
      {props.children ?? 'Loading…'}
    </p>
  );
}

/** A whole page that is still loading. */
export function LoadingPage() {
  return (
    <main className="page">
      <Loading />
    </main>
  );
}
