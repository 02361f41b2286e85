/**
 * The pods of this node, kept current by list+watch (fieldSelector
 * spec.nodeName), indexed by UID: the kubelet names pod cgroups after it.
 *
 * The watch resumes from the last resourceVersion when it drops, relists on
 * 410 Gone, retries with backoff when the API server is unreachable (also at
 * start), and relists every resync period to reconcile anything missed (see
 * list-watch.ts). An event or list item that cannot be used is counted by
 * reason (tally_kube_watch_errors_total) and skipped.
 */
import { LRUCache } from 'lru-cache';
import type { K8s } from './client';
import { KubeHttp } from './http';
import { ListWatch, WATCH_ERROR_REASONS, WatchErrorReason } from './list-watch';
import { ownerOf, PodRecord, readPod } from './pod-object';
import { OwnerRef, resolveWorkload } from './workload';
import { Logger } from '../../util/log';

type KubeConfig = InstanceType<K8s['KubeConfig']>;

export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  /** The controller's name (see workload.ts); the pod's own name until resolved. */
  workload: string;
  workloadKind: string;
  /** True once the workload has been resolved (owner lookups done). */
  resolved: boolean;
  /** Container id (without the runtime:// prefix) -> container name. */
  containers: Map<string, string>;
  /** When the API server reported the pod deleted (ms), if it did. */
  deletedAt?: number;
  /** The pod object's resourceVersion, when it had one. */
  resourceVersion?: string;
}

export interface PodWatcherStats {
  events: { ADDED: number; MODIFIED: number; DELETED: number };
  /** Failed lists and watches, and events or list items skipped, by reason (every reason present, 0 until seen). */
  errors: Record<WatchErrorReason, number>;
  lists: number;
  /** Last time the API server answered a list or sent an event (ms), 0 if never. */
  lastSync: number;
}

export interface PodWatcherOptions {
  nodeName: string;
  resyncMs?: number;
  /** Deleted pods are kept this long, so their series keep their labels until staleness removes them. */
  deletedRetentionMs?: number;
  /** The series TTL: deleted pods are kept for at least twice as long. */
  seriesTtlMs?: number;
  /** Passed on to the list+watch (tests shorten them). */
  watchTimeoutSeconds?: number;
  initialBackoffMs?: number;
}

/** A reason is logged at its first occurrence, then at most this often, with how many went unlogged. */
const LOG_EVERY_MS = 60_000;

export class PodWatcher {
  readonly stats: PodWatcherStats = {
    events: { ADDED: 0, MODIFIED: 0, DELETED: 0 },
    errors: Object.fromEntries(WATCH_ERROR_REASONS.map((r) => [r, 0])) as Record<WatchErrorReason, number>,
    lists: 0,
    lastSync: 0,
  };
  private readonly pods = new Map<string, PodInfo>();
  /**
   * Static pods: the kubelet names their cgroups after the config hash, which
   * the API server's mirror pod carries as an annotation, not as its uid.
   */
  private readonly mirrors = new Map<string, PodInfo>();
  /** Since when the pods listed are known to be current (the API server answered and no error since). */
  connectedSince?: number;
  private readonly owners = new LRUCache<string, { ref?: OwnerRef }>({ max: 4096, ttl: 5 * 60_000 });
  private readonly http: KubeHttp;
  private listWatch?: ListWatch<PodRecord>;
  private resyncTimer?: NodeJS.Timeout;
  private expireTimer?: NodeJS.Timeout;
  private readonly logged = new Map<WatchErrorReason, { at: number; unlogged: number }>();

  constructor(
    kc: KubeConfig,
    private readonly opts: PodWatcherOptions,
    private readonly log: Logger,
  ) {
    this.http = new KubeHttp(kc);
  }

  /** Starts watching; resolves at once, before the first list succeeds. */
  async start(): Promise<void> {
    this.listWatch = new ListWatch<PodRecord>({
      http: this.http,
      path: '/api/v1/pods',
      query: { fieldSelector: `spec.nodeName=${this.opts.nodeName}` },
      read: readPod,
      resourceVersion: (p) => p.resourceVersion,
      onList: (pods) => this.replace(pods),
      onEvent: (type, pod) => {
        this.stats.events[type]++;
        if (type === 'DELETED') this.remove(pod);
        else this.upsert(pod);
      },
      onError: (reason, message) => this.failed(reason, message),
      onSync: () => {
        this.stats.lastSync = Date.now();
        this.connectedSince ??= Date.now();
      },
      onDisconnected: () => (this.connectedSince = undefined),
      watchTimeoutSeconds: this.opts.watchTimeoutSeconds,
      initialBackoffMs: this.opts.initialBackoffMs,
    });
    this.listWatch.start();
    this.resyncTimer = setInterval(() => this.listWatch?.resync(), this.opts.resyncMs ?? 5 * 60_000);
    this.resyncTimer.unref();
    this.expireTimer = setInterval(() => this.expireDeleted(), 60_000);
    this.expireTimer.unref();
  }

  /** Counts a failure or a skipped event; logs it without flooding the log when an API server sends thousands. */
  private failed(reason: WatchErrorReason, message: string): void {
    this.stats.errors[reason]++;
    const now = Date.now();
    const seen = this.logged.get(reason);
    if (seen && now - seen.at < LOG_EVERY_MS) {
      seen.unlogged++;
      return;
    }
    const unlogged = seen?.unlogged ?? 0;
    this.logged.set(reason, { at: now, unlogged: 0 });
    this.log.warn('kubernetes pod watch: skipped or retrying (tally_kube_watch_errors_total)', {
      reason,
      error: message,
      server: this.http.server,
      ...(unlogged ? { more_since_last_log: unlogged } : {}),
    });
  }

  /** The owner of a ReplicaSet or Job, for workload names; cached, and undefined when unreadable. */
  private readonly lookup = async (kind: 'ReplicaSet' | 'Job', namespace: string, name: string): Promise<OwnerRef | undefined> => {
    const key = `${kind}/${namespace}/${name}`;
    const hit = this.owners.get(key);
    if (hit) return hit.ref;
    const path = kind === 'ReplicaSet' ? `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets/${encodeURIComponent(name)}` : `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs/${encodeURIComponent(name)}`;
    let ref: OwnerRef | undefined;
    try {
      const obj = await this.http.getJson(path, {}, { timeoutMs: 30_000, maxBytes: 4 * 1024 * 1024 });
      ref = ownerOf((obj as { metadata?: { ownerReferences?: unknown } } | null)?.metadata?.ownerReferences);
    } catch {
      ref = undefined; // not found or not allowed: the naming rule decides
    }
    this.owners.set(key, { ref });
    return ref;
  };

  /**
   * A full list: it is the truth; pods known but not in it were deleted while
   * unwatched. What it changed is counted as the events that would have said
   * so (an informer's handlers see the same), so tally_kube_watch_events_total
   * counts every change learnt, however it was learnt.
   */
  private replace(pods: PodRecord[]): void {
    this.stats.lists++;
    const seen = new Set<string>();
    for (const p of pods) {
      seen.add(p.uid);
      const prev = this.pods.get(p.uid);
      if (!prev || prev.deletedAt !== undefined) this.stats.events.ADDED++;
      else if (prev.resourceVersion !== p.resourceVersion) this.stats.events.MODIFIED++;
      this.upsert(p);
    }
    for (const [uid, info] of this.pods) {
      if (seen.has(uid) || info.deletedAt !== undefined) continue;
      this.stats.events.DELETED++;
      info.deletedAt = Date.now();
    }
  }

  private upsert(pod: PodRecord): void {
    const prev = this.pods.get(pod.uid);
    const info: PodInfo = {
      uid: pod.uid,
      namespace: pod.namespace,
      name: pod.name,
      workload: prev?.workload ?? pod.name,
      workloadKind: prev?.workloadKind ?? 'Pod',
      resolved: prev?.resolved ?? false,
      containers: pod.containers,
      resourceVersion: pod.resourceVersion,
    };
    this.pods.set(pod.uid, info);
    if (pod.mirrorHash) this.mirrors.set(pod.mirrorHash, info);
    resolveWorkload({ namespace: pod.namespace, name: pod.name, labels: pod.labels, owner: pod.owner }, this.lookup).then(
      (w) => {
        info.workload = w.name;
        info.workloadKind = w.kind;
        info.resolved = true;
      },
      (e: Error) => this.log.warn('resolving a pod\'s workload failed; it keeps the pod\'s name', { pod: `${pod.namespace}/${pod.name}`, error: e.message }),
    );
    this.expireDeleted();
  }

  private remove(pod: PodRecord): void {
    const info = this.pods.get(pod.uid);
    if (info) info.deletedAt = Date.now();
  }

  private expireDeleted(): void {
    // Long enough for staleness to see the deletion and retire the series.
    const keep = Math.max(this.opts.deletedRetentionMs ?? 10 * 60_000, 2 * (this.opts.seriesTtlMs ?? 0));
    const now = Date.now();
    const expired = (p: PodInfo): boolean => p.deletedAt !== undefined && now - p.deletedAt > keep;
    for (const [uid, p] of this.pods) if (expired(p)) this.pods.delete(uid);
    for (const [hash, p] of this.mirrors) if (expired(p) || this.pods.get(p.uid) !== p) this.mirrors.delete(hash);
  }

  /** The pod a kubelet cgroup names: by uid, or by config hash for a static pod. */
  byUid(uid: string): PodInfo | undefined {
    return this.pods.get(uid) ?? this.mirrors.get(uid);
  }

  /** Pods known and not deleted. */
  *alive(): IterableIterator<PodInfo> {
    for (const p of this.pods.values()) if (p.deletedAt === undefined) yield p;
  }

  /** Every pod known, deleted ones still retained included. */
  known(): IterableIterator<PodInfo> {
    return this.pods.values();
  }

  /** Pods known and not deleted. */
  get size(): number {
    let n = 0;
    for (const p of this.pods.values()) if (p.deletedAt === undefined) n++;
    return n;
  }

  /** Stops watching and every timer. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    clearInterval(this.expireTimer);
    await this.listWatch?.stop();
  }
}
