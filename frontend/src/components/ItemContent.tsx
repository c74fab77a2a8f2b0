import { useState, type SyntheticEvent } from 'react';

import type { Project } from '../api';
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

  if (project.data_type === 'images') {
    // Tiny images (digits, icons) are scaled up without blur.
    const onLoad = (event: SyntheticEvent<HTMLImageElement>) => {
      const img = event.currentTarget;
      setPixelated(img.naturalWidth > 0 && img.naturalWidth <= 96);
    };
    return (
      <img
        key={item.id}
        className={`item-image item-image--${size}${pixelated ? ' pixelated' : ''}`}
        src={item.content_url}
        alt={`Item ${item.path}`}
        loading={size === 'thumb' ? 'lazy' : 'eager'}
        decoding="async"
        onLoad={onLoad}
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
