/**
 * The pods of this node, kept current by list+watch (fieldSelector
 * spec.nodeName), indexed by UID: the kubelet names pod cgroups after it.
 *
 * The watch resumes from the last resourceVersion when it drops, relists on
 * 410 Gone, retries with backoff when the API server is unreachable (also at
 * start), and relists every resync period to reconcile anything missed.
 */
import { LRUCache } from 'lru-cache';
import { k8s, K8s } from './client';
import { OwnerRef, resolveWorkload } from './workload';
import { Logger } from '../../util/log';

type KubeConfig = InstanceType<K8s['KubeConfig']>;
type V1Pod = import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } }).V1Pod;
type V1PodList = import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } }).V1PodList;

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
}

export interface PodWatcherStats {
  events: { ADDED: number; MODIFIED: number; DELETED: number };
  errors: number;
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
}

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

function containerIds(pod: V1Pod): Map<string, string> {
  const out = new Map<string, string>();
  const st = pod.status;
  for (const c of [...(st?.containerStatuses ?? []), ...(st?.initContainerStatuses ?? []), ...(st?.ephemeralContainerStatuses ?? [])]) {
    const id = c.containerID?.replace(/^[a-z-]+:\/\//, '');
    if (id) out.set(id, c.name);
  }
  return out;
}

export class PodWatcher {
  readonly stats: PodWatcherStats = { events: { ADDED: 0, MODIFIED: 0, DELETED: 0 }, errors: 0, lists: 0, lastSync: 0 };
  private readonly pods = new Map<string, PodInfo>();
  /**
   * Static pods: the kubelet names their cgroups after the config hash, which
   * the API server's mirror pod carries as an annotation, not as its uid.
   */
  private readonly mirrors = new Map<string, PodInfo>();
  /** Since when the pods listed are known to be current (a list succeeded and no error since). */
  connectedSince?: number;
  private readonly owners = new LRUCache<string, { ref?: OwnerRef }>({ max: 4096, ttl: 5 * 60_000 });
  private informer?: { start(): Promise<void>; stop(): Promise<void> };
  private restartTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private expireTimer?: NodeJS.Timeout;
  private backoffMs = 500;
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: PodWatcherOptions,
    private readonly log: Logger,
  ) {}

  /** Starts watching; resolves at once, before the first list succeeds. */
  async start(): Promise<void> {
    const api = await k8s();
    const core = this.kc.makeApiClient(api.CoreV1Api);
    const apps = this.kc.makeApiClient(api.AppsV1Api);
    const batch = this.kc.makeApiClient(api.BatchV1Api);
    const fieldSelector = `spec.nodeName=${this.opts.nodeName}`;
    const list = async (): Promise<V1PodList> => {
      const l = await core.listPodForAllNamespaces({ fieldSelector });
      this.stats.lists++;
      this.stats.lastSync = Date.now();
      this.connectedSince ??= Date.now();
      this.backoffMs = 500;
      return l;
    };
    this.lookup = async (kind, namespace, name) => {
      const key = `${kind}/${namespace}/${name}`;
      const hit = this.owners.get(key);
      if (hit) return hit.ref;
      let ref: OwnerRef | undefined;
      try {
        const obj = kind === 'ReplicaSet' ? await apps.readNamespacedReplicaSet({ name, namespace }) : await batch.readNamespacedJob({ name, namespace });
        const o = obj.metadata?.ownerReferences?.find((r) => r.controller) ?? obj.metadata?.ownerReferences?.[0];
        ref = o ? { kind: o.kind, name: o.name } : undefined;
      } catch {
        ref = undefined; // not found or not allowed: the naming rule decides
      }
      this.owners.set(key, { ref });
      return ref;
    };

    const informer = new api.ListWatch<V1Pod>('/api/v1/pods', new api.Watch(this.kc), list, false, undefined, fieldSelector);
    informer.on(api.ADD, (p) => this.upsert(p, 'ADDED'));
    informer.on(api.UPDATE, (p) => this.upsert(p, 'MODIFIED'));
    informer.on(api.DELETE, (p) => this.remove(p));
    informer.on(api.ERROR, (e) => this.retry(e));
    this.informer = informer;
    this.run();

    const resync = this.opts.resyncMs ?? 5 * 60_000;
    this.resyncTimer = setInterval(() => void this.resync(list), resync);
    this.resyncTimer.unref();
    this.expireTimer = setInterval(() => this.expireDeleted(), 60_000);
    this.expireTimer.unref();
  }

  private lookup: (kind: 'ReplicaSet' | 'Job', namespace: string, name: string) => Promise<OwnerRef | undefined> = async () => undefined;

  private run(): void {
    this.informer?.start().catch((e) => this.retry(e));
  }

  private retry(e: unknown): void {
    if (this.stopped) return;
    this.stats.errors++;
    this.connectedSince = undefined;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    this.log.warn('kubernetes pod watch failed; retrying', { error: (e as Error)?.message ?? String(e), retry_ms: delay });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.run(), delay);
    this.restartTimer.unref();
  }

  /** A full list, reconciled with the index: catches anything the watch missed. */
  private async resync(list: () => Promise<V1PodList>): Promise<void> {
    try {
      const l = await list();
      const seen = new Set<string>();
      for (const p of l.items) {
        if (p.metadata?.uid) seen.add(p.metadata.uid);
        this.upsert(p);
      }
      for (const [uid, info] of this.pods) if (!seen.has(uid) && info.deletedAt === undefined) info.deletedAt = Date.now();
    } catch (e) {
      this.stats.errors++;
      this.log.warn('kubernetes pod resync failed', { error: (e as Error).message });
    }
  }

  private upsert(pod: V1Pod, event?: 'ADDED' | 'MODIFIED'): void {
    if (event) {
      this.stats.events[event]++;
      this.stats.lastSync = Date.now();
    }
    const md = pod.metadata;
    if (!md?.uid || !md.name || !md.namespace) return;
    const prev = this.pods.get(md.uid);
    const info: PodInfo = {
      uid: md.uid,
      namespace: md.namespace,
      name: md.name,
      workload: prev?.workload ?? md.name,
      workloadKind: prev?.workloadKind ?? 'Pod',
      resolved: prev?.resolved ?? false,
      containers: containerIds(pod),
    };
    this.pods.set(md.uid, info);
    const mirror = md.annotations?.[MIRROR_ANNOTATION];
    if (mirror) this.mirrors.set(mirror, info);
    const o = md.ownerReferences?.find((r) => r.controller) ?? md.ownerReferences?.[0];
    void resolveWorkload({ namespace: md.namespace, name: md.name, labels: md.labels, owner: o ? { kind: o.kind, name: o.name } : undefined }, this.lookup).then((w) => {
      info.workload = w.name;
      info.workloadKind = w.kind;
      info.resolved = true;
    });
    this.expireDeleted();
  }

  private remove(pod: V1Pod): void {
    this.stats.events.DELETED++;
    this.stats.lastSync = Date.now();
    const info = pod.metadata?.uid ? this.pods.get(pod.metadata.uid) : undefined;
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
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.resyncTimer);
    clearInterval(this.expireTimer);
    await this.informer?.stop();
  }
}
