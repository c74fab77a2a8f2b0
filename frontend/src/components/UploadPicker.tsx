import { useEffect, useId, useRef, type ChangeEvent } from 'react';

import type { ServerInfo } from '../api';
import { bytes, count } from '../format';
import { addFiles, type Selection, type UploadProgress } from '../upload';

export const EMPTY_SELECTION: Selection = { files: [], skipped: [] };

const ACCEPT = {
  images: '.jpg,.jpeg,.png,.gif,.webp,.bmp,image/jpeg,image/png,image/gif,image/webp,image/bmp',
  text: '.txt,text/plain',
} as const;

const EXTENSIONS = { images: '.jpg .jpeg .png .gif .webp .bmp', text: '.txt (one item per file)' } as const;

/** Files or a whole folder (its sub-folders kept in the items' paths) to upload. */
export function UploadPicker(props: {
  server: ServerInfo;
  dataType: 'images' | 'text';
  selection: Selection;
  onChange: (selection: Selection) => void;
  disabled?: boolean;
}) {
  const { server, dataType, selection, onChange, disabled } = props;
  const folder = useRef<HTMLInputElement>(null);
  const filesId = useId();
  const folderId = useId();

  // React has no typed prop for it: a folder picker is a file input with `webkitdirectory`.
  useEffect(() => {
    folder.current?.setAttribute('webkitdirectory', '');
    folder.current?.setAttribute('directory', '');
  }, []);

  const picked = (event: ChangeEvent<HTMLInputElement>) => {
    const list = event.currentTarget.files;
    if (list && list.length > 0) onChange(addFiles(selection, Array.from(list), server));
    // The same files can be picked again after a clear.
    event.currentTarget.value = '';
  };

  const total = selection.files.reduce((n, f) => n + f.file.size, 0);
  return (
    <div className="upload-picker" data-testid="upload-picker">
      <div className="upload-picker__inputs">
        <div className="file-label">
          <label htmlFor={filesId}>Files</label>
          <input
            id={filesId}
            type="file"
            multiple
            accept={ACCEPT[dataType]}
            onChange={picked}
            disabled={disabled}
            data-testid="upload-files"
          />
        </div>
        <div className="file-label">
          <label htmlFor={folderId}>or a folder</label>
          <input id={folderId} ref={folder} type="file" multiple onChange={picked} disabled={disabled} data-testid="upload-folder" />
        </div>
      </div>
      <p className="muted">
        {EXTENSIONS[dataType]}
        {server.file_limit_bytes > 0 && `, at most ${bytes(server.file_limit_bytes)} each`}. Other files are refused by
        name.
      </p>
      <p role="status" data-testid="upload-selection">
        {selection.files.length === 0
          ? 'No files picked yet.'
          : `${count(selection.files.length)} files picked (${bytes(total)}).`}{' '}
        {selection.files.length > 0 && !disabled && (
          <button type="button" className="link-button" onClick={() => onChange(EMPTY_SELECTION)}>
            Clear
          </button>
        )}
      </p>
      {selection.skipped.length > 0 && (
        <details className="skipped">
          <summary>{count(selection.skipped.length)} files will not be sent</summary>
          <ul>
            {selection.skipped.slice(0, 200).map((s, i) => (
              <li key={`${s.name}-${i}`}>
                {s.name}: <span className="muted">{s.reason}</span>
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

/** How far an upload is, as a bar and a sentence. */
export function UploadStatus(props: { progress: UploadProgress }) {
  const { progress } = props;
  return (
    <p className="upload-status" role="status" data-testid="upload-progress">
      <progress max={Math.max(1, progress.totalBytes)} value={progress.bytes} aria-label="Upload progress" /> Uploaded{' '}
      {count(progress.files)} of {count(progress.totalFiles)} files ({bytes(progress.bytes)} of {bytes(progress.totalBytes)})
    </p>
  );
}
