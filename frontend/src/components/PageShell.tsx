import type { ReactNode } from 'react';

/** The frame of a page: the skip link, the page's header(s), then the main content. */
export function PageShell(props: { header: ReactNode; children: ReactNode }) {
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      {props.header}
      <main id="main" className="page" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}
