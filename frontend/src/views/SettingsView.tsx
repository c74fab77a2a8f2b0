import { useEffect, useState, type FormEvent } from 'react';

import { api, describeError, formError, STRATEGIES, type Labeller, type Project, type ProjectSettings } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { count, percent, seconds } from '../format';
import { strategyText } from './NewProjectView';

/** `/projects/{pid}/settings`: title, instructions, auto-label threshold and strategy (editable by
 * admins and owners, read-only for others), and how each labeller is doing. */
export function SettingsView(props: { project: Project; editable: boolean; onSaved: () => void }) {
  const { project, editable, onSaved } = props;
  const [saved, setSaved] = useState<ProjectSettings | null>(null);
  const [draft, setDraft] = useState<ProjectSettings | null>(null);
  const [threshold, setThreshold] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    document.title = `${project.title || project.id}: settings · Lightbulb`;
  }, [project]);

  useEffect(() => {
    let live = true;
    api.settings(project.id).then(
      (s) => {
        if (!live) return;
        setSaved(s);
        setDraft(s);
        setThreshold(String(s.auto_label_threshold));
      },
      (e: unknown) => live && setError(describeError(e)),
    );
    return () => {
      live = false;
    };
  }, [project.id]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!draft || !saved) return;
    const limit = Number(threshold);
    if (!(limit >= 0.5 && limit <= 1)) return setError('The auto-label threshold is between 0.5 and 1.');
    // Only what changed: the strategy, say, applies from the next ranking of the queue.
    const patch: Partial<ProjectSettings> = {};
    if (draft.title !== saved.title) patch.title = draft.title;
    if (draft.description !== saved.description) patch.description = draft.description;
    if (limit !== saved.auto_label_threshold) patch.auto_label_threshold = limit;
    if (draft.strategy !== saved.strategy) patch.strategy = draft.strategy;
    if (Object.keys(patch).length === 0) return setNotice('Nothing changed.');
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const fresh = await api.updateSettings(project.id, patch);
      setSaved(fresh);
      setDraft(fresh);
      setThreshold(String(fresh.auto_label_threshold));
      setNotice('Saved.');
      onSaved();
    } catch (e) {
      setError(formError(e));
    } finally {
      setBusy(false);
    }
  };

  const edit = (patch: Partial<ProjectSettings>) => setDraft((d) => d && { ...d, ...patch });
  const readOnly = !editable || busy;
  const strategies: string[] = [...STRATEGIES];
  if (draft && !strategies.includes(draft.strategy)) strategies.push(draft.strategy);

  return (
    <section aria-labelledby="settings-title" data-testid="settings-view">
      <h1 id="settings-title">Settings</h1>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      {notice && (
        <p className="notice" role="status" data-testid="settings-notice">
          {notice}
        </p>
      )}
      {!draft ? (
        !error && (
          <p className="loading" role="status">
            Loading…
          </p>
        )
      ) : (
        <form className="card form" onSubmit={(e) => void submit(e)} aria-label="Project settings">
          {!editable && <p className="muted">Only admins and owners change these.</p>}
          <p className="muted">
            <code>{project.id}</code> · {project.data_type} · {project.encoder} · classes: {project.classes.join(', ')}
          </p>
          <label className="block-field">
            Title
            <input
              type="text"
              value={draft.title}
              onChange={(e) => edit({ title: e.target.value })}
              readOnly={readOnly}
              data-testid="settings-title"
            />
          </label>
          <label className="block-field">
            <span>
              Instructions for labellers <span className="muted">(HTML)</span>
            </span>
            <textarea
              rows={4}
              value={draft.description}
              onChange={(e) => edit({ description: e.target.value })}
              readOnly={readOnly}
              data-testid="settings-description"
            />
          </label>
          <div className="form-grid">
            <label className="block-field">
              <span>
                Auto-label threshold <span className="muted">(0.5–1)</span>
              </span>
              <input
                type="number"
                min={0.5}
                max={1}
                step={0.01}
                value={threshold}
                onChange={(e) => setThreshold(e.target.value)}
                readOnly={readOnly}
                data-testid="settings-threshold"
              />
            </label>
            <label className="block-field">
              Next items by
              <select
                value={draft.strategy}
                onChange={(e) => edit({ strategy: e.target.value })}
                disabled={readOnly}
                data-testid="settings-strategy"
              >
                {strategies.map((s) => (
                  <option key={s} value={s}>
                    {strategyText(s)}
                  </option>
                ))}
              </select>
            </label>
          </div>
          {editable && (
            <div className="actions">
              <button type="submit" className="primary" disabled={busy} data-testid="settings-save">
                Save
              </button>
            </div>
          )}
        </form>
      )}
      <Labellers pid={project.id} />
    </section>
  );
}

/** An agreement share with the number of items it was measured on. */
function agreement(share: number | null, compared: number) {
  if (share === null || compared === 0) return <span className="muted">—</span>;
  return (
    <>
      {percent(share)} <span className="muted">of {count(compared)}</span>
    </>
  );
}

function Labellers(props: { pid: string }) {
  const [labellers, setLabellers] = useState<Labeller[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    api.labellers(props.pid).then(
      (l) => live && setLabellers(l),
      (e: unknown) => live && setError(describeError(e)),
    );
    return () => {
      live = false;
    };
  }, [props.pid]);

  return (
    <section aria-labelledby="labellers-title" className="labellers">
      <h2 id="labellers-title">Labellers</h2>
      <ErrorMessage error={error} />
      {labellers === null ? (
        !error && (
          <p className="loading" role="status">
            Loading…
          </p>
        )
      ) : labellers.length === 0 ? (
        <p className="muted">Nobody has labelled yet.</p>
      ) : (
        <div className="table-scroll">
          <table className="data-table" data-testid="labellers-table">
            <thead>
              <tr>
                <th scope="col">Labeller</th>
                <th scope="col">Labels</th>
                <th scope="col">Median time per label</th>
                <th scope="col" title="Share of the labeller's training labels the current model predicts too">
                  Agrees with the model
                </th>
                <th scope="col" title="Share of the items labelled twice on which another labeller gave the same label">
                  Agrees with other labellers
                </th>
              </tr>
            </thead>
            <tbody>
              {labellers.map((l) => (
                <tr key={l.user_id} data-testid="labeller-row">
                  <td>{l.name}</td>
                  <td>{count(l.labels)}</td>
                  <td>{seconds(l.median_seconds_per_label)}</td>
                  <td>{agreement(l.model_agreement, l.model_compared)}</td>
                  <td>{agreement(l.peer_agreement, l.peer_compared)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
