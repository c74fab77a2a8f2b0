import { useEffect, useState, type FormEvent } from 'react';

import { api, describeError, STRATEGIES, type Labeller, type Project, type ProjectSettings } from '../api';
import { DataTable, type Column } from '../components/DataTable';
import { ErrorMessage } from '../components/ErrorMessage';
import { SubmitButton } from '../components/Field';
import { Loading } from '../components/Loading';
import {
  DescriptionField,
  OverlapField,
  StrategyField,
  ThresholdField,
  TitleField,
} from '../components/ProjectFields';
import { count, percent, seconds } from '../format';
import { useFormAction } from '../useFormAction';

/** `/projects/{pid}/settings`: title, instructions, auto-label threshold and strategy (editable by
 * admins and owners, read-only for others), and how each labeller is doing. */
export function SettingsView(props: { project: Project; editable: boolean; onSaved: () => void }) {
  const { project, editable, onSaved } = props;
  const [saved, setSaved] = useState<ProjectSettings | null>(null);
  const [draft, setDraft] = useState<ProjectSettings | null>(null);
  const [threshold, setThreshold] = useState('');
  const [overlap, setOverlap] = useState('');
  const { busy, error, setError, run } = useFormAction();
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
        setOverlap(String(Math.round(s.overlap * 100)));
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
    const share = Number(overlap) / 100;
    if (!(share >= 0 && share <= 0.5)) return setError('Second opinions are between 0 and 50 %.');
    // Only what changed: the strategy, say, applies from the next ranking of the queue.
    const patch: Partial<ProjectSettings> = {};
    if (draft.title !== saved.title) patch.title = draft.title;
    if (draft.description !== saved.description) patch.description = draft.description;
    if (limit !== saved.auto_label_threshold) patch.auto_label_threshold = limit;
    if (draft.strategy !== saved.strategy) patch.strategy = draft.strategy;
    if (share !== saved.overlap) patch.overlap = share;
    if (Object.keys(patch).length === 0) return setNotice('Nothing changed.');
    setNotice(null);
    await run(async () => {
      const fresh = await api.updateSettings(project.id, patch);
      setSaved(fresh);
      setDraft(fresh);
      setThreshold(String(fresh.auto_label_threshold));
      setOverlap(String(Math.round(fresh.overlap * 100)));
      setNotice('Saved.');
      onSaved();
    });
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
        !error && <Loading />
      ) : (
        <form className="card form" onSubmit={(e) => void submit(e)} aria-label="Project settings">
          {!editable && <p className="muted">Only admins and owners change these.</p>}
          <p className="muted">
            <code>{project.id}</code> · {project.data_type} · {project.encoder} · classes: {project.classes.join(', ')}
          </p>
          <TitleField value={draft.title} onChange={(title) => edit({ title })} readOnly={readOnly} testId="settings-title" />
          <DescriptionField
            hint="HTML"
            rows={4}
            value={draft.description}
            onChange={(description) => edit({ description })}
            readOnly={readOnly}
            testId="settings-description"
          />
          <div className="form-grid">
            <ThresholdField value={threshold} onChange={setThreshold} readOnly={readOnly} testId="settings-threshold" />
            <StrategyField
              value={draft.strategy}
              onChange={(strategy) => edit({ strategy })}
              strategies={strategies}
              disabled={readOnly}
              testId="settings-strategy"
            />
            <OverlapField value={overlap} onChange={setOverlap} readOnly={readOnly} testId="settings-overlap" />
          </div>
          {editable && (
            <SubmitButton busy={busy} testId="settings-save">
              Save
            </SubmitButton>
          )}
        </form>
      )}
      <Labellers pid={project.id} />
    </section>
  );
}

const LABELLER_COLUMNS: Column[] = [
  'Labeller',
  'Labels',
  'Median time per label',
  { label: 'Agrees with the model', title: "Share of the labeller's training labels the current model predicts too" },
  {
    label: 'Agrees with other labellers',
    title: 'Share of the items labelled twice on which another labeller gave the same label',
  },
];

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
        !error && <Loading />
      ) : labellers.length === 0 ? (
        <p className="muted">Nobody has labelled yet.</p>
      ) : (
        <DataTable columns={LABELLER_COLUMNS} testId="labellers-table">
          {labellers.map((l) => (
            <tr key={l.user_id} data-testid="labeller-row">
              <td>{l.name}</td>
              <td>{count(l.labels)}</td>
              <td>{seconds(l.median_seconds_per_label)}</td>
              <td>{agreement(l.model_agreement, l.model_compared)}</td>
              <td>{agreement(l.peer_agreement, l.peer_compared)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}
