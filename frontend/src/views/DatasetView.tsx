import { useEffect, useState, type FormEvent } from 'react';

import { api, describeError, withToken, type ItemFilter, type ItemPage, type ItemStatus, type Project } from '../api';
import { DataTable } from '../components/DataTable';
import { ErrorMessage } from '../components/ErrorMessage';
import { ItemContent } from '../components/ItemContent';
import { count, percent } from '../format';
import { navigate, viewPath } from '../router';

const STATUSES: { value: ItemStatus; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'labelled', label: 'Labelled' },
  { value: 'unlabelled', label: 'Unlabelled' },
  { value: 'test', label: 'Test stage' },
  { value: 'model_labelled', label: 'Confirmed from batches' },
];
const PER_PAGE = [25, 50, 100];

/** The filter lives in the URL, so a filtered view can be reloaded or shared. */
function filterFrom(search: URLSearchParams): ItemFilter {
  const num = (key: string) => {
    const v = search.get(key);
    return v === null || v === '' || Number.isNaN(Number(v)) ? undefined : Number(v);
  };
  const str = (key: string) => search.get(key) || undefined;
  const status = search.get('status');
  return {
    status: STATUSES.some((s) => s.value === status) ? (status as ItemStatus) : 'all',
    label: str('label'),
    predicted: str('predicted'),
    min_confidence: num('min_confidence'),
    max_confidence: num('max_confidence'),
    q: str('q'),
    page: num('page') ?? 1,
    per_page: num('per_page') ?? 50,
  };
}

function searchOf(filter: ItemFilter): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) {
    if (value === undefined || value === '' || (key === 'status' && value === 'all')) continue;
    if ((key === 'page' && value === 1) || (key === 'per_page' && value === 50)) continue;
    params.set(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** A filter on one of the project's classes ("any": no filter). */
function ClassFilter(props: {
  label: string;
  classes: string[];
  value: string | undefined;
  onChange: (cls: string | undefined) => void;
}) {
  return (
    <label>
      {props.label}
      <select value={props.value ?? ''} onChange={(e) => props.onChange(e.target.value || undefined)}>
        <option value="">any</option>
        {props.classes.map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    </label>
  );
}

export function DatasetView(props: { project: Project; search: URLSearchParams }) {
  const { project } = props;
  const filter = filterFrom(props.search);
  const key = searchOf(filter);
  const [page, setPage] = useState<ItemPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  // Text fields apply on submit; selects apply at once.
  const [q, setQ] = useState(filter.q ?? '');
  const [minC, setMinC] = useState(filter.min_confidence?.toString() ?? '');
  const [maxC, setMaxC] = useState(filter.max_confidence?.toString() ?? '');

  useEffect(() => {
    const controller = new AbortController();
    setLoading(true);
    api.items(project.id, filterFrom(new URLSearchParams(key)), controller.signal).then(
      (result) => {
        setPage(result);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (controller.signal.aborted) return;
        setError(describeError(e));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [project.id, key]);

  const apply = (patch: Partial<ItemFilter>) => {
    const next = { ...filter, page: 1, ...patch };
    navigate(viewPath(project.id, 'items') + searchOf(next), { replace: true });
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const conf = (v: string) => (v.trim() === '' || Number.isNaN(Number(v)) ? undefined : Number(v));
    apply({ q: q.trim() || undefined, min_confidence: conf(minC), max_confidence: conf(maxC) });
  };

  const reset = () => {
    setQ('');
    setMinC('');
    setMaxC('');
    navigate(viewPath(project.id, 'items'), { replace: true });
  };

  const pages = page ? Math.max(1, Math.ceil(page.total / page.per_page)) : 1;
  const current = page?.page ?? filter.page ?? 1;

  return (
    <section className="dataset-view" aria-labelledby="dataset-title" data-testid="dataset-view">
      <h1 id="dataset-title">Dataset</h1>
      <form className="filters" onSubmit={onSubmit} aria-label="Filter items">
        <label>
          Status
          <select value={filter.status} onChange={(e) => apply({ status: e.target.value as ItemStatus })}>
            {STATUSES.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </label>
        <ClassFilter label="Label" classes={project.classes} value={filter.label} onChange={(label) => apply({ label })} />
        <ClassFilter
          label="Predicted"
          classes={project.classes}
          value={filter.predicted}
          onChange={(predicted) => apply({ predicted })}
        />
        <label>
          Min confidence
          <input type="number" min={0} max={1} step={0.01} value={minC} onChange={(e) => setMinC(e.target.value)} placeholder="0" />
        </label>
        <label>
          Max confidence
          <input type="number" min={0} max={1} step={0.01} value={maxC} onChange={(e) => setMaxC(e.target.value)} placeholder="1" />
        </label>
        <label className="filters__search">
          Search
          <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="text or path" />
        </label>
        <div className="filters__buttons">
          <button type="submit" className="primary">
            Apply
          </button>
          <button type="button" onClick={reset}>
            Reset
          </button>
        </div>
      </form>

      <ErrorMessage error={error} />

      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={current <= 1 || loading} onClick={() => apply({ page: current - 1 })}>
          ← Previous
        </button>
        <span aria-live="polite">
          Page {current} of {pages} · {page ? count(page.total) : '…'} items
        </span>
        <button type="button" disabled={current >= pages || loading} onClick={() => apply({ page: current + 1 })}>
          Next →
        </button>
        <label className="inline-field">
          Per page{' '}
          <select value={filter.per_page} onChange={(e) => apply({ per_page: Number(e.target.value) })}>
            {PER_PAGE.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </nav>

      {page && page.items.length === 0 && <p className="empty">No items match.</p>}
      {page && page.items.length > 0 && (
        <DataTable
          columns={['Item', 'Path', 'Label', 'By', 'Stage', 'Predicted', 'Confidence']}
          className={`items-table items-table--${project.data_type}`}
          busy={loading}
        >
          {page.items.map((item) => (
            <tr key={item.id}>
              <td className="items-table__content">
                <ItemContent project={project} item={item} size="thumb" />
              </td>
              <td>
                <a href={withToken(item.content_url)} target="_blank" rel="noreferrer">
                  {item.path}
                </a>
              </td>
              <td>{item.label ?? <span className="muted">—</span>}</td>
              <td>{item.labelled_by ?? ''}</td>
              <td>{item.stage ?? ''}</td>
              <td>{item.predicted ?? <span className="muted">—</span>}</td>
              <td>{percent(item.confidence)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
