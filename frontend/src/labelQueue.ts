// The labeller's local queue of leased items. It prefetches so the labeller never waits,
// sends labels, skips and undos one at a time in order (an undo must follow the label it
// undoes), and outlives the labelling view so switching views does not strand leases.
import { api, ApiError, describeError, withToken, type Item, type Project } from './api';

/** Refill when fewer than this many items are left. */
const LOW_WATER = 3;
/** How many new items to ask for at a time. */
const FETCH_COUNT = 10;
/** Images decoded ahead of the current one. */
const PRELOAD = 5;
const RETRY_MS = 10_000;

export interface QueueState {
  current: Item | null;
  upcoming: Item[];
  /** Waiting for the server with nothing to show. */
  loading: boolean;
  /** The server has nothing left and the queue is empty. */
  done: boolean;
  /** Nothing to show, but the server is not done (others hold the remaining leases). */
  starved: boolean;
  error: string | null;
  notice: string | null;
  /** The label the current item had before an undo brought it back. */
  restoredLabel: string | null;
  labelledThisSession: number;
}

export class LabelQueue {
  private queue: Item[] = [];
  private known = new Map<number, Item>();
  /** Items labelled in this tab (and not undone): never shown again even if a fetch races. */
  private labelled = new Set<number>();
  private shownAt = performance.now();
  private pausedAt: number | null = null;
  private fetching = false;
  private serverDone = false;
  private writes: Promise<unknown> = Promise.resolve();
  private listeners = new Set<() => void>();
  /** Held so the preloads are not collected before they finish. */
  readonly preloaded: HTMLImageElement[] = [];
  private retryTimer: number | undefined;
  private disposed = false;
  private state: QueueState;

  constructor(
    private readonly project: Project,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.state = {
      current: null,
      upcoming: [],
      loading: true,
      done: false,
      starved: false,
      error: null,
      notice: null,
      restoredLabel: null,
      labelledThisSession: 0,
    };
  }

  subscribe = (listener: () => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = () => this.state;

  /** Stop asking the server for items (the queue was forgotten). */
  dispose() {
    this.disposed = true;
    window.clearTimeout(this.retryTimer);
  }

  /** Start (or resume) prefetching. */
  start() {
    this.refill();
  }

  /** Stop the current item's clock while the labeller is elsewhere (another view or tab). */
  pause() {
    this.pausedAt ??= this.now();
  }

  resume() {
    if (this.pausedAt === null) return;
    this.shownAt += this.now() - this.pausedAt;
    this.pausedAt = null;
  }

  label(label: string) {
    const item = this.queue.shift();
    if (!item) return;
    this.resume();
    const timeTaken = Math.max(0, Math.round(this.now() - this.shownAt));
    this.labelled.add(item.id);
    // Queue the write before advancing: the refill that advancing may start must follow it.
    this.write(async () => {
      try {
        await api.label(this.project.id, { item_id: item.id, label, time_taken_ms: timeTaken });
      } catch (error) {
        this.labelled.delete(item.id);
        this.fail(error, item);
      }
    });
    this.advance({ restoredLabel: null, notice: null, error: null, labelledThisSession: this.state.labelledThisSession + 1 });
  }

  skip() {
    const item = this.queue.shift();
    if (!item) return;
    this.write(async () => {
      try {
        await api.skip(this.project.id, item.id);
      } catch (error) {
        this.fail(error, null);
      }
    });
    this.advance({ restoredLabel: null, notice: null, error: null });
  }

  undo() {
    this.write(async () => {
      try {
        const undone = await api.undo(this.project.id);
        const item = this.known.get(undone.item_id) ?? (await this.fetchItem(undone.item_id, undone.path));
        this.labelled.delete(item.id);
        this.queue = [item, ...this.queue.filter((i) => i.id !== item.id)];
        this.advance({
          restoredLabel: undone.label,
          notice: null,
          error: null,
          labelledThisSession: Math.max(0, this.state.labelledThisSession - 1),
        });
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          this.set({ notice: 'Nothing to undo.' });
        } else {
          this.set({ error: describeError(error) });
        }
      }
    });
  }

  /** Ask the server again, e.g. after "you're done" when others may have released items. */
  retry() {
    this.serverDone = false;
    this.set({ error: null, notice: null });
    this.refill(true);
  }

  // A label or skip failed: show why, and give the item back unless the server says it is
  // not ours (404 gone, 409 leased to someone else).
  private fail(error: unknown, item: Item | null) {
    const lost = error instanceof ApiError && (error.status === 404 || error.status === 409);
    if (item && !lost) this.queue = [item, ...this.queue.filter((i) => i.id !== item.id)];
    this.advance({ error: describeError(error), labelledThisSession: this.state.labelledThisSession - (item ? 1 : 0) });
  }

  private write(action: () => Promise<void>) {
    this.writes = this.writes.then(action, action);
  }

  // The current item changed: restart its clock, publish, prefetch.
  private advance(patch: Partial<QueueState>) {
    this.shownAt = this.now();
    this.set(patch);
    this.preload();
    this.refill();
  }

  private refill(force = false) {
    if (this.fetching || this.disposed) return;
    if (this.queue.length >= LOW_WATER) return;
    if (this.serverDone && this.queue.length > 0 && !force) return;
    this.fetching = true;
    window.clearTimeout(this.retryTimer);
    if (this.queue.length === 0) this.set({});
    // Wait for labels in flight, so the server does not hand back an item just labelled.
    const run = async () => {
      try {
        // The server may hand back items already leased to us first, so ask for enough to
        // get new ones too.
        const count = Math.min(50, this.queue.length + FETCH_COUNT);
        const next = await api.next(this.project.id, count);
        const have = new Set(this.queue.map((i) => i.id));
        const fresh = next.items.filter((i) => !have.has(i.id) && !this.labelled.has(i.id));
        for (const item of fresh) this.known.set(item.id, item);
        const wasEmpty = this.queue.length === 0;
        this.queue.push(...fresh);
        this.serverDone = next.done;
        if (wasEmpty && fresh.length > 0) this.shownAt = this.now();
        this.fetching = false;
        this.set({});
        this.preload();
        if (this.queue.length === 0 && !next.done) {
          this.retryTimer = window.setTimeout(() => this.refill(), RETRY_MS);
        }
      } catch (error) {
        this.fetching = false;
        this.set({ error: describeError(error) });
        this.retryTimer = window.setTimeout(() => this.refill(), RETRY_MS);
      }
    };
    this.writes = this.writes.then(run, run);
  }

  private async fetchItem(id: number, path: string): Promise<Item> {
    const item: Item = {
      id,
      path,
      content_url: api.contentUrl(this.project.id, id),
      text: null,
      data: null,
      stage: 'train',
      prediction: null,
    };
    if (this.project.data_type === 'text') item.text = await api.content(this.project.id, id);
    if (this.project.data_type === 'json') {
      const raw = await api.content(this.project.id, id);
      try {
        item.data = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        item.text = raw;
      }
    }
    this.known.set(id, item);
    return item;
  }

  private preload() {
    if (this.project.data_type !== 'images') return;
    const images = this.queue.slice(1, 1 + PRELOAD).map((item) => {
      const img = new Image();
      img.decoding = 'async';
      img.src = withToken(item.content_url);
      return img;
    });
    this.preloaded.splice(0, this.preloaded.length, ...images);
  }

  private set(patch: Partial<QueueState>) {
    const current = this.queue[0] ?? null;
    const empty = current === null;
    this.state = {
      ...this.state,
      ...patch,
      current,
      upcoming: this.queue.slice(1),
      loading: empty && this.fetching,
      done: empty && !this.fetching && this.serverDone,
      starved: empty && !this.fetching && !this.serverDone,
    };
    for (const listener of this.listeners) listener();
  }
}

const queues = new Map<string, LabelQueue>();

/** Forget every queue (signing out or switching organisation: another caller, maybe other
 * projects under the same ids). */
export function resetQueues() {
  for (const queue of queues.values()) queue.dispose();
  queues.clear();
}

/** One queue per project for the life of the page (or of the session, with accounts). */
export function queueFor(project: Project): LabelQueue {
  let queue = queues.get(project.id);
  if (!queue) {
    queue = new LabelQueue(project);
    queues.set(project.id, queue);
  }
  return queue;
}
