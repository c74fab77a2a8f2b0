import { useState, type SyntheticEvent } from 'react';

import { accountsEnabled, keepSessionFresh, withToken, type Project } from '../api';
import { renderTemplate } from '../template';

export interface Content {
  id: number;
  path: string;
  content_url: string;
  text: string | null;
  data?: Record<string, unknown> | null;
}

/** An item as its data type shows it: an image, a text, or a JSON item through the template. */
export function ItemContent(props: { project: Project; item: Content; size: 'large' | 'thumb' }) {
  const { project, item, size } = props;
  const [pixelated, setPixelated] = useState(false);
  // With accounts the image URL carries the access token: one that failed may have expired, so
  // renew it and render the URL again, once.
  const [renewedFor, setRenewedFor] = useState<number | null>(null);

  if (project.data_type === 'images') {
    // Tiny images (digits, icons) are scaled up without blur.
    const onLoad = (event: SyntheticEvent<HTMLImageElement>) => {
      const img = event.currentTarget;
      setPixelated(img.naturalWidth > 0 && img.naturalWidth <= 96);
    };
    const onError = () => {
      if (renewedFor === item.id || !accountsEnabled()) return;
      const id = item.id;
      void keepSessionFresh().finally(() => setRenewedFor(id));
    };
    return (
      <img
        key={item.id}
        className={`item-image item-image--${size}${pixelated ? ' pixelated' : ''}`}
        src={withToken(item.content_url)}
        alt={`Item ${item.path}`}
        loading={size === 'thumb' ? 'lazy' : 'eager'}
        decoding="async"
        onLoad={onLoad}
        onError={onError}
      />
    );
  }
  if (project.data_type === 'json' && item.data) {
    if (project.template) {
      return (
        <div
          className={`item-json item-json--${size}`}
          // The template is the project owner's HTML; every value in it is escaped.
          dangerouslySetInnerHTML={{ __html: renderTemplate(project.template, item.data) }}
        />
      );
    }
    return <pre className={`item-json item-json--${size}`}>{JSON.stringify(item.data, null, 2)}</pre>;
  }
  return <p className={`item-text item-text--${size}`}>{item.text ?? item.path}</p>;
}
