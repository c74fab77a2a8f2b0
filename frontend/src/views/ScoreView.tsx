import { useEffect, useState, type DragEvent, type FormEvent } from 'react';

import { api, describeError, type Project, type ScoreRequest, type ScoreResponse } from '../api';
import { ErrorMessage } from '../components/ErrorMessage';
import { SubmitButton, TextAreaField, TextField } from '../components/Field';
import { percent } from '../format';

type Source = 'file' | 'url' | 'text';

/** The file's bytes as plain base64 (no `data:` prefix). */
function readBase64(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(new Error(`Could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

export function ScoreView(props: { project: Project }) {
  const { project } = props;
  const images = project.data_type === 'images';
  const [source, setSource] = useState<Source>(images ? 'file' : 'text');
  const [file, setFile] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [url, setUrl] = useState('');
  const [text, setText] = useState('');
  const [dragging, setDragging] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<ScoreResponse | null>(null);

  useEffect(() => {
    if (!file) {
      setPreview(null);
      return;
    }
    const objectUrl = URL.createObjectURL(file);
    setPreview(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [file]);

  const choose = (chosen: File | null | undefined) => {
    if (!chosen) return;
    if (!chosen.type.startsWith('image/')) {
      setError(`${chosen.name} is not an image.`);
      return;
    }
    setError(null);
    setFile(chosen);
    setSource('file');
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      let body: ScoreRequest;
      if (source === 'file') {
        if (!file) throw new Error('Choose or drop an image first.');
        body = { images_base64: [await readBase64(file)] };
      } else if (source === 'url') {
        if (!url.trim()) throw new Error('Paste an image URL first.');
        body = { urls: [url.trim()] };
      } else {
        if (!text.trim()) throw new Error('Type some text first.');
        body = { texts: [text] };
      }
      setResult(await api.score(project.id, body));
    } catch (e) {
      setResult(null);
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const scores = result?.scores[0] ?? [];
  const rows = (result?.labels ?? [])
    .map((label, i) => ({ label, p: scores[i] ?? 0 }))
    .sort((a, b) => b.p - a.p);
  const predicted = result?.predictions?.[0] ?? rows[0]?.label;

  return (
    <section className="score-view" aria-labelledby="score-title" data-testid="score-view">
      <h1 id="score-title">Try the model</h1>
      <p className="muted">Score an example with the latest model. Nothing you score here is stored or labelled.</p>

      <form className="score-form" onSubmit={(e) => void onSubmit(e)}>
        {images && (
          <fieldset className="segmented">
            <legend className="visually-hidden">Input</legend>
            <label>
              <input type="radio" name="source" checked={source === 'file'} onChange={() => setSource('file')} /> From a file
            </label>
            <label>
              <input type="radio" name="source" checked={source === 'url'} onChange={() => setSource('url')} /> From a URL
            </label>
          </fieldset>
        )}

        {source === 'file' && (
          <div
            className={`dropzone${dragging ? ' dropzone--active' : ''}`}
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
            data-testid="dropzone"
          >
            {preview && <img src={preview} alt="Chosen image" className="dropzone__preview" />}
            <label className="file-label">
              <span>{file ? file.name : 'Drop an image here, or choose a file'}</span>
              <input
                type="file"
                accept="image/*"
                aria-label="Image file"
                data-testid="score-file"
                onChange={(e) => choose(e.target.files?.[0])}
              />
            </label>
          </div>
        )}
        {source === 'url' && (
          <TextField
            label="Image URL"
            type="url"
            value={url}
            onChange={setUrl}
            placeholder="https://example.com/cat.jpg"
            testId="score-url"
          />
        )}
        {source === 'text' && (
          <TextAreaField label="Text" value={text} onChange={setText} rows={6} testId="score-text" />
        )}
        <SubmitButton busy={busy} testId="score-submit">
          {busy ? 'Scoring…' : 'Score'}
        </SubmitButton>
      </form>

      <ErrorMessage error={error} />

      {result && (
        <div className="score-results" data-testid="score-results" aria-live="polite">
          <h2>
            Prediction: <span data-testid="score-prediction">{predicted}</span>
          </h2>
          <ol className="bars">
            {rows.map((row) => (
              <li key={row.label} className={row.label === predicted ? 'bars__row bars__row--top' : 'bars__row'} data-testid="score-row">
                <span className="bars__label">{row.label}</span>
                <span
                  className="bars__track"
                  role="meter"
                  aria-valuemin={0}
                  aria-valuemax={1}
                  aria-valuenow={Math.round(row.p * 10_000) / 10_000}
                  aria-valuetext={percent(row.p, 1)}
                  aria-label={`Probability of ${row.label}`}
                >
                  <span className="bars__fill" style={{ width: `${Math.max(0, Math.min(1, row.p)) * 100}%` }} />
                </span>
                <span className="bars__value">{percent(row.p, 1)}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}
