import type { MouseEvent, ReactNode } from 'react';

import { accountsEnabled, freshUrl } from '../api';

/** A download link. With accounts its URL carries the access token (links send no headers),
 * renewed at the click if it is about to expire. */
export function DownloadLink(props: { href: string; children: ReactNode; className?: string; testId?: string }) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (!accountsEnabled() || event.defaultPrevented || event.button !== 0) return;
    event.preventDefault();
    const bare = new URL(props.href, window.location.origin);
    bare.searchParams.delete('access_token');
    void freshUrl(bare.pathname + bare.search).then((url) => {
      const a = document.createElement('a');
      a.href = url;
      a.download = '';
      document.body.append(a);
      a.click();
      a.remove();
    });
  };
  return (
    <a className={props.className} href={props.href} download onClick={onClick} data-testid={props.testId}>
      {props.children}
    </a>
  );
}
