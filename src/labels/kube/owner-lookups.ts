/**
 * Owner lookups: the GET of a ReplicaSet or Job that names a pod's workload
 * (its Deployment or CronJob). Every new pod may need one, so on a cluster
 * they are the requests that grow with churn. Three rules keep them few:
 *
 *   - cached, with a bound (least recently used go first) and a TTL, and
 *     reported as tally_cache_*{cache="kube_owners"};
 *   - single-flight: while one lookup of an owner is under way, every other
 *     pod of that owner waits for its answer instead of asking again;
 *   - a failure that may pass (no answer, 429, 5xx) is retried with jittered
 *     backoff a few times; a definite answer (404, 403) is cached like a hit,
 *     and the workload naming rule (workload.ts) decides.
 */
import { setMaxListeners } from 'node:events';
import { LRUCache } from 'lru-cache';
import { CacheStats } from '../../util/cache-stats';
import { Backoff, BackoffOptions, DEFAULT_BACKOFF } from './backoff';
import { KubeHttp, KubeRequestError } from './http';
import { ownerOf } from './pod-object';
import { OwnerLookup, OwnerRef } from './workload';

export interface OwnerLookupsOptions {
  capacity?: number;
  ttlMs?: number;
  /** Attempts per lookup before it gives up (then the naming rule decides, for failedTtlMs). */
  maxAttempts?: number;
  /** How long an owner that could not be read is not asked again. */
  failedTtlMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** A request failed and will be retried (for the outage log). */
  onRetry?: (reason: string, message: string) => void;
  /** The API server answered a lookup. */
  onAnswer?: () => void;
}

type Kind = Parameters<OwnerLookup>[0];

export class OwnerLookups {
  readonly stats: CacheStats;
  private readonly cache: LRUCache<string, { ref?: OwnerRef }>;
  private readonly inFlight = new Map<string, Promise<OwnerRef | undefined>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly http: KubeHttp,
    private readonly o: OwnerLookupsOptions = {},
  ) {
    // Each lookup under way listens on it (through AbortSignal.any): one per owner
    // at most, and a new node's first list starts dozens together.
    setMaxListeners(0, this.stopping.signal);
    const max = o.capacity ?? 4096;
    this.stats = new CacheStats('kube_owners', max);
    this.cache = new LRUCache({
      max,
      ttl: o.ttlMs ?? 30 * 60_000,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.stats.evictions++;
      },
    });
  }

  /** The owner of a ReplicaSet or Job; undefined when it has none or cannot be read. */
  readonly lookup: OwnerLookup = (kind, namespace, name) => {
    const key = `${kind}/${namespace}/${name}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.stats.hits++;
      return Promise.resolve(hit.ref);
    }
    const pending = this.inFlight.get(key);
    if (pending) {
      this.stats.hits++; // answered by the request under way, not by one more
      return pending;
    }
    this.stats.misses++;
    const p = this.fetch(kind, namespace, name).then(({ ref, ttl }) => {
      this.cache.set(key, { ref }, ttl ? { ttl } : undefined);
      this.stats.entries = this.cache.size;
      return ref;
    });
    this.inFlight.set(key, p);
    void p.finally(() => this.inFlight.delete(key));
    return p;
  };

  /** Lookups under way (each one request at most). */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Ends retries under way; their pods keep the naming rule's answer. */
  stop(): void {
    this.stopping.abort();
  }

  private async fetch(kind: Kind, namespace: string, name: string): Promise<{ ref?: OwnerRef; ttl?: number }> {
    const path = kind === 'ReplicaSet'
      ? `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets/${encodeURIComponent(name)}`
      : `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs/${encodeURIComponent(name)}`;
    const backoff = new Backoff({ ...DEFAULT_BACKOFF, ...this.o.backoff });
    const attempts = this.o.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        const obj = await this.http.getJson(path, {}, { verb: 'get', timeoutMs: 30_000, maxBytes: 4 * 1024 * 1024, signal: this.stopping.signal });
        this.o.onAnswer?.();
        return { ref: ownerOf((obj as { metadata?: { ownerReferences?: unknown } } | null)?.metadata?.ownerReferences) };
      } catch (e) {
        const err = e instanceof KubeRequestError ? e : new KubeRequestError(String((e as Error)?.message ?? e), 'connection');
        if (err.status !== undefined && !mayPass(err.status)) {
          this.o.onAnswer?.();
          return { ref: undefined }; // not found, not allowed: a definite answer
        }
        if (attempt >= attempts || this.stopping.signal.aborted) return { ref: undefined, ttl: this.o.failedTtlMs ?? 60_000 };
        this.o.onRetry?.(err.reason, err.message);
        await sleep(backoff.next(), this.stopping.signal);
      }
    }
  }
}

/** Statuses worth asking again: throttled, or the server's (or a proxy's) trouble. */
function mayPass(status: number): boolean {
  return status === 429 || status >= 500;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
