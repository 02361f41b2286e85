/**
 * The pods of this node, kept current by list+watch (fieldSelector
 * spec.nodeName), indexed by UID: the kubelet names pod cgroups after it.
 *
 * The watch resumes from the last resourceVersion when it drops, relists on
 * 410 Gone, retries with jittered backoff when the API server is unreachable
 * (also at start), and relists every resync period (jittered) to reconcile
 * anything missed (see list-watch.ts). An event or list item that cannot be
 * used is counted by reason (tally_kube_watch_errors_total) and skipped.
 *
 * A pod's workload is resolved once, when the pod is first seen (or its
 * owner changes), through owner lookups that are cached and single-flight
 * (owner-lookups.ts): updates and relists of known pods cost no request.
 */
import type { K8s } from './client';
import { BackoffOptions, jittered } from './backoff';
import { KubeHttp } from './http';
import { ListWatch, WATCH_ERROR_REASONS, WatchErrorReason } from './list-watch';
import { OutageLog } from './outage-log';
import { OwnerLookups } from './owner-lookups';
import { PodRecord, readPod, sameLabels } from './pod-object';
import { KubeRequestCounts } from './request-counts';
import { resolveWorkload } from './workload';
import { CacheStats } from '../../util/cache-stats';
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
  /** The owner reference the workload was resolved from ("" for none). */
  ownerKey: string;
  /** The pod's Kubernetes labels, as the last list or event had them. */
  labels: Readonly<Record<string, string>>;
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
  /** A full relist every this long, or up to half as long again (jittered per node and period). */
  resyncMs?: number;
  /** Deleted pods are kept this long, so their series keep their labels until staleness removes them. */
  deletedRetentionMs?: number;
  /** The series TTL: deleted pods are kept for at least twice as long. */
  seriesTtlMs?: number;
  /** Passed on to the list+watch and the owner lookups (tests and benches shorten them). */
  watchTimeoutSeconds?: number;
  backoff?: Partial<BackoffOptions>;
  /** Owner lookup cache: its bound and TTL. */
  ownerCacheCapacity?: number;
  ownerCacheTtlMs?: number;
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
  private readonly owners: OwnerLookups;
  /** The client every request of this agent goes through, so that tally_kube_requests_total counts them all. */
  readonly http: KubeHttp;
  private listWatch?: ListWatch<PodRecord>;
  private resyncTimer?: NodeJS.Timeout;
  private expireTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly logged = new Map<WatchErrorReason, { at: number; unlogged: number }>();
  private readonly watchOutage: OutageLog;
  /** Pods whose workload lookup is under way, by uid: the record to fill in when it answers. */
  private readonly resolving = new Map<string, PodInfo>();
  /** Pods whose labels changed (a MODIFIED event, or a relist with other labels) since last taken, by uid. */
  private readonly labelChanges = new Set<string>();

  constructor(
    kc: KubeConfig,
    private readonly opts: PodWatcherOptions,
    private readonly log: Logger,
  ) {
    this.http = new KubeHttp(kc);
    this.watchOutage = new OutageLog(log, 'kubernetes pod watch', { server: this.http.server });
    const ownerOutage = new OutageLog(log, 'kubernetes owner lookups', { server: this.http.server });
    this.owners = new OwnerLookups(this.http, {
      capacity: opts.ownerCacheCapacity,
      ttlMs: opts.ownerCacheTtlMs,
      backoff: opts.backoff,
      onRetry: (reason, message) => ownerOutage.failed(reason, message),
      onAnswer: () => ownerOutage.answered(),
    });
  }

  /** Every request to the API server so far (tally_kube_requests_total). */
  get requests(): KubeRequestCounts {
    return this.http.requests;
  }

  /** The owner lookup cache, for tally_cache_*. */
  get ownerCache(): CacheStats {
    return this.owners.stats;
  }

  /** Starts watching; resolves at once, before the first list succeeds. */
  async start(): Promise<void> {
    this.listWatch = new ListWatch<PodRecord>({
      http: this.http,
      path: '/api/v1/pods',
      query: { fieldSelector: `spec.nodeName=${this.opts.nodeName}` },
      read: readPod,
      resourceVersion: (p) => p.resourceVersion,
      onList: (pods) => {
        this.replace(pods);
        this.scheduleResync(); // the period counts from the last list, whatever made it (410 Gone, a failure)
      },
      onEvent: (type, pod) => {
        this.stats.events[type]++;
        if (type === 'DELETED') this.remove(pod);
        else this.upsert(pod);
      },
      onError: (reason, message, retrying) => this.failed(reason, message, retrying),
      onSync: () => {
        this.stats.lastSync = Date.now();
        this.connectedSince ??= Date.now();
        this.watchOutage.answered();
      },
      onDisconnected: () => (this.connectedSince = undefined),
      watchTimeoutSeconds: this.opts.watchTimeoutSeconds,
      backoff: this.opts.backoff,
    });
    this.listWatch.start();
    this.scheduleResync();
    this.expireTimer = setInterval(() => this.expireDeleted(), 60_000);
    this.expireTimer.unref();
  }

  /** Each node's next resync at its own random time, so nodes started together do not relist together. */
  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    if (this.stopped) return;
    const base = this.opts.resyncMs ?? 5 * 60_000;
    this.resyncTimer = setTimeout(() => {
      this.listWatch?.resync();
      this.scheduleResync();
    }, jittered(base, 0.5, this.opts.backoff?.random));
    this.resyncTimer.unref();
  }

  /**
   * Counts a failure or a skipped event. A failed request is logged once per
   * outage (OutageLog); skipped events are logged without flooding the log
   * when an API server sends thousands.
   */
  private failed(reason: WatchErrorReason, message: string, retrying: boolean): void {
    this.stats.errors[reason]++;
    if (retrying) {
      this.watchOutage.failed(reason, message);
      return;
    }
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
    const ownerKey = pod.owner ? `${pod.owner.kind}/${pod.owner.name}` : '';
    // The same owner as before: its workload is known (or being resolved), and costs no request.
    const sameOwner = prev !== undefined && prev.ownerKey === ownerKey;
    const info: PodInfo = {
      uid: pod.uid,
      namespace: pod.namespace,
      name: pod.name,
      workload: prev?.workload ?? pod.name,
      workloadKind: prev?.workloadKind ?? 'Pod',
      resolved: sameOwner ? prev.resolved : false,
      containers: pod.containers,
      resourceVersion: pod.resourceVersion,
      ownerKey,
      labels: pod.labels,
    };
    if (prev && !sameLabels(prev.labels, pod.labels)) this.labelChanges.add(pod.uid);
    this.pods.set(pod.uid, info);
    if (pod.mirrorHash) this.mirrors.set(pod.mirrorHash, info);
    if (sameOwner) {
      // A lookup under way finishes into the record that replaced prev.
      if (!prev.resolved) this.resolving.set(pod.uid, info);
      this.expireDeleted();
      return;
    }
    this.resolving.set(pod.uid, info);
    resolveWorkload({ namespace: pod.namespace, name: pod.name, labels: pod.labels, owner: pod.owner }, this.owners.lookup).then(
      (w) => {
        // The newest record of this pod, unless its owner changed again meanwhile.
        const current = this.resolving.get(pod.uid);
        if (!current || current.ownerKey !== ownerKey) return;
        this.resolving.delete(pod.uid);
        current.workload = w.name;
        current.workloadKind = w.kind;
        current.resolved = true;
      },
      (e: Error) => {
        this.resolving.delete(pod.uid);
        this.log.warn('resolving a pod\'s workload failed; it keeps the pod\'s name', { pod: `${pod.namespace}/${pod.name}`, error: e.message });
      },
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

  /** The uids of pods whose labels changed since the last call (a set: at most one per pod). */
  takeLabelChanges(): string[] {
    const uids = [...this.labelChanges];
    this.labelChanges.clear();
    return uids;
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

  /** Stops watching, owner lookups and every timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.resyncTimer);
    clearInterval(this.expireTimer);
    this.owners.stop();
    await this.listWatch?.stop();
  }
}
