import { useEffect, useState, type FormEvent, type ReactNode } from 'react';

import { api, STRATEGIES, type ServerInfo } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { Field, SubmitButton, TextAreaField, TextField } from '../components/Field';
import { DescriptionField, StrategyField, ThresholdField, TitleField } from '../components/ProjectFields';
import { EMPTY_SELECTION, UploadPicker, UploadStatus } from '../components/UploadPicker';
import { navigate, viewPath } from '../router';
import { uploadFiles, type Selection, type UploadProgress } from '../upload';
import { useFormAction } from '../useFormAction';

type DataType = 'images' | 'text';

export const ENCODERS: Record<DataType, { value: string; label: string }[]> = {
  images: [{ value: 'mobilenet_v2', label: 'MobileNet v2 (images)' }],
  text: [
    { value: 'minilm_l6', label: 'MiniLM L6 (text)' },
    { value: 'minilm_l6_layers', label: 'MiniLM L6, last three layers (text; slower, often more accurate)' },
  ],
};

const ID_PATTERN = /^[a-z0-9_-]{1,64}$/;

/** Classes typed one per line or separated by commas. */
export function parseClasses(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((c) => c.trim())
    .filter(Boolean);
}

function validate(id: string, classes: string[], threshold: number): string | null {
  if (!ID_PATTERN.test(id)) return 'The project id is 1–64 lower-case letters, digits, “-” or “_”.';
  if (classes.length < 2 || classes.length > 100) return `Give 2–100 classes (now ${classes.length}).`;
  const seen = new Set<string>();
  for (const c of classes) {
    if (seen.has(c)) return `The class “${c}” is given twice.`;
    seen.add(c);
  }
  if (!(threshold >= 0.5 && threshold <= 1)) return 'The auto-label threshold is between 0.5 and 1.';
  return null;
}

/** One choice of a radio group, its label after the button. */
function Radio(props: {
  name: string;
  checked: boolean;
  onChange: () => void;
  disabled?: boolean;
  testId: string;
  children: ReactNode;
}) {
  return (
    <label className="inline-field">
      <input
        type="radio"
        name={props.name}
        checked={props.checked}
        onChange={props.onChange}
        disabled={props.disabled}
        data-testid={props.testId}
      />
      {props.children}
    </label>
  );
}

/** Create a project (admin, owner): its settings, then its dataset from uploaded files or an
 * S3 prefix; on success, the import's progress. */
export function NewProjectView(props: { server: ServerInfo; onCreated: () => void }) {
  const { server, onCreated } = props;
  const [id, setId] = useState('');
  const [title, setTitle] = useState('');
  const [dataType, setDataType] = useState<DataType>('images');
  const [classesText, setClassesText] = useState('');
  const [encoder, setEncoder] = useState(ENCODERS.images[0]!.value);
  const [threshold, setThreshold] = useState('0.97');
  // The engine's default (`StrategyKind::DEFAULT`).
  const [strategy, setStrategy] = useState<string>('adaptive_bait');
  const [description, setDescription] = useState('');
  const [source, setSource] = useState<'upload' | 's3'>('upload');
  const [prefix, setPrefix] = useState('');
  const [selection, setSelection] = useState<Selection>(EMPTY_SELECTION);
  /** The project already created (an upload that failed part-way is resumed, not re-created). */
  const [created, setCreated] = useState<string | null>(null);
  const [uploaded, setUploaded] = useState<Set<string>>(new Set());
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const { busy, error, setError, run } = useFormAction();

  useEffect(() => {
    document.title = 'New project · Lightbulb';
  }, []);

  const changeType = (next: DataType) => {
    setDataType(next);
    // The encoder follows the data type unless one of that type was chosen.
    if (!ENCODERS[next].some((e) => e.value === encoder)) setEncoder(ENCODERS[next][0]!.value);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const classes = parseClasses(classesText);
    const limit = Number(threshold);
    const invalid = validate(id, classes, limit);
    if (invalid) return setError(invalid);
    if (source === 'upload' && selection.files.length === 0) return setError('Pick the files or the folder to upload.');
    if (source === 's3' && !prefix.trim()) return setError('Give the S3 prefix to import.');
    await run(
      async () => {
        if (created !== id) {
          await api.createProject({
            id,
            title: title.trim() || id,
            data_type: dataType,
            classes,
            encoder,
            auto_label_threshold: limit,
            strategy,
            description,
            source: source === 's3' ? { kind: 's3', prefix: prefix.trim() } : { kind: 'upload' },
          });
          setCreated(id);
          onCreated();
        }
        if (source === 'upload') {
          const remaining = selection.files.filter((f) => !uploaded.has(f.path));
          const done = new Set(uploaded);
          try {
            const summary = await uploadFiles(id, remaining, server, setProgress);
            for (const path of summary.done) done.add(path);
          } finally {
            setUploaded(done);
          }
          await api.startIngest(id);
        }
        // An S3 import starts with the project (status "importing").
        onCreated();
        navigate(viewPath(id, 'ingest'));
      },
      { stayBusy: true },
    );
  };

  const locked = busy || created !== null;
  return (
    <section aria-labelledby="new-title" data-testid="new-project-view">
      <h1 id="new-title">New project</h1>
      <form className="form card" onSubmit={(e) => void submit(e)} noValidate>
        <ErrorMessage error={error} onDismiss={() => setError(null)} />
        {created && !busy && (
          <p className="notice" role="status">
            Project “{created}” is created. Send the files again to finish the upload: those already stored are skipped.
          </p>
        )}
        <div className="form-grid">
          <TextField
            label="Id"
            hint="in URLs: lower-case letters, digits, “-”, “_”"
            type="text"
            required
            value={id}
            onChange={(v) => setId(v.trim())}
            disabled={locked}
            spellCheck={false}
            testId="new-id"
          />
          <TitleField value={title} onChange={setTitle} disabled={locked} testId="new-title" />
        </div>

        <fieldset className="segmented" disabled={locked}>
          <legend>Data type</legend>
          <Radio name="data-type" checked={dataType === 'images'} onChange={() => changeType('images')} testId="new-type-images">
            Images
          </Radio>
          <Radio name="data-type" checked={dataType === 'text'} onChange={() => changeType('text')} testId="new-type-text">
            Text
          </Radio>
        </fieldset>

        <TextAreaField
          label="Classes"
          hint="one per line, or separated by commas; 2–100"
          rows={4}
          value={classesText}
          onChange={setClassesText}
          disabled={locked}
          testId="new-classes"
        />

        <div className="form-grid">
          <Field label="Encoder">
            <select value={encoder} onChange={(e) => setEncoder(e.target.value)} disabled={locked} data-testid="new-encoder">
              {ENCODERS[dataType].map((e) => (
                <option key={e.value} value={e.value}>
                  {e.label}
                </option>
              ))}
            </select>
          </Field>
          <ThresholdField value={threshold} onChange={setThreshold} disabled={locked} testId="new-threshold" />
          <StrategyField value={strategy} onChange={setStrategy} strategies={STRATEGIES} disabled={locked} testId="new-strategy" />
        </div>

        <DescriptionField
          hint="HTML, shown above each item"
          rows={3}
          value={description}
          onChange={setDescription}
          disabled={locked}
          testId="new-description"
        />

        <fieldset className="source">
          <legend>Dataset</legend>
          {server.s3 && (
            <div className="segmented">
              <Radio
                name="source"
                checked={source === 'upload'}
                onChange={() => setSource('upload')}
                disabled={locked}
                testId="source-upload"
              >
                Upload files
              </Radio>
              <Radio name="source" checked={source === 's3'} onChange={() => setSource('s3')} disabled={locked} testId="source-s3">
                Import an S3 prefix
              </Radio>
            </div>
          )}
          {source === 's3' ? (
            <TextField
              label="Prefix"
              hint="in the server's import bucket, e.g. incoming/cats/"
              type="text"
              value={prefix}
              onChange={setPrefix}
              disabled={locked}
              spellCheck={false}
              testId="s3-prefix"
            />
          ) : (
            <UploadPicker server={server} dataType={dataType} selection={selection} onChange={setSelection} disabled={busy} />
          )}
        </fieldset>

        {progress && <UploadStatus progress={progress} />}
        <SubmitButton busy={busy} testId="new-submit">
          {busy
            ? source === 'upload' && progress
              ? 'Uploading…'
              : 'Creating…'
            : created
              ? 'Finish the upload'
              : source === 'upload'
                ? 'Create and upload'
                : 'Create and import'}
        </SubmitButton>
      </form>
    </section>
  );
}
