import { useCallback, useEffect, useState } from 'react';

import { api, describeError, type Batch, type ConfirmResponse, type Project } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { ItemContent } from '../components/ItemContent';
import { percent } from '../format';
import type { ProjectEvents } from '../useProjectEvents';

const SIZES = [24, 50, 100, 200];

interface Result extends ConfirmResponse {
  class: string;
}

export function BatchView(props: { project: Project; events: ProjectEvents }) {
  const { project, events } = props;
  const [size, setSize] = useState(50);
  // undefined while loading; null when the server has no batch ready.
  const [batch, setBatch] = useState<Batch | null | undefined>(undefined);
  const [rejected, setRejected] = useState<Set<number>>(new Set());
  const [corrections, setCorrections] = useState<Map<number, string>>(new Map());
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);

  const load = useCallback(async () => {
    setBatch(undefined);
    setRejected(new Set());
    setCorrections(new Map());
    try {
      setBatch(await api.nextBatch(project.id, size));
    } catch (e) {
      setError(describeError(e));
      setBatch(null);
    }
  }, [project.id, size]);

  useEffect(() => {
    void load();
  }, [load]);

  // A batch became ready while the "none ready" page is up: show it.
  const readyAt = events.batchReady?.at;
  useEffect(() => {
    if (readyAt !== undefined && batch === null) void load();
    // Only a new event triggers this, not the batch changing.
  }, [readyAt]);

  const toggle = (id: number) => {
    setRejected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
    setCorrections((current) => {
      if (!current.has(id)) return current;
      const next = new Map(current);
      next.delete(id);
      return next;
    });
  };

  const correct = (id: number, cls: string) => {
    setCorrections((current) => {
      const next = new Map(current);
      if (cls) next.set(id, cls);
      else next.delete(id);
      return next;
    });
  };

  const submit = async () => {
    if (!batch) return;
    setSubmitting(true);
    setError(null);
    try {
      // A corrected item is labelled with its correction, so it is not also "rejected".
      const body = {
        rejected: [...rejected].filter((id) => !corrections.has(id)),
        corrections: Object.fromEntries([...corrections].map(([id, cls]) => [String(id), cls])),
      };
      const response = await api.confirmBatch(project.id, batch.id, body);
      setResult({ ...response, class: batch.class });
      events.refresh();
      await load();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setSubmitting(false);
    }
  };

  const autoLabel = events.stats?.auto_label;
  const accepted = batch ? batch.items.length - rejected.size : 0;

  return (
    <section className="batch-view" aria-labelledby="batch-title" data-testid="batch-view">
      <div className="view-head">
        <h1 id="batch-title">{batch ? `Is each of these “${batch.class}”?` : 'Confirm what the model labelled'}</h1>
        <p className="muted">
          The model is sure of these items (above {percent(autoLabel?.threshold ?? project.auto_label_threshold)}
          {autoLabel?.expected_precision != null && `, measured precision ${percent(autoLabel.expected_precision, 1)}`}
          ). All are selected: click the wrong ones to deselect them, then confirm.
        </p>
        <label className="inline-field">
          Batch size{' '}
          <select value={size} onChange={(e) => setSize(Number(e.target.value))}>
            {SIZES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
      </div>

      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      {result && (
        <p className="notice" role="status" data-testid="batch-result">
          Confirmed {result.confirmed} as “{result.class}”, corrected {result.corrected}, sent {result.rejected} back to the
          queue.
        </p>
      )}

      {batch === undefined && (
        <p className="loading" role="status">
          Loading batch…
        </p>
      )}
      {batch === null && (
        <div className="empty" data-testid="batch-empty">
          <h2>No batch ready</h2>
          <p>
            Batches appear once the model is confident about enough unlabelled items. Keep labelling; this page updates
            when one is ready.
          </p>
          <button type="button" onClick={() => void load()}>
            Check again
          </button>
        </div>
      )}
      {batch && (
        <>
          <ul className={`batch-grid batch-grid--${project.data_type}`} aria-label={`Items labelled ${batch.class}`}>
            {batch.items.map((item) => {
              const selected = !rejected.has(item.id);
              return (
                <li key={item.id} className={`batch-tile${selected ? '' : ' batch-tile--rejected'}`}>
                  <button
                    type="button"
                    className="batch-tile__toggle"
                    aria-pressed={selected}
                    onClick={() => toggle(item.id)}
                    data-testid="batch-item"
                    data-item-id={item.id}
                  >
                    <ItemContent project={project} item={item} size="thumb" />
                    <span className="batch-tile__prob">
                      {percent(item.probability)}
                      <span className="visually-hidden"> sure it is {batch.class}</span>
                    </span>
                  </button>
                  {!selected && (
                    <label className="batch-tile__correct">
                      <span className="visually-hidden">Correct class for {item.path}</span>
                      <select value={corrections.get(item.id) ?? ''} onChange={(e) => correct(item.id, e.target.value)}>
                        <option value="">back to queue</option>
                        {project.classes
                          .filter((cls) => cls !== batch.class)
                          .map((cls) => (
                            <option key={cls} value={cls}>
                              is {cls}
                            </option>
                          ))}
                      </select>
                    </label>
                  )}
                </li>
              );
            })}
          </ul>
          <div className="actions">
            <button
              type="button"
              className="primary"
              onClick={() => void submit()}
              disabled={submitting}
              data-testid="batch-confirm"
            >
              {submitting ? 'Saving…' : `Confirm ${accepted} as “${batch.class}”`}
            </button>
            <button type="button" onClick={() => setRejected(new Set())} disabled={submitting}>
              Select all
            </button>
            <button
              type="button"
              onClick={() => setRejected(new Set(batch.items.map((i) => i.id)))}
              disabled={submitting}
            >
              Deselect all
            </button>
            <span className="muted">
              {rejected.size} deselected, {corrections.size} corrected
            </span>
          </div>
        </>
      )}
    </section>
  );
}
