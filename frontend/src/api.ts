// Typed client for the Lightbulb HTTP API (docs/API.md). The types mirror that page; keep
// them in step with it. Every request carries the per-tab labeller id.

export type DataType = 'images' | 'text' | 'json';
export type Stage = 'train' | 'test';

export interface Project {
  id: string;
  title: string;
  /** HTML from the task config. */
  description: string;
  /** HTML with `{{key}}` placeholders filled from a JSON item's `data`. */
  template: string | null;
  data_type: DataType;
  classes: string[];
  /** Keyboard key → class name. */
  shortcuts: Record<string, string>;
  auto_label_threshold: number;
  encoder: string;
  strategy: string;
}

export interface Prediction {
  label: string;
  probabilities: Record<string, number>;
}

export interface Item {
  id: number;
  path: string;
  content_url: string;
  text: string | null;
  data: Record<string, unknown> | null;
  stage: Stage;
  prediction: Prediction | null;
}

export interface NextResponse {
  items: Item[];
  done: boolean;
}

export interface LabelRequest {
  item_id: number;
  label: string;
  time_taken_ms: number;
}

export interface LabelResponse {
  accepted: number;
  labelled: number;
}

export interface UndoResponse {
  item_id: number;
  path: string;
  label: string;
}

export interface BatchItem {
  id: number;
  path: string;
  content_url: string;
  text: string | null;
  data: Record<string, unknown> | null;
  probability: number;
}

export interface Batch {
  id: string;
  class: string;
  items: BatchItem[];
}

export interface ConfirmRequest {
  rejected: number[];
  corrections: Record<string, string>;
}

export interface ConfirmResponse {
  confirmed: number;
  corrected: number;
  rejected: number;
}

export interface Accuracy {
  value: number;
  low: number;
  high: number;
  test_labels: number;
}

export interface CurvePoint {
  labels: number;
  accuracy: number;
  low: number;
  high: number;
  test_labels: number;
}

export interface ClassMetrics {
  class: string;
  precision: number | null;
  recall: number | null;
  support: number;
}

export interface Stats {
  counts: {
    labelled: number;
    train: number;
    test: number;
    model_labelled: number;
    unlabelled: number;
    total: number;
    skipped_items: number;
  };
  training: boolean;
  model_version: number | null;
  embedding: { done: number; total: number } | null;
  accuracy: Accuracy | null;
  curve: CurvePoint[];
  confusion: { classes: string[]; matrix: number[][] } | null;
  per_class: ClassMetrics[];
  median_seconds_per_label: number | null;
  auto_label: { threshold: number; ready_batches: number; expected_precision: number | null } | null;
}

export type ItemStatus = 'all' | 'labelled' | 'unlabelled' | 'test' | 'model_labelled';

export interface ItemFilter {
  status?: ItemStatus;
  label?: string;
  predicted?: string;
  min_confidence?: number;
  max_confidence?: number;
  q?: string;
  page?: number;
  per_page?: number;
}

export interface ListedItem {
  id: number;
  path: string;
  content_url: string;
  text: string | null;
  label: string | null;
  labelled_by: string | null;
  stage: string | null;
  predicted: string | null;
  confidence: number | null;
}

export interface ItemPage {
  total: number;
  page: number;
  per_page: number;
  items: ListedItem[];
}

export type ScoreRequest = { texts: string[] } | { urls: string[] } | { images_base64: string[] };

export interface ScoreResponse {
  labels: string[];
  scores: number[][];
  predictions: string[];
}

export type ServerEvent =
  | { type: 'stats'; stats: Stats }
  | { type: 'training_started'; labels: number }
  | { type: 'training_finished'; model_version: number; accuracy: Accuracy | null; seconds: number }
  | { type: 'batch_ready'; class: string; size: number };

/** An error the API answered with (`{"error": {"code", "message"}}`), or a network failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A sentence a person can act on, for any error a request may throw. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return error.message;
    return `${error.message} (${error.code}, HTTP ${error.status})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

const USER_KEY = 'lightbulb.user';
let cachedUser: string | null = null;

/** The per-tab labeller id: two tabs act as two labellers (sessionStorage is per tab). */
export function labellerId(): string {
  if (cachedUser) return cachedUser;
  let id: string | null = null;
  try {
    id = sessionStorage.getItem(USER_KEY);
  } catch {
    // Storage can be disabled; then the id lives as long as the page.
  }
  if (!id) {
    id = `tab-${Math.random().toString(36).slice(2, 10)}`;
    try {
      sessionStorage.setItem(USER_KEY, id);
    } catch {
      // As above.
    }
  }
  cachedUser = id;
  return id;
}

async function request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { 'X-Lightbulb-User': labellerId(), Accept: 'application/json' };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: payload, signal: signal ?? null });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'Cannot reach the Lightbulb server. Is it running?');
  }
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const err = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof err?.code === 'string' ? err.code : 'http_error';
    const message =
      typeof err?.message === 'string' ? err.message : `The server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, code, message);
  }
  if (parsed === null && text) {
    throw new ApiError(response.status, 'invalid_response', 'The server sent a response that is not JSON.');
  }
  return parsed as T;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const s = search.toString();
  return s ? `?${s}` : '';
}

const base = '/api/v1/projects';
const p = (pid: string) => `${base}/${encodeURIComponent(pid)}`;

export const api = {
  projects: () => request<{ projects: Project[] }>('GET', base).then((r) => r.projects),
  project: (pid: string) => request<Project>('GET', p(pid)),
  next: (pid: string, count: number) => request<NextResponse>('GET', `${p(pid)}/next${query({ count })}`),
  label: (pid: string, label: LabelRequest) => request<LabelResponse>('POST', `${p(pid)}/labels`, label),
  undo: (pid: string) => request<UndoResponse>('POST', `${p(pid)}/labels/undo`),
  skip: (pid: string, itemId: number) => request<{ skipped: number }>('POST', `${p(pid)}/skip`, { item_id: itemId }),
  nextBatch: (pid: string, size: number) =>
    request<{ batch: Batch | null }>('GET', `${p(pid)}/batches/next${query({ size })}`).then((r) => r.batch),
  confirmBatch: (pid: string, batchId: string, body: ConfirmRequest) =>
    request<ConfirmResponse>('POST', `${p(pid)}/batches/${encodeURIComponent(batchId)}/confirm`, body),
  stats: (pid: string, signal?: AbortSignal) => request<Stats>('GET', `${p(pid)}/stats`, undefined, signal),
  items: (pid: string, filter: ItemFilter, signal?: AbortSignal) =>
    request<ItemPage>('GET', `${p(pid)}/items${query({ ...filter })}`, undefined, signal),
  score: (pid: string, body: ScoreRequest) => request<ScoreResponse>('POST', `${p(pid)}/score`, body),
  contentUrl: (pid: string, itemId: number) => `${p(pid)}/items/${itemId}/content`,
  /** Content of a text or JSON item, for an item known only by id (e.g. after an undo). */
  content: async (pid: string, itemId: number): Promise<string> => {
    const response = await fetch(`${p(pid)}/items/${itemId}/content`, {
      headers: { 'X-Lightbulb-User': labellerId() },
    });
    if (!response.ok) throw new ApiError(response.status, 'http_error', `Could not load item ${itemId}`);
    return response.text();
  },
  exportUrl: (pid: string, format: 'csv' | 'jsonl') => `${p(pid)}/export${query({ format })}`,
  modelUrl: (pid: string) => `${p(pid)}/model`,
  eventsUrl: (pid: string) => {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}${p(pid)}/events`;
  },
};
