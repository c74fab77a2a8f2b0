import { useEffect, useMemo, useSyncExternalStore, type CSSProperties } from 'react';

import type { Item, Project } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { ItemContent } from '../components/ItemContent';
import { classHue, percent } from '../format';
import { queueFor } from '../labelQueue';

const UNDO_KEYS = ['Backspace', 'ArrowLeft'];

/** Key → class, from the project's shortcuts, compared case-insensitively. */
function shortcutMap(project: Project): Map<string, string> {
  const map = new Map<string, string>();
  for (const [key, cls] of Object.entries(project.shortcuts ?? {})) map.set(key.toLowerCase(), cls);
  return map;
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

export function LabelView(props: { project: Project }) {
  const { project } = props;
  const queue = queueFor(project);
  const state = useSyncExternalStore(queue.subscribe, queue.getSnapshot);
  const shortcuts = useMemo(() => shortcutMap(project), [project]);
  // "s" skips too, unless a class uses it.
  const skipKeys = useMemo(() => (shortcuts.has('s') ? ['ArrowRight'] : ['ArrowRight', 's']), [shortcuts]);
  const keyOf = useMemo(() => {
    const byClass = new Map<string, string>();
    for (const [key, cls] of shortcuts) if (!byClass.has(cls)) byClass.set(cls, key);
    return byClass;
  }, [shortcuts]);

  useEffect(() => {
    queue.start();
    queue.resume();
    const onVisibility = () => (document.hidden ? queue.pause() : queue.resume());
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      queue.pause();
    };
  }, [queue]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented || isTyping(event.target)) return;
      if (event.repeat) return; // a held key must not label a run of items
      const key = event.key;
      if ((event.ctrlKey || event.metaKey) && key.toLowerCase() === 'z' && !event.shiftKey) {
        event.preventDefault();
        queue.undo();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (UNDO_KEYS.includes(key)) {
        event.preventDefault();
        queue.undo();
        return;
      }
      if (skipKeys.includes(key.length === 1 ? key.toLowerCase() : key)) {
        event.preventDefault();
        queue.skip();
        return;
      }
      const cls = shortcuts.get(key.toLowerCase());
      if (cls !== undefined && queue.getSnapshot().current) {
        event.preventDefault();
        queue.label(cls);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [queue, shortcuts, skipKeys]);

  const item = state.current;
  return (
    <section className="label-view" aria-labelledby="task-title" data-testid="label-view">
      <div className="task">
        <h1 id="task-title">{project.title || 'Label the item'}</h1>
        {project.description && (
          // The description is the project owner's HTML from the task config.
          <div className="task__description" dangerouslySetInnerHTML={{ __html: project.description }} />
        )}
      </div>

      <ErrorMessage error={state.error} />
      {state.notice && (
        <p className="notice" role="status">
          {state.notice}
        </p>
      )}

      <div className={`stage-area stage-area--${project.data_type}`}>
        {item ? (
          <CurrentItem project={project} item={item} restoredLabel={state.restoredLabel} />
        ) : state.done ? (
          <div className="empty" data-testid="label-done">
            <h2>You're done</h2>
            <p>Every item is labelled or leased to someone else. Check the batches to confirm what the model labelled.</p>
            <button type="button" onClick={() => queue.retry()}>
              Check for more items
            </button>
          </div>
        ) : state.starved ? (
          <div className="empty" data-testid="label-starved">
            <h2>No items free right now</h2>
            <p>Other labellers hold the remaining items. Trying again every few seconds.</p>
            <button type="button" onClick={() => queue.retry()}>
              Try now
            </button>
          </div>
        ) : (
          <p className="loading" role="status" data-testid="label-loading">
            Loading items…
          </p>
        )}
      </div>

      <div className="class-buttons" role="group" aria-label="Classes">
        {project.classes.map((cls, index) => {
          const key = keyOf.get(cls);
          return (
            <button
              key={cls}
              type="button"
              className="class-button"
              style={{ '--hue': classHue(index) } as CSSProperties}
              disabled={!item}
              onClick={() => queue.label(cls)}
              aria-keyshortcuts={key}
              data-testid={`class-${cls}`}
            >
              <span className="visually-hidden">Label as </span>
              <span className="class-button__name">{cls}</span>
              {key && <kbd aria-hidden="true">{key}</kbd>}
            </button>
          );
        })}
      </div>

      <div className="actions">
        <button type="button" onClick={() => queue.undo()} aria-keyshortcuts="Control+Z Backspace ArrowLeft" data-testid="undo">
          Undo <kbd aria-hidden="true">⌫</kbd> <kbd aria-hidden="true">Ctrl Z</kbd>
        </button>
        <button
          type="button"
          onClick={() => queue.skip()}
          disabled={!item}
          aria-keyshortcuts={skipKeys.map((k) => (k === 's' ? 'S' : k)).join(' ')}
          data-testid="skip"
        >
          Skip <kbd aria-hidden="true">→</kbd>
          {skipKeys.includes('s') && <kbd aria-hidden="true">S</kbd>}
        </button>
        <span className="muted session-count" data-testid="session-count">
          {state.labelledThisSession} labelled in this tab · {state.upcoming.length} queued
        </span>
      </div>
    </section>
  );
}

function CurrentItem(props: { project: Project; item: Item; restoredLabel: string | null }) {
  const { project, item, restoredLabel } = props;
  const prediction = item.prediction;
  const confidence = prediction ? prediction.probabilities[prediction.label] : undefined;
  return (
    <figure className="current" data-testid="current-item" data-item-id={item.id} data-item-path={item.path}>
      <div className="current__content">
        <ItemContent project={project} item={item} size="large" />
      </div>
      <figcaption className="current__caption">
        <span className="muted">{item.path}</span>
        {restoredLabel !== null && (
          <span className="restored" data-testid="restored-label">
            Undone — it was labelled “{restoredLabel}”
          </span>
        )}
        {prediction ? (
          <span className="prediction" data-testid="prediction" data-label={prediction.label}>
            model guess: {prediction.label}
            {confidence !== undefined && ` (${percent(confidence)})`}
          </span>
        ) : (
          item.stage === 'test' && <span className="muted">test item: no model guess</span>
        )}
      </figcaption>
    </figure>
  );
}
