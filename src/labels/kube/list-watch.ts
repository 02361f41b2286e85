/**
 * tally's list+watch of one resource, the way the API server's protocol
 * (and client-go's reflector) does it:
 *
 *   list ─► watch from the list's resourceVersion ─► events …
 *     ▲        │ the stream ends (server timeout, load balancer): watch again from the last resourceVersion
 *     │        │ the connection breaks: the same, after backoff
 *     └────────┤ 410 Gone / ERROR event "Expired": list again at once (the history is gone), once
 *              │ any other ERROR event, an HTTP error, an event too large: list again, after backoff
 *              └ resync(): list again at once (reconciles whatever was missed)
 *
 * tally runs on every node, so whatever one node does, thousands do at once
 * when the API server restarts. Every wait before a retry is drawn with full
 * jitter (backoff.ts), and each watch asks the server for its own random
 * timeout, so that neither reconnects nor renewals move in step.
 *
 * It replaces the client library's ListWatch informer, whose stream handler
 * threw on an event without metadata and took the process down. Here every
 * line is decoded by `read` at the boundary; one that cannot be used is
 * reported (onError, with a reason) and skipped, and the watch goes on.
 */
import { Backoff, BackoffOptions, DEFAULT_BACKOFF, jittered } from './backoff';
import { KubeHttp, KubeRequestError } from './http';
import { isMapping, UnusableObject } from './pod-object';

/** Why an event, a list or a request was unusable: the `reason` label of tally_kube_watch_errors_total. */
export const WATCH_ERROR_REASONS = [
  'connection', // the API server could not be reached, or the connection broke
  'http_status', // a list or watch answered other than 200 (and other than 410)
  'expired', // 410 Gone: the resourceVersion is too old; relisted at once
  'error_event', // an ERROR event other than 410 in the watch stream
  'too_large', // a list or one event past its size cap
  'invalid_json', // a line (or list) that is not JSON
  'bad_event', // JSON that is not a {"type", "object"} event
  'unknown_type', // an event type other than ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  'bad_list', // a list without items or resourceVersion
  'no_object', // an event or list item whose object is missing or not a mapping
  'no_metadata', // an object without metadata, or without uid, name or namespace
] as const;
export type WatchErrorReason = (typeof WATCH_ERROR_REASONS)[number];

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchOptions<T extends object> {
  http: KubeHttp;
  /** The collection, e.g. /api/v1/pods. */
  path: string;
  /** Selectors, sent with the list and every watch. */
  query: Record<string, string>;
  /** Decodes one object; a reason when it cannot be used. */
  read: (o: unknown) => T | UnusableObject;
  resourceVersion: (item: T) => string | undefined;
  /** A list succeeded: these are all the objects there are now. */
  onList: (items: T[]) => void;
  onEvent: (type: WatchEventType, item: T) => void;
  /**
   * Something was unusable or failed; counted by the caller. retrying: a
   * request failed and is retried after backoff (the caller logs it once per
   * outage), rather than one event or item skipped.
   */
  onError: (reason: WatchErrorReason, message: string, retrying: boolean) => void;
  /** The API server answered (a list, or a watch event): the objects are current. */
  onSync?: () => void;
  /** Failures leave the objects possibly stale until the next list or watch answers. */
  onDisconnected?: () => void;
  /**
   * Each watch asks the server to end it after a random time between this and
   * twice this (5 to 10 minutes by default, as client-go's reflector does).
   */
  watchTimeoutSeconds?: number;
  listTimeoutMs?: number;
  /** Retries: full-jitter backoff, 0.5 s first step, 30 s cap by default. */
  backoff?: Partial<BackoffOptions>;
}

/** How a watch ended, and what comes next. */
type Next = { relist: boolean; backoff: boolean };

export class ListWatch<T extends object> {
  private rv?: string;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private stopped = false;
  /** Aborts a list under way at stop(), which must not wait out the list's timeout. */
  private readonly stopping = new AbortController();
  private loop?: Promise<void>;
  private current?: AbortController;
  private wantRelist = false;
  private sleeping?: { timer: NodeJS.Timeout; wake: () => void };

  constructor(private readonly o: ListWatchOptions<T>) {
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, ...o.backoff });
    this.random = o.backoff?.random ?? Math.random;
  }

  /** Starts listing and watching; returns at once. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Lists again now, ending the watch under way; the list reconciles whatever the watch missed. */
  resync(): void {
    this.wantRelist = true;
    this.current?.abort();
  }

  /** Ends the watch and every timer; resolves when the loop has stopped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.current?.abort();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.wake();
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let next: Next;
      try {
        if (this.rv === undefined || this.wantRelist) await this.list();
        next = await this.watch();
      } catch (e) {
        if (this.stopped) return;
        next = this.failed(e);
      }
      if (next.relist) this.rv = undefined;
      if (next.backoff) await this.sleep(this.backoff.next());
    }
  }

  /** A list or watch request failed: count it, and say whether the resourceVersion is still good. */
  private failed(e: unknown): Next {
    const err = e instanceof KubeRequestError ? e : new KubeRequestError((e as Error)?.message ?? String(e), 'connection');
    const expired = err.reason === 'expired';
    this.o.onError(err.reason, err.message, !expired);
    this.o.onDisconnected?.();
    // Only a broken connection keeps the place in the stream; anything else may have lost an event.
    return expired ? { relist: true, backoff: false } : { relist: err.reason !== 'connection', backoff: true };
  }

  private async list(): Promise<void> {
    this.wantRelist = false;
    const body = await this.o.http.getJson(this.o.path, this.o.query, { verb: 'list', timeoutMs: this.o.listTimeoutMs ?? 60_000, signal: this.stopping.signal });
    const rv = isMapping(body) && isMapping(body.metadata) ? body.metadata.resourceVersion : undefined;
    if (!isMapping(body) || !Array.isArray(body.items) || typeof rv !== 'string' || rv === '') {
      throw new KubeRequestError(`GET ${this.o.path}: the answer is not a list with items and a resourceVersion`, 'bad_list');
    }
    const items: T[] = [];
    for (const raw of body.items) {
      const item = this.o.read(raw);
      if (typeof item === 'string') this.o.onError(item, `GET ${this.o.path}: a list item was skipped (${item})`, false);
      else items.push(item);
    }
    this.o.onList(items);
    this.o.onSync?.();
    this.rv = rv;
    this.backoff.reset();
  }

  /** One watch, from this.rv, until it ends. */
  private async watch(): Promise<Next> {
    // A resync asked for while listing: list again rather than wait for this watch to end.
    if (this.wantRelist) return { relist: true, backoff: false };
    const ac = new AbortController();
    this.current = ac;
    const timeoutSeconds = Math.max(1, Math.round(jittered(this.o.watchTimeoutSeconds ?? 300, 1, this.random)));
    const started = Date.now();
    let events = 0;
    let ending: Next | undefined;
    const end = (n: Next): void => {
      ending = n;
      ac.abort();
    };
    try {
      await this.o.http.watch(
        this.o.path,
        { ...this.o.query, watch: 'true', resourceVersion: this.rv!, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) },
        {
          signal: ac.signal,
          // Bookmarks (about once a minute) or the server's own timeout keep it from being idle longer.
          idleMs: (timeoutSeconds + 30) * 1000,
          // Answered: from here the events replay whatever happened since this.rv.
          onStart: () => this.o.onSync?.(),
          onLine: (line) => {
            if (ending) return;
            const r = this.line(line);
            if (r === 'event') {
              events++;
              this.backoff.reset();
            } else if (r) end(r);
          },
        },
      );
    } catch (e) {
      if (this.stopped) return { relist: false, backoff: false };
      if (ending) return ending;
      if (ac.signal.aborted && this.wantRelist) return { relist: true, backoff: false };
      throw e;
    } finally {
      if (this.current === ac) this.current = undefined;
    }
    // An ERROR event may come last, just before the server ends the stream.
    if (ending) return ending;
    // The server ended the stream: normal at its timeout. One that ends at once, empty, is not hammered.
    return { relist: false, backoff: events === 0 && Date.now() - started < 1000 };
  }

  /** Handles one line of a watch: 'event' when it was one, a Next when the watch must end, else nothing. */
  private line(line: string): 'event' | Next | undefined {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      this.o.onError('invalid_json', `watch ${this.o.path}: a line that is not JSON was skipped: ${clip(line)}`, false);
      return undefined;
    }
    if (!isMapping(ev) || typeof ev.type !== 'string' || !('object' in ev)) {
      this.o.onError('bad_event', `watch ${this.o.path}: a line that is not an event was skipped: ${clip(line)}`, false);
      return undefined;
    }
    const { type, object } = ev;
    if (type === 'ERROR') {
      const status = isMapping(object) ? object : {};
      const message = `watch ${this.o.path}: ERROR event: ${typeof status.message === 'string' ? status.message : clip(line)}`;
      if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
        this.o.onError('expired', message, false);
        return { relist: true, backoff: false };
      }
      this.o.onError('error_event', message, true);
      this.o.onDisconnected?.();
      return { relist: true, backoff: true };
    }
    if (type === 'BOOKMARK') {
      const rv = isMapping(object) && isMapping(object.metadata) ? object.metadata.resourceVersion : undefined;
      if (typeof rv === 'string' && rv !== '') this.rv = rv;
      else this.o.onError(isMapping(object) ? 'no_metadata' : 'no_object', `watch ${this.o.path}: a BOOKMARK without a resourceVersion was skipped`, false);
      return undefined;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') {
      this.o.onError('unknown_type', `watch ${this.o.path}: an event of unknown type ${JSON.stringify(clip(type))} was skipped`, false);
      return undefined;
    }
    const item = this.o.read(object);
    if (typeof item === 'string') {
      this.o.onError(item, `watch ${this.o.path}: a ${type} event was skipped (${item}): ${clip(line)}`, false);
      return undefined;
    }
    const rv = this.o.resourceVersion(item);
    if (rv) this.rv = rv;
    this.o.onEvent(type, item);
    this.o.onSync?.();
    return 'event';
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((wake) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        wake();
      }, ms);
      timer.unref();
      this.sleeping = { timer, wake };
    });
  }
}

/** Enough of a bad line to recognise it in a log, never megabytes. */
function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}
