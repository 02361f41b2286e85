/**
 * A small world for the counting core: pods and their cgroups, what the
 * API server says about them, a clock, and the BPF programs' side of
 * counting, over a MemoryCounterStore. It keeps the ground truth: what each
 * metric counted, per bucket.
 */
import { MemoryCounterStore, MemoryCounterStoreOptions } from '../../../src/bpf/memory-counter-store';
import { BUCKET_SUM, CounterKey, KEY_LABEL_SET, KEY_NS_PENDING, KEY_RAW_CGROUP } from '../../../src/bpf/layout';
import { CountingCore } from '../../../src/cardinality/counting-core';
import { labelKey } from '../../../src/cardinality/series-limiter';
import { DEFAULT_ROLLUP_ORDER, DEFAULT_ROLLUP_RESERVE_PERCENT, RollupPlan } from '../../../src/cardinality/rollup-plan';
import { CgroupResolver, Removals } from '../../../src/cardinality/sources';
import { FilterLabel, LabelFilter, LabelValues } from '../../../src/labels/label-filter';
import { namespaceId } from '../../../src/labels/namespace-id';
import { NO_POD_LABELS, PodLabels } from '../../../src/labels/pod-labels';

export const COUNTER = 16;
export const HISTOGRAM = 17;
export const SUM_OF_HISTOGRAM = 18;
/** The pending id a matchNamespaces hook counts COUNTER under while the owner's namespace is unknown. */
export const PENDING = 20;

export interface Cgroup {
  id: bigint;
  values: LabelValues;
  /** When the API server has told us everything about its pod. */
  finalAt: number;
  removedAt?: number;
  /** When the API server said its pod was deleted. */
  deletedAt?: number;
  /** Its pod's Kubernetes labels (setPodLabels() changes them). */
  podLabels?: Record<string, string>;
}

export interface WorldOptions {
  filter: readonly FilterLabel[];
  seriesLimit: number;
  ttlMs: number;
  store: MemoryCounterStoreOptions;
  /** Namespaces a matchNamespaces hook admits. */
  admitted?: readonly string[];
  /** Percent of the limit kept for rolled-up series (the agent's default unless given). */
  rollupReserve?: number;
  /** --metrics-pod-labels. */
  podLabels?: PodLabels;
}

export class World {
  now = 1_700_000_000_000;
  readonly filter: LabelFilter;
  readonly store: MemoryCounterStore;
  readonly core: CountingCore;
  readonly cgroups = new Map<bigint, Cgroup>();
  /** Ground truth: per `${metric}:${bucket}`, what counted. */
  readonly truth = new Map<string, number>();
  /** Ground truth per workload: per `${metric}:${bucket}:${namespace}/${workload}`, what counted. */
  readonly truthByWorkload = new Map<string, number>();
  private nextCgroup = 1000n;
  /** cgroups whose pod's labels changed, as the labeler reports them. */
  private relabelled: bigint[] = [];
  readonly podLabels: PodLabels;

  constructor(readonly opts: WorldOptions) {
    this.filter = new LabelFilter(opts.filter);
    this.podLabels = opts.podLabels ?? NO_POD_LABELS;
    this.store = new MemoryCounterStore(opts.store);
    this.core = new CountingCore({
      store: this.store,
      seriesLimit: opts.seriesLimit,
      rollup: new RollupPlan(this.filter, DEFAULT_ROLLUP_ORDER, opts.rollupReserve ?? DEFAULT_ROLLUP_RESERVE_PERCENT, this.podLabels),
      ttlMs: opts.ttlMs,
      resolver: this.resolver(),
      removals: this.removals(),
      binaryLabels: (id): Record<string, string> => (this.filter.keyByBinary && id > 1n ? { binary: `/bin/b${id}` } : {}),
      clock: () => this.now,
    });
    this.core.define({ id: COUNTER, name: 'test_events_total', help: 'Events.', type: 'counter' });
    this.core.define({ id: HISTOGRAM, name: 'test_bytes', help: 'Bytes.', type: 'histogram' });
    // A counter read from the histogram's sum: its limiter must take the histogram's decisions.
    this.core.define({ id: SUM_OF_HISTOGRAM, name: 'test_bytes_total', help: 'Bytes.', type: 'counter', sumOf: HISTOGRAM });
    const admitted = new Set(opts.admitted ?? []);
    this.core.reserveOverflow({ id: PENDING, name: 'test_events_total', type: 'counter' });
    this.core.definePending({ id: PENDING, metric: COUNTER, admits: (sel, ns) => (sel & 1) !== 0 && ns !== undefined && admitted.has(ns) });
  }

  addCgroup(values: LabelValues, finalAfterMs = 0): Cgroup {
    const c: Cgroup = { id: this.nextCgroup++, values, finalAt: this.now + finalAfterMs };
    this.cgroups.set(c.id, c);
    return c;
  }

  /** The API server reports new labels for the pod of these cgroups (a MODIFIED event). */
  setPodLabels(labels: Record<string, string>, ...cgroups: Cgroup[]): void {
    for (const c of cgroups) c.podLabels = labels;
    this.relabelled.push(...cgroups.map((c) => c.id));
  }

  /** A cgroup's labels as the agent's filtered resolver joins them. */
  labelsOf(c: Cgroup): Record<string, string> {
    return { ...this.filter.cgroupValues(c.values), ...this.podLabels.select(c.podLabels) };
  }

  /** What a BPF program does with one event of cgroup c (bpf/label_sets.bpf.h, counters.bpf.h). */
  count(c: Cgroup, metric: number, value: number, opts: { binary?: bigint; bucket?: number; pendingHook?: boolean } = {}): void {
    const binaryId = this.filter.keyByBinary ? (opts.binary ?? 2n) : 0n;
    const owner: Pick<CounterKey, 'cgroupId' | 'flags'> = { cgroupId: 0n, flags: KEY_RAW_CGROUP };
    const mapping = this.filter.keyByCgroup ? this.store.mappingOf(c.id) : undefined;
    if (mapping) Object.assign(owner, { cgroupId: BigInt(mapping.labelSet), flags: KEY_LABEL_SET });
    else if (this.filter.keyByCgroup) owner.cgroupId = c.id;
    if (opts.pendingHook) {
      const admitted = (this.opts.admitted ?? []).includes(c.values.namespace ?? '');
      if (!mapping) {
        const went = this.store.add({ ...owner, binaryId, metric: PENDING, flags: KEY_NS_PENDING | (1 << 8) }, value);
        // A pending key that finds the map full loses which selectors waited: it counts as the metric's, whatever its namespace.
        if (admitted || went === 'overflow') this.record(metric, 0, value, c);
        return;
      }
      // Mapped: the kernel knows the namespace and decides.
      if (!(this.opts.admitted ?? []).some((ns) => namespaceId(ns) === mapping.namespaceId)) return;
      this.store.add({ ...owner, binaryId, metric }, value);
      this.record(metric, 0, value, c);
      return;
    }
    if (metric === HISTOGRAM) {
      const bucket = opts.bucket ?? 0;
      this.store.add({ ...owner, binaryId, metric, bucket }, 1);
      this.store.add({ ...owner, binaryId, metric, bucket: BUCKET_SUM }, value);
      this.record(metric, bucket, 1, c);
      this.record(metric, BUCKET_SUM, value, c);
      return;
    }
    this.store.add({ ...owner, binaryId, metric }, value);
    this.record(metric, 0, value, c);
  }

  private record(metric: number, bucket: number, value: number, c: Cgroup): void {
    const k = `${metric}:${bucket}`;
    this.truth.set(k, (this.truth.get(k) ?? 0) + value);
    const w = `${k}:${c.values.namespace}/${c.values.workload}`;
    this.truthByWorkload.set(w, (this.truthByWorkload.get(w) ?? 0) + value);
  }

  private resolver(): CgroupResolver {
    return {
      resolve: (id, _since, giveUp) => {
        const c = this.cgroups.get(id);
        if (!c) return { labels: {}, final: true };
        if (!giveUp && this.now < c.finalAt) return { labels: {}, final: false };
        return { labels: this.labelsOf(c), namespace: c.values.namespace, final: true };
      },
      podDeletedAt: (id) => this.cgroups.get(id)?.deletedAt,
      liveSetKeys: () =>
        [...this.cgroups.values()]
          .filter((c) => c.deletedAt === undefined && c.removedAt === undefined && this.now >= c.finalAt)
          .map((c) => labelKey(this.labelsOf(c))),
      relabelled: () => this.relabelled.splice(0),
    };
  }

  private removals(): Removals {
    return { removedAt: (id) => this.cgroups.get(id)?.removedAt, needsRescan: () => false, rescan: () => undefined, forgetIdle: () => undefined };
  }

  /** One read of the store, as a scrape makes it: family name -> series key -> bucket -> value. */
  read(): Map<string, Map<string, Map<number, number>>> {
    this.store.beginPass();
    const { series } = this.core.read(this.store.dump(), this.store.dumpOverflow(), this.now);
    const out = new Map<string, Map<string, Map<number, number>>>();
    for (const [name, list] of series) {
      const m = new Map<string, Map<number, number>>();
      for (const s of list) m.set(s.key!, s.buckets ? new Map(s.buckets) : new Map([[0, s.value]]));
      out.set(name, m);
    }
    return out;
  }

  sweep(): boolean {
    return this.core.sweep(this.now);
  }
}
