// Typed client for the Lightbulb HTTP API (docs/API.md, docs/HOSTED.md). The types mirror those
// pages; keep them in step with them. In embedded mode every request carries the per-tab labeller
// id (`X-Lightbulb-User`); with accounts (hosted mode) it carries the signed-in session's access
// token instead, refreshed once on a 401 (docs/ACCESS.md).

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
  /** Hosted mode: where the project's dataset stands (docs/HOSTED.md). */
  status?: ProjectStatus;
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


// Hosted mode (docs/HOSTED.md, docs/ACCESS.md).

export interface ServerInfo {
  /** Sign-in required: requests carry an access token instead of `X-Lightbulb-User`. */
  accounts: boolean;
  /** Projects may import their dataset from an S3 prefix. */
  s3: boolean;
  upload_limit_bytes: number;
  file_limit_bytes: number;
}

export type Role = 'owner' | 'admin' | 'labeller' | 'viewer';
export const ROLES: readonly Role[] = ['owner', 'admin', 'labeller', 'viewer'];

/** The answer of sign-up, login, refresh, switch, password change and accepting an invitation. */
export interface Session {
  access_token: string;
  token_type: string;
  /** Seconds the access token is valid for. */
  expires_in: number;
  refresh_token: string;
  user_id: number;
  organisation_id: number;
  role: Role;
}

/** A session as kept in localStorage: when its access token expires, by this browser's clock. */
export interface StoredSession extends Session {
  expires_at: number;
}

export interface OrganisationRef {
  id: number;
  slug: string;
  name: string;
  role: Role;
}

export interface Me {
  user_id: number;
  name: string;
  email: string;
  organisation_id: number;
  /** The organisation's id (slug). */
  organisation: string;
  organisation_name: string;
  role: Role;
  accounts: boolean;
  organisations: OrganisationRef[];
}

export interface SignUpRequest {
  organisation: string;
  organisation_name?: string;
  email: string;
  name: string;
  password: string;
}

export interface InvitationInfo {
  organisation: string;
  organisation_name: string;
  email: string;
  role: Role;
  expires_at: number;
}

export interface Member {
  user_id: number;
  name: string;
  email: string;
  role: Role;
}

export interface CreatedInvitation {
  id: number;
  email: string;
  role: Role;
  token: string;
  /** `/invite/<token>`: relative to the server's origin. */
  url: string;
  expires_at: number;
}

export interface PendingInvitation {
  id: number;
  email: string;
  role: Role;
  created_at: number;
  expires_at: number;
}

export type Scope = 'score' | 'read';
export const SCOPES: readonly Scope[] = ['score', 'read'];

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: number;
  last_used_at: number | null;
  revoked: boolean;
}

export interface CreatedApiKey {
  id: number;
  name: string;
  prefix: string;
  scopes: Scope[];
  /** The whole key: shown in this answer only. */
  key: string;
}

export type ProjectStatus = 'awaiting_upload' | 'importing' | 'indexing' | 'embedding' | 'ready' | 'failed';

export const STRATEGIES = [
  'entropy',
  'margin',
  'least_confidence',
  'random',
  'kcenter',
  'cluster_margin',
  'power_margin',
  'adaptive_margin',
  'bait',
  'adaptive_bait',
] as const;
export type Strategy = (typeof STRATEGIES)[number];

export type ProjectSource = { kind: 'upload' } | { kind: 's3'; prefix: string };

export interface NewProject {
  id: string;
  title: string;
  data_type: 'images' | 'text';
  classes: string[];
  encoder?: string;
  auto_label_threshold?: number;
  strategy?: string;
  description?: string;
  source: ProjectSource;
}

export interface RejectedFile {
  name: string;
  reason: string;
}

export interface UploadResult {
  stored: number;
  bytes: number;
  rejected: RejectedFile[];
}

export interface IngestProgress {
  status: ProjectStatus;
  files: number;
  bytes: number;
  rejected: RejectedFile[];
  embedding: { done: number; total: number } | null;
  error: string | null;
}

export interface ProjectSettings {
  title: string;
  description: string;
  auto_label_threshold: number;
  strategy: string;
  /** Share (0–0.5) of labelled items also given to a second labeller, for agreement. */
  overlap: number;
}

export interface Labeller {
  user_id: number;
  name: string;
  labels: number;
  median_seconds_per_label: number | null;
  /** Share (0–1) of the labeller's TEST labels the current model agrees with. */
  model_agreement: number | null;
  model_compared: number;
  /** Share (0–1) of items labelled twice on which another labeller agreed. */
  peer_agreement: number | null;
  peer_compared: number;
}

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

/** For forms: the server's own message for a refused request (400–499), else as above. */
export function formError(error: unknown): string {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return error.message;
  return describeError(error);
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

// The session (hosted mode). It lives in localStorage, so every tab of the browser shares it and
// sees another tab's refresh, sign-out or organisation switch (the `storage` event).

const SESSION_KEY = 'lightbulb.session';
/** Set from GET /api/v1/server before anything else is asked. */
let accountsOn = false;
/** Used only where localStorage is unavailable. */
let memorySession: string | null = null;
let sessionRaw: string | null | undefined;
let sessionParsed: StoredSession | null = null;
const sessionListeners = new Set<() => void>();

function readRaw(): string | null {
  try {
    return localStorage.getItem(SESSION_KEY);
  } catch {
    return memorySession;
  }
}

function readSession(): StoredSession | null {
  const raw = readRaw();
  if (raw === sessionRaw) return sessionParsed;
  sessionRaw = raw;
  sessionParsed = null;
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as StoredSession;
      if (typeof parsed.access_token === 'string' && typeof parsed.refresh_token === 'string') sessionParsed = parsed;
    } catch {
      // A damaged entry counts as signed out.
    }
  }
  return sessionParsed;
}

function notifySession() {
  for (const listener of sessionListeners) listener();
}

function writeSession(fresh: Session | null): StoredSession | null {
  const stored: StoredSession | null = fresh && { ...fresh, expires_at: Date.now() + fresh.expires_in * 1000 };
  const raw = stored && JSON.stringify(stored);
  try {
    if (raw) localStorage.setItem(SESSION_KEY, raw);
    else localStorage.removeItem(SESSION_KEY);
  } catch {
    memorySession = raw;
  }
  notifySession();
  return stored;
}

if (typeof window !== 'undefined') {
  window.addEventListener('storage', (event) => {
    if (event.key === SESSION_KEY || event.key === null) notifySession();
  });
}

/** The signed-in session (hosted mode), shared by the tabs of this browser. */
export const session = {
  get: readSession,
  subscribe(listener: () => void) {
    sessionListeners.add(listener);
    return () => {
      sessionListeners.delete(listener);
    };
  },
  /** Keep the session an auth call answered (sign-up, login, switch, password, accept). */
  set: (fresh: Session) => writeSession(fresh),
  clear: () => {
    writeSession(null);
  },
};

/** Whether the server has accounts on (known once `api.server()` has answered). */
export const accountsEnabled = () => accountsOn;

/** A URL the browser fetches without our headers (img src, downloads, WebSocket) with the
 * access token as `?access_token=`; unchanged in embedded mode or when signed out. */
export function withToken(url: string): string {
  if (!accountsOn) return url;
  const current = readSession();
  if (!current) return url;
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}access_token=${encodeURIComponent(current.access_token)}`;
}

let refreshing: Promise<StoredSession | null> | null = null;

/** Run `fn` holding a lock shared by this browser's tabs, where the browser has Web Locks. */
function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  return locks ? locks.request('lightbulb.session.refresh', fn) : fn();
}

// One refresh at a time (per tab, and across tabs where Web Locks exist). A refresh token works
// once, so a tab that finds the stored session already rotated by another tab uses that one.
async function rotate(refreshToken: string): Promise<StoredSession | null> {
  const current = readSession();
  if (!current) return null;
  if (current.refresh_token !== refreshToken) return current;
  let response: Response;
  try {
    response = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Cannot reach the Lightbulb server. Is it running?');
  }
  if (response.ok) {
    const fresh = (await response.json()) as Session;
    return writeSession(fresh);
  }
  const again = readSession();
  if (again && again.refresh_token !== refreshToken) return again;
  if (response.status >= 500) {
    throw new ApiError(response.status, 'refresh_failed', `Could not renew the session (HTTP ${response.status}).`);
  }
  // The refresh token is refused (expired, revoked, used): sign in again.
  writeSession(null);
  return null;
}

/** A session whose access token is not `stale`: refreshed once, shared by concurrent callers.
 * Null (and the session cleared) when the server refuses the refresh token. */
function refreshSession(stale: string | null): Promise<StoredSession | null> {
  const current = readSession();
  if (!current) return Promise.resolve(null);
  if (stale !== null && current.access_token !== stale) return Promise.resolve(current);
  if (!refreshing) {
    const token = current.refresh_token;
    refreshing = withLock(() => rotate(token)).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** Refresh the access token ahead of its expiry (so URLs carrying it keep working). */
export async function keepSessionFresh(marginMs = 90_000): Promise<void> {
  const current = readSession();
  if (!accountsOn || !current) return;
  if (current.expires_at - Date.now() > marginMs) return;
  await refreshSession(current.access_token);
}

/** `url` with an access token valid for at least a minute (for a download started now). */
export async function freshUrl(url: string): Promise<string> {
  await keepSessionFresh(60_000).catch(() => {});
  return withToken(url);
}

interface RequestOptions {
  signal?: AbortSignal;
  /** An auth call made signed out (sign-in, sign-up, invitation): no token, no refresh. */
  anonymous?: boolean;
}

async function fetchOnce(url: string, init: RequestInit, token: string | null): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!accountsOn) headers.set('X-Lightbulb-User', labellerId());
  else if (token) headers.set('Authorization', `Bearer ${token}`);
  try {
    return await fetch(url, { ...init, headers });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'Cannot reach the Lightbulb server. Is it running?');
  }
}

async function errorCode(response: Response): Promise<string | null> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } } | null;
    return typeof body?.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}

// Sends the request with the caller's credentials. With accounts, a 401 `unauthenticated`
// (expired or revoked access token) gets one refresh and one retry; when the refresh token is
// refused too, the session is cleared and the app shows the sign-in page.
async function send(url: string, init: RequestInit, options: RequestOptions = {}): Promise<Response> {
  const full: RequestInit = { ...init, signal: options.signal ?? null };
  if (!accountsOn || options.anonymous) return fetchOnce(url, full, null);
  const current = readSession();
  const response = await fetchOnce(url, full, current?.access_token ?? null);
  if (response.status !== 401 || (await errorCode(response)) !== 'unauthenticated') return response;
  if (!current) {
    // Signed out (maybe by another tab): the app shows the sign-in page.
    notifySession();
    return response;
  }
  const fresh = await refreshSession(current.access_token);
  if (!fresh) return response;
  return fetchOnce(url, full, fresh.access_token);
}

async function request<T>(
  method: string,
  url: string,
  body?: unknown,
  signalOrOptions?: AbortSignal | RequestOptions,
): Promise<T> {
  const options: RequestOptions =
    signalOrOptions instanceof AbortSignal ? { signal: signalOrOptions } : (signalOrOptions ?? {});
  const headers: Record<string, string> = { Accept: 'application/json' };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await send(url, { method, headers, body: payload ?? null }, options);
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
const EMBEDDED: ServerInfo = { accounts: false, s3: false, upload_limit_bytes: 0, file_limit_bytes: 0 };

/** A session an auth call answered becomes the signed-in one. */
const keep = (answer: Promise<Session>) => answer.then((s) => session.set(s) as StoredSession);

export const api = {
  /** What the server offers; a server without the route (404) runs in embedded mode. */
  server: async (): Promise<ServerInfo> => {
    let info: ServerInfo;
    try {
      info = await request<ServerInfo>('GET', '/api/v1/server');
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      info = EMBEDDED;
    }
    accountsOn = info.accounts === true;
    return info;
  },
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
    const response = await send(`${p(pid)}/items/${itemId}/content`, { method: 'GET' });
    if (!response.ok) throw new ApiError(response.status, 'http_error', `Could not load item ${itemId}`);
    return response.text();
  },
  /** Download links: with accounts they carry the access token (links cannot send headers). */
  exportUrl: (pid: string, format: 'csv' | 'jsonl') => withToken(`${p(pid)}/export${query({ format })}`),
  modelUrl: (pid: string) => withToken(`${p(pid)}/model`),
  eventsUrl: (pid: string) => {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return withToken(`${scheme}//${window.location.host}${p(pid)}/events`);
  },

  // Accounts and organisations (hosted mode).
  signUp: (body: SignUpRequest) => keep(request<Session>('POST', '/api/v1/auth/signup', body, { anonymous: true })),
  login: (email: string, password: string, organisation?: string) =>
    keep(request<Session>('POST', '/api/v1/auth/login', { email, password, organisation }, { anonymous: true })),
  /** Ends the session on the server (best effort) and here. */
  logout: async (): Promise<void> => {
    // The body names the refresh token, so renew a stale access token first rather than after.
    await keepSessionFresh(10_000).catch(() => {});
    const current = readSession();
    try {
      if (current) await request('POST', '/api/v1/auth/logout', { refresh_token: current.refresh_token });
    } finally {
      session.clear();
    }
  },
  switchOrganisation: (organisation: string) =>
    keep(request<Session>('POST', '/api/v1/auth/switch', { organisation })),
  changePassword: (currentPassword: string, newPassword: string) =>
    keep(
      request<Session>('POST', '/api/v1/auth/password', {
        current_password: currentPassword,
        new_password: newPassword,
      }),
    ),
  me: () => request<Me>('GET', '/api/v1/me'),
  invitation: (token: string) =>
    request<InvitationInfo>('GET', `/api/v1/invitations/${encodeURIComponent(token)}`, undefined, { anonymous: true }),
  acceptInvitation: (token: string, name: string, password: string) =>
    keep(request<Session>('POST', '/api/v1/auth/accept', { token, name, password }, { anonymous: true })),
  members: () => request<{ members: Member[] }>('GET', '/api/v1/members').then((r) => r.members),
  addMember: (body: { email: string; name: string; password: string; role: Role }) =>
    request<Member>('POST', '/api/v1/members', body),
  setRole: (userId: number, role: Role) => request<unknown>('PATCH', `/api/v1/members/${userId}`, { role }),
  removeMember: (userId: number) => request<unknown>('DELETE', `/api/v1/members/${userId}`),
  invite: (email: string, role: Role) => request<CreatedInvitation>('POST', '/api/v1/invitations', { email, role }),
  invitations: () =>
    request<{ invitations: PendingInvitation[] }>('GET', '/api/v1/invitations').then((r) => r.invitations),
  revokeInvitation: (id: number) => request<unknown>('DELETE', `/api/v1/invitations/${id}`),
  apiKeys: (pid: string) => request<{ keys: ApiKey[] }>('GET', `${p(pid)}/api-keys`).then((r) => r.keys),
  createApiKey: (pid: string, name: string, scopes: Scope[]) =>
    request<CreatedApiKey>('POST', `${p(pid)}/api-keys`, { name, scopes }),
  revokeApiKey: (pid: string, id: number) => request<unknown>('DELETE', `${p(pid)}/api-keys/${id}`),

  // Projects created in the browser (hosted mode).
  createProject: (body: NewProject) => request<Project>('POST', base, body),
  uploadFiles: (pid: string, files: FormData, signal?: AbortSignal) =>
    request<UploadResult>('POST', `${p(pid)}/files`, files, signal),
  startIngest: (pid: string) => request<unknown>('POST', `${p(pid)}/ingest`),
  ingest: (pid: string, signal?: AbortSignal) => request<IngestProgress>('GET', `${p(pid)}/ingest`, undefined, signal),
  settings: (pid: string) => request<ProjectSettings>('GET', `${p(pid)}/settings`),
  updateSettings: (pid: string, patch: Partial<ProjectSettings>) =>
    request<ProjectSettings>('PATCH', `${p(pid)}/settings`, patch),
  labellers: (pid: string) => request<{ labellers: Labeller[] }>('GET', `${p(pid)}/labellers`).then((r) => r.labellers),
};
