/**
 * The one reader of the kernel's counters. Every counting object (each
 * policy hook) adds into the same maps: tally_counters, keyed by
 * {owner, binary, extra labels, metric, bucket}, and the label-set and
 * binary maps beside it. The first object loaded creates them; the others
 * reuse them (sharedMaps()). So one batch read serves every metric, one
 * staleness sweep retires every metric's entries, and one series limit
 * applies per metric.
 *
 * What is counted becomes series in the counting core (src/cardinality/),
 * over the kernel's maps (NativeCounterStore); this class connects it to
 * the agent: the registry, labels from src/labels/, binary announcements,
 * the sweep timer and the memo that lets every metric of a scrape share one
 * read.
 */
import { Registry } from 'prom-client';
import { LoadedObject } from '../bpf/loader';
import { NativeCounterStore } from '../bpf/native-counter-store';
import { CountingCore } from '../cardinality/counting-core';
import { CounterMetric, Family } from '../cardinality/metric-families';
import { PendingMetric } from '../cardinality/pending-labels';
import { SeriesLimiter } from '../cardinality/series-limiter';
import { RollupPlan } from '../cardinality/rollup-plan';
import { LimitWarnings } from '../cardinality/cardinality-report';
import { LabelFilter } from '../labels/label-filter';
import { Labeler } from '../labels/labeler';
import { PodLabels } from '../labels/pod-labels';
import { filteredResolver } from './filtered-resolver';
import { BinaryPaths } from '../labels/binary-paths';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { ScrapeMemo } from '../util/memo';
import { Logger } from '../util/log';
import { BinaryAnnouncements } from './binary-announcements';
import { exposeSeries, SeriesValues } from './series-exposition';
import { SHARED_MAPS, SharedMapFds } from './shared-maps';
import { SweepSchedule } from './sweep-schedule';
import { MemoryReclaimer } from '../util/reclaim-memory';

/** Label sets one sweep must retire for the memory they held to be given back at once. */
const RECLAIM_AFTER_RETIRED = 1000;
import { KernelStats, kernelStatsOf, readSnapshot, Snapshot } from './kernel-read';

export type { CounterMetric } from '../cardinality/metric-families';
export type { PendingMetric } from '../cardinality/pending-labels';

export interface KernelCountersOptions {
  /** Asked to give memory back after a sweep that retired many label sets (a churn of cgroups). */
  reclaimer?: MemoryReclaimer;
  /** The object that created the shared maps. */
  core: LoadedObject;
  filter: LabelFilter;
  /** --metrics-pod-labels: joined onto every series of a pod's cgroups. */
  podLabels?: PodLabels;
  seriesTtlMs: number;
  removals: CgroupRemovals;
  seriesLimit: number;
  rollup: RollupPlan;
  counterCapacity: number;
  labeler: Labeler;
  /** Called once a removed cgroup's mapping is retired. */
  cgroupGone?: (cgroupId: bigint) => void;
  binaries: BinaryPaths;
  log: Logger;
  /** tally_owner_epoch of the counting programs (--bpf-pin-dir, docs/restart.md); 0 without. */
  ownerEpoch?: number;
}

/** One metric's series from a read: see KernelCounters.collect(). */
export interface CollectedFamily {
  metric: CounterMetric;
  series: SeriesValues[];
  /** Histograms: the highest bucket any series has reached so far. */
  topBucket: number;
}

export class KernelCounters {
  private readonly fds: SharedMapFds;
  readonly store: NativeCounterStore;
  readonly core: CountingCore;
  private readonly announcements?: BinaryAnnouncements;
  private readonly memo: ScrapeMemo<Snapshot>;
  /** A family's exposure in the registry, removed with its last metric. */
  private readonly exposed = new Map<Family, () => void>();
  private readonly schedule: SweepSchedule;
  private readonly warnings: LimitWarnings;
  /** Reads in flight: /metrics and an OTLP export may read at once. */
  private reading = 0;
  private closed = false;

  constructor(private readonly opts: KernelCountersOptions) {
    const obj = opts.core.object;
    this.fds = Object.fromEntries(SHARED_MAPS.map((m) => [m, obj.mapFd(m)])) as SharedMapFds;
    const keyByBinary = opts.filter.keyByBinary;
    if (keyByBinary) this.announcements = new BinaryAnnouncements(obj, opts.binaries, opts.log);
    this.memo = new ScrapeMemo(() => this.read());
    this.store = new NativeCounterStore(this.fds);
    this.core = new CountingCore({
      store: this.store,
      seriesLimit: opts.seriesLimit,
      rollup: opts.rollup,
      ttlMs: opts.seriesTtlMs,
      resolver: filteredResolver(opts.labeler, opts.filter, opts.podLabels),
      removals: opts.removals,
      binaryLabels: (id): Record<string, string> => {
        const path = keyByBinary ? opts.binaries.path(id) : undefined;
        return path ? { binary: path } : {};
      },
      cgroupGone: (id) => opts.cgroupGone?.(id),
    });
    this.warnings = new LimitWarnings((msg, fields) => opts.log.warn(msg, fields));
    this.schedule = new SweepSchedule(opts.seriesTtlMs, () => this.sweepNow(), () => this.reading > 0, opts.log);
  }

  /** fds of the shared maps, for other objects to reuse before they load. */
  sharedMaps = (): Record<string, number> => ({ ...this.fds });

  get ownerEpoch(): number {
    return this.opts.ownerEpoch ?? 0;
  }

  /** Sweeps that threw so far. */
  get sweepFailures(): number {
    return this.schedule.failures;
  }

  get counterMapCapacity(): number {
    return this.opts.counterCapacity;
  }

  /** Set to the counter map's capacity at load. */
  get labelSetCapacity(): number {
    return this.opts.counterCapacity;
  }

  get limiters(): SeriesLimiter[] {
    return this.core.families.all().map((f) => f.limiter);
  }

  /** Starts exposing a metric, with its overflow entries (see CountingCore.define). */
  define(metric: CounterMetric, registry: Registry): void {
    const { family, created } = this.core.define(metric);
    if (created) this.opts.podLabels?.warnCollisions(metric, (msg, fields) => this.opts.log.warn(msg, fields));
    if (created) {
      const collect = async (): Promise<{ series: SeriesValues[]; topBucket: number }> => ({ series: (await this.memo.get()).series.get(family.name) ?? [], topBucket: family.topBucket });
      this.exposed.set(family, exposeSeries(registry, metric, collect));
    }
    this.invalidate();
  }

  /** See CountingCore.reserveOverflow. */
  reserveOverflow(metric: Pick<CounterMetric, 'id' | 'name' | 'type'>): void {
    this.core.reserveOverflow(metric);
  }

  /** See CountingCore.definePending. */
  definePending(p: PendingMetric): void {
    this.core.definePending(p);
    this.invalidate();
  }

  /** The metric ids counting under a name. */
  idsOf(name: string): number[] {
    return this.core.families.idsOf(name);
  }

  /**
   * Stops counting metrics and deletes their kernel entries; a name with no
   * id left disappears. The objects that counted into them must be closed
   * first, or late events would recreate the entries.
   */
  undefine(ids: number[]): void {
    for (const family of this.core.undefine(ids)) {
      this.exposed.get(family)?.();
      this.exposed.delete(family);
    }
    this.invalidate();
  }

  /** Folds resolved cgroups into label sets and retires what went stale (see SweepSchedule for when). */
  sweep(): void {
    this.schedule.run();
  }

  private sweepNow(): boolean {
    const started = Date.now();
    const before = this.core.labelSets.size;
    const backlog = this.core.sweep(started);
    this.opts.log.debug('sweep', { ms: Date.now() - started, label_sets: this.core.labelSets.size, backlog });
    // A churn leaves the retired series' objects and read buffers as garbage V8 would keep until its heap filled.
    if (before - this.core.labelSets.size >= RECLAIM_AFTER_RETIRED) this.opts.reclaimer?.request();
    this.invalidate();
    return backlog;
  }

  /** Drop the cached read so the next scrape reads the kernel again. */
  invalidate(): void {
    this.memo.invalidate();
  }

  snapshot(): Promise<Snapshot> {
    return this.memo.get();
  }

  /**
   * Every metric's series as /metrics shows them, from one read with the
   * same series limits and overflow series: for exporters other than
   * /metrics (OTLP). Call invalidate() first to read the kernel afresh.
   */
  async collect(): Promise<CollectedFamily[]> {
    const { series } = await this.memo.get();
    return this.core.families.all().map((f) => ({ metric: f.metric, series: series.get(f.name) ?? [], topBucket: f.topBucket }));
  }

  /** The names kernel metrics are exposed under. */
  familyNames(): string[] {
    return this.core.families.names();
  }

  ringStats(): { delivered: number; dropped: number; failedErrno: number } {
    return this.announcements?.stats() ?? { delivered: 0, dropped: 0, failedErrno: 0 };
  }

  private async read(): Promise<Snapshot> {
    this.reading++;
    try {
      return await readSnapshot(this.store, this.core, this.announcements, this.warnings);
    } finally {
      this.reading--;
    }
  }

  /** Kernel self-statistics (tally_stats), summed over CPUs, with the last read's size and time. */
  async kernelStats(): Promise<KernelStats> {
    return kernelStatsOf(await this.memo.get());
  }

  /** No sweep runs from now on: a handover's last read (docs/restart.md) must not meet one promoting keys again. */
  stopSweeping(): void {
    this.schedule.close();
  }

  /** Stops sweeping and consuming; the maps close with the objects that hold them. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.schedule.close();
    this.announcements?.close();
  }
}
