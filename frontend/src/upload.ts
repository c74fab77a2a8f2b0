// Uploading a dataset from the browser (docs/HOSTED.md, "Creating a project"): the files go up in
// requests of at most ~50 files and 64 MiB (and the server's `upload_limit_bytes`), as multipart
// parts named `file` whose filename is the item's path relative to the folder picked.
import { api, ApiError, type RejectedFile, type ServerInfo } from './api';

export interface PickedFile {
  file: File;
  /** The item's path in the dataset: the folder picked is the dataset's root. */
  path: string;
}

export const MAX_FILES_PER_REQUEST = 50;
export const MAX_BYTES_PER_REQUEST = 64 * 1024 * 1024;
/** Room for each part's multipart headers. */
const PART_OVERHEAD = 256;

/** The item path of a picked file: `webkitRelativePath` minus the top folder, or its name. */
export function relativePath(file: File): string {
  const rel = file.webkitRelativePath;
  if (rel) {
    const slash = rel.indexOf('/');
    return slash >= 0 ? rel.slice(slash + 1) : rel;
  }
  return file.name;
}

export interface Selection {
  files: PickedFile[];
  /** Picked but not sent, with why (hidden files, files over the server's limit). */
  skipped: RejectedFile[];
}

/** Adds `picked` to `current` (a path picked twice keeps the latest file). */
export function addFiles(current: Selection, picked: Iterable<File>, server: ServerInfo): Selection {
  const byPath = new Map(current.files.map((f) => [f.path, f]));
  const skipped = [...current.skipped];
  for (const file of picked) {
    const path = relativePath(file);
    if (path.split('/').some((part) => part.startsWith('.'))) {
      skipped.push({ name: path, reason: 'hidden file' });
    } else if (server.file_limit_bytes > 0 && file.size > server.file_limit_bytes) {
      skipped.push({ name: path, reason: `larger than the server's limit of ${server.file_limit_bytes} bytes` });
    } else {
      byPath.set(path, { file, path });
    }
  }
  return { files: [...byPath.values()], skipped };
}

/** Splits the files into requests of at most `maxFiles` files and about `maxBytes` bytes. */
export function chunk(files: PickedFile[], maxBytes: number, maxFiles = MAX_FILES_PER_REQUEST): PickedFile[][] {
  const chunks: PickedFile[][] = [];
  let current: PickedFile[] = [];
  let size = 0;
  for (const f of files) {
    const cost = f.file.size + f.path.length + PART_OVERHEAD;
    if (current.length > 0 && (current.length >= maxFiles || size + cost > maxBytes)) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(f);
    size += cost;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

export interface UploadProgress {
  files: number;
  bytes: number;
  totalFiles: number;
  totalBytes: number;
}

export interface UploadSummary {
  stored: number;
  bytes: number;
  rejected: RejectedFile[];
  /** Paths the server stored (or refused by name): not to be sent again. */
  done: Set<string>;
}

/** Request size allowed by the server and by this app. */
export function requestBudget(server: ServerInfo): number {
  const limit = server.upload_limit_bytes > 0 ? server.upload_limit_bytes : MAX_BYTES_PER_REQUEST;
  return Math.min(MAX_BYTES_PER_REQUEST, limit);
}

/** Uploads `files` to project `pid`, a request at a time. A request the server finds too large
 * (413) is split in two and sent again; a single file it refuses so is reported as rejected. */
export async function uploadFiles(
  pid: string,
  files: PickedFile[],
  server: ServerInfo,
  onProgress: (progress: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<UploadSummary> {
  const summary: UploadSummary = { stored: 0, bytes: 0, rejected: [], done: new Set() };
  const totalBytes = files.reduce((n, f) => n + f.file.size, 0);
  const progress: UploadProgress = { files: 0, bytes: 0, totalFiles: files.length, totalBytes };
  onProgress({ ...progress });

  const send = async (part: PickedFile[]): Promise<void> => {
    const form = new FormData();
    for (const f of part) form.append('file', f.file, f.path);
    try {
      const answer = await api.uploadFiles(pid, form, signal);
      summary.stored += answer.stored;
      summary.bytes += answer.bytes;
      summary.rejected.push(...(answer.rejected ?? []));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 413)) throw error;
      if (part.length > 1) {
        const half = Math.ceil(part.length / 2);
        await send(part.slice(0, half));
        await send(part.slice(half));
        return;
      }
      summary.rejected.push({ name: part[0]!.path, reason: error.message });
    }
    for (const f of part) {
      summary.done.add(f.path);
      progress.files += 1;
      progress.bytes += f.file.size;
    }
    onProgress({ ...progress });
  };

  for (const part of chunk(files, requestBudget(server))) await send(part);
  return summary;
}
