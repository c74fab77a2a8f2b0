import { useEffect, useState } from 'react';

import { api, describeError, formError, type IngestProgress, type Project, type Role, type ServerInfo } from '../api';
import { DataTable } from '../components/DataTable';
import { ErrorMessage } from '../components/ErrorMessage';
import { Loading } from '../components/Loading';
import { canStartLabelling, StatusBadge } from '../components/StatusBadge';
import { EMPTY_SELECTION, UploadPicker, UploadStatus } from '../components/UploadPicker';
import { bytes, count } from '../format';
import { Link, viewPath } from '../router';
import { canAdmin, canLabel } from '../roles';
import { uploadFiles, type Selection, type UploadProgress } from '../upload';
import { useFormAction } from '../useFormAction';

const POLL_MS = 1_000;

/** `/projects/{pid}/ingest`: the dataset's import and embedding, polled every second until it is
 * ready or failed. Labelling may start once embedding has begun. */
export function IngestView(props: {
  server: ServerInfo;
  project: Project;
  role: Role;
  /** The status moved on: the app reloads its project list. */
  onStatus: () => void;
}) {
  const { server, project, role, onStatus } = props;
  const [progress, setProgress] = useState<IngestProgress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [poll, setPoll] = useState(0);
  const status = progress?.status;

  useEffect(() => {
    document.title = `${project.title || project.id}: progress · Lightbulb`;
  }, [project]);

  useEffect(() => {
    let live = true;
    let timer: number | undefined;
    const controller = new AbortController();
    const tick = async () => {
      try {
        const fresh = await api.ingest(project.id, controller.signal);
        if (!live) return;
        setProgress(fresh);
        setError(null);
        if (fresh.status === 'ready' || fresh.status === 'failed') return;
      } catch (e) {
        if (!live || controller.signal.aborted) return;
        setError(describeError(e));
      }
      timer = window.setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      live = false;
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [project.id, poll]);

  useEffect(() => {
    if (status) onStatus();
  }, [status, onStatus]);

  // A failed import may be started again (POST ingest), e.g. after the S3 prefix was filled.
  const retry = async () => {
    try {
      await api.startIngest(project.id);
      setPoll((n) => n + 1);
    } catch (e) {
      setError(formError(e));
    }
  };

  const embedding = progress?.embedding;
  const open = progress !== null && canStartLabelling(progress.status);
  return (
    <section aria-labelledby="ingest-title" data-testid="ingest-view">
      <p>
        <Link to="/projects">← Projects</Link>
      </p>
      <h1 id="ingest-title">{project.title || project.id}: dataset</h1>
      <ErrorMessage error={error} />
      {!progress ? (
        <Loading />
      ) : (
        <>
          <dl className="summary" aria-label="Import" data-testid="ingest-summary">
            <div>
              <dt>Status</dt>
              <dd>
                <StatusBadge status={progress.status} testId="ingest-status" />
              </dd>
            </div>
            <div>
              <dt>Files</dt>
              <dd data-testid="ingest-files">{count(progress.files)}</dd>
            </div>
            <div>
              <dt>Size</dt>
              <dd data-testid="ingest-bytes">{bytes(progress.bytes)}</dd>
            </div>
            <div>
              <dt>Refused</dt>
              <dd>{count(progress.rejected.length)}</dd>
            </div>
          </dl>

          {embedding && (
            <p className="ingest-embedding" data-testid="ingest-embedding">
              <span>Embedding</span>{' '}
              <progress max={Math.max(1, embedding.total)} value={embedding.done} aria-label="Embedding progress" />{' '}
              {count(embedding.done)} / {count(embedding.total)}
            </p>
          )}

          {progress.status === 'failed' && (
            <div className="error" role="alert" data-testid="ingest-error">
              <span>The import failed: {progress.error ?? 'no reason given'}</span>
              {canAdmin(role) && (
                <button type="button" onClick={() => void retry()} data-testid="ingest-retry">
                  Try again
                </button>
              )}
            </div>
          )}

          {open && (
            <p className="actions">
              {canLabel(role) ? (
                <Link to={viewPath(project.id, 'label')} className="button primary" testId="start-labelling">
                  Start labelling
                </Link>
              ) : (
                <Link to={viewPath(project.id, 'charts')} className="button primary" testId="open-project">
                  Open the project
                </Link>
              )}
              {progress.status === 'embedding' && (
                <span className="muted">Items can be labelled while the rest are embedded.</span>
              )}
            </p>
          )}

          {progress.status === 'awaiting_upload' && (
            <AwaitingUpload server={server} project={project} role={role} onStarted={() => setPoll((n) => n + 1)} />
          )}

          {progress.rejected.length > 0 && (
            <details className="rejected" open={progress.rejected.length <= 20}>
              <summary>{count(progress.rejected.length)} files refused</summary>
              <DataTable columns={['File', 'Why']} testId="ingest-rejected">
                {progress.rejected.slice(0, 1000).map((r, i) => (
                  <tr key={`${r.name}-${i}`}>
                    <td>{r.name}</td>
                    <td>{r.reason}</td>
                  </tr>
                ))}
              </DataTable>
            </details>
          )}
        </>
      )}
    </section>
  );
}

/** A project still waiting for its files (an upload that stopped part-way): send more, then import. */
function AwaitingUpload(props: { server: ServerInfo; project: Project; role: Role; onStarted: () => void }) {
  const { server, project, role, onStarted } = props;
  const [selection, setSelection] = useState<Selection>(EMPTY_SELECTION);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const { busy, error, setError, run } = useFormAction();

  if (!canAdmin(role)) {
    return <p className="muted">Waiting for an admin to upload the files.</p>;
  }
  const dataType = project.data_type === 'text' ? 'text' : 'images';

  const start = () =>
    run(async () => {
      if (selection.files.length > 0) await uploadFiles(project.id, selection.files, server, setProgress);
      await api.startIngest(project.id);
      setSelection(EMPTY_SELECTION);
      onStarted();
    });

  return (
    <div className="card">
      <h2>Add files</h2>
      <p className="muted">The files stored so far are kept. Add more if needed, then start the import.</p>
      <ErrorMessage error={error} onDismiss={() => setError(null)} />
      <UploadPicker server={server} dataType={dataType} selection={selection} onChange={setSelection} disabled={busy} />
      {progress && <UploadStatus progress={progress} />}
      <div className="actions">
        <button type="button" className="primary" onClick={() => void start()} disabled={busy} data-testid="start-import">
          {selection.files.length > 0 ? 'Upload and start the import' : 'Start the import'}
        </button>
      </div>
    </div>
  );
}
