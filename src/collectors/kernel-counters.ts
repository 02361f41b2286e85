/**
 * The one reader of the kernel's counters. Every counting object (TCP bytes,
 * each policy hook) adds into the same maps: tally_counters, keyed by
 * {owner, binary, extra labels, metric, bucket}, and the label-set and binary
 * maps beside it. The first object loaded creates them; the others reuse them
 * (sharedMaps()). So one batch read serves every metric, one staleness sweep
 * retires every metric's entries, and one series limit applies per metric.
 *
 * Metrics are defined and undefined at run time (a policy file is added or
 * deleted); each owns a metric id in the key.
 */
import { Registry } from 'prom-client';
import { isNativeError, native, NativeRingBuffer } from '../native/addon';
import { forgetCpuCaches } from '../bpf/cpu-cache';
import { forgetAnnounced } from '../bpf/binary-announcements';
import { LoadedObject } from '../bpf/loader';
import { CounterEntry, readCounterMap, readStatsArray, seedOverflowKey } from '../bpf/counter-map';
import { PromotedCounters } from '../bpf/promoted-counters';
import { ANNOUNCED_SLOTS, BUCKETS, BUCKET_SUM, BUCKET_ZERO, CounterKey, decodeBinaryEvent, encodeCounterKey, KEY_LABEL_SET, KEY_OVERFLOW, KernelStat, pendingSelectors } from '../bpf/layout';
import { LabelFilter } from '../labels/label-filter';
import { Labeler } from '../labels/labeler';
import { BinaryPaths } from '../labels/binary-paths';
import { ScrapeMemo } from '../util/memo';
import { Staleness } from '../cardinality/staleness';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { labelKey, OVERFLOW_LABELS, SeriesLimiter } from '../cardinality/series-limiter';
import { Logger } from '../util/log';
import { exposeSeries, SeriesValues } from './series-exposition';

export const COUNTER_MAP = 'tally_counters';
export const LABEL_SET_MAP = 'tally_cgroup_label_sets';

/** The maps every counting object shares, by name. */
export const SHARED_MAPS = [
  COUNTER_MAP,
  'tally_overflow',
  'tally_stats',
  LABEL_SET_MAP,
  'tally_label_set_cache',
  'tally_binary_events',
  'tally_known_binaries',
  'tally_announced',
  'tally_fast_index',
  'tally_fast_counters',
] as const;

/** A metric counted in tally_counters under one id. */
export interface CounterMetric {
  id: number;
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  /** Names of the labels `labels` returns, for documentation. */
  labelNames?: readonly string[];
  /** Labels from the key's two label values (a policy metric's extra labels, or which hook counted). */
  labels?: (label0: bigint, label1: bigint) => Record<string, string>;
  /**
   * Histograms: the kernel's unit as a power of two of the exposed one.
   * Bucket bounds are 2^(i+unitLog2) and the sum is multiplied by
   * 2^unitLog2: 0 for bytes, -30 for latencies (the kernel counts them in
   * units of 2^-30 s so that every bound is a power of two in seconds).
   */
  unitLog2?: number;
  /**
   * A counter the kernel does not count: it is the sum of the histogram
   * with this id (same hooks, value and labels; engine/derived-counters.ts).
   */
  sumOf?: number;
}

export interface KernelCountersOptions {
  /** The object that created the shared maps. */
  core: LoadedObject;
  filter: LabelFilter;
  seriesTtlMs: number;
  removals: CgroupRemovals;
  seriesLimit: number;
  counterCapacity: number;
  labeler: Labeler;
  /** Called once a removed cgroup's mapping is retired. */
  cgroupGone?: (cgroupId: bigint) => void;
  binaries: BinaryPaths;
  log: Logger;
}

/**
 * The id a policy hook with matchNamespaces counts under while an event's
 * owner has no known namespace (bpf/tally_types.h, TALLY_KEY_NS_PENDING):
 * one per hook and metric, because which selectors waited means something
 * only for the hook that counted.
 */
export interface PendingMetric {
  id: number;
  /** The metric the counts are for once admitted. */
  metric: number;
  /** Whether the namespace satisfies one of the selectors the event waited on (bit i: selector i). */
  admits(selectors: number, namespace: string | undefined): boolean;
}

/** One metric's series from a read: see KernelCounters.collect(). */
export interface CollectedFamily {
  metric: CounterMetric;
  series: SeriesValues[];
  /** Histograms: the highest bucket any series has reached so far. */
  topBucket: number;
}

interface Snapshot {
  /** Per metric name: its series after the series limit. */
  series: Map<string, SeriesValues[]>;
  entries: number;
  readSeconds: number;
  stats: bigint[];
  /** cgroups whose counts this read held back, their labels not final yet. */
  pendingCgroups: number;
}

/**
 * The metrics exposed under one name. Usually one id; several when several
 * policies count into one name (each Tetragon policy's
 * tally_policy_events_total), so each can be removed on its own.
 */
interface Family {
  name: string;
  type: CounterMetric['type'];
  /** The first metric defined under the name: its help and unit stand for all (policies must agree on them). */
  metric: CounterMetric;
  ids: Set<number>;
  limiter: SeriesLimiter;
  /** Highest bucket any series of this histogram has reached: buckets are exposed up to it, stably. */
  topBucket: number;
  unregister: () => void;
}

interface Defined {
  metric: CounterMetric;
  family: Family;
}

export class KernelCounters {
  private readonly fds: Record<(typeof SHARED_MAPS)[number], number>;
  private readonly ring?: NativeRingBuffer;
  private readonly memo: ScrapeMemo<Snapshot>;
  private readonly metrics = new Map<number, Defined>();
  private readonly pendingIds = new Map<number, PendingMetric>();
  private readonly families = new Map<string, Family>();
  /** Histogram id -> the counters read from its sum. */
  private readonly sums = new Map<number, Defined[]>();
  readonly staleness: Staleness;
  /** Keys the kernel counts in an array rather than the hash (src/bpf/promoted-counters.ts). */
  readonly promoted: PromotedCounters;
  private readonly sweepTimer: NodeJS.Timeout;
  private backlogTimer?: NodeJS.Timeout;
  /** Reads in flight: /metrics and an OTLP export may read at once. */
  private reading = 0;
  /** Ids asked to be announced again, so a scrape waits for each only once. */
  private readonly reannounced = new Set<bigint>();
  private readonly forgetUnseenMs: number;
  private closed = false;

  constructor(private readonly opts: KernelCountersOptions) {
    const obj = opts.core.object;
    this.fds = Object.fromEntries(SHARED_MAPS.map((m) => [m, obj.mapFd(m)])) as KernelCounters['fds'];
    const keyByBinary = opts.filter.keyByBinary;
    if (keyByBinary) {
      this.ring = new (native().RingBuffer)(this.fds.tally_binary_events, (records) => {
        for (const r of records) opts.binaries.learn(decodeBinaryEvent(r));
      });
    }
    this.memo = new ScrapeMemo(() => this.read());
    // A label set no read has shown for this long has left the kernel and user space alike.
    this.forgetUnseenMs = Math.max(2 * opts.seriesTtlMs, 5 * 60_000);
    this.promoted = new PromotedCounters(this.fds.tally_fast_index, this.fds.tally_fast_counters);
    this.staleness = new Staleness({
      counterFd: this.fds.tally_counters,
      promoted: this.promoted,
      promotable: (key) => this.metrics.has(key.metric),
      labelSetFd: this.fds.tally_cgroup_label_sets,
      bumpGeneration: () => forgetCpuCaches(this.fds.tally_label_set_cache),
      removals: opts.removals,
      ttlMs: opts.seriesTtlMs,
      resolve: (id, pendingSince, giveUp) => {
        const r = opts.labeler.resolve(id, pendingSince, giveUp);
        return { labels: opts.filter.cgroupValues(r.values), namespace: r.values.namespace, final: r.final };
      },
      liveSetKeys: () => opts.labeler.livePodLabels().map((v) => labelKey(opts.filter.cgroupValues(v))),
      binaryLabels: (id): Record<string, string> => {
        const path = keyByBinary ? opts.binaries.path(id) : undefined;
        return path ? { binary: path } : {};
      },
      extraLabels: (key) => this.extraLabels(key),
      podDeletedAt: (id) => opts.labeler.podDeletedAt(id),
      forget: (metric, key) => {
        const f = this.metrics.get(metric)?.family;
        if (!f) return 'unknown';
        for (const m of this.mirrorsOf(f)) m.limiter.forget(key);
        return f.limiter.forget(key);
      },
      cgroupGone: (id) => opts.cgroupGone?.(id),
      pending: (id) => this.pendingIds.get(id),
    });
    // Sweep often enough that a series outlives its TTL by at most a quarter of it.
    const every = Math.min(Math.max(opts.seriesTtlMs / 4, 250), 15_000);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** fds of the shared maps, for other objects to reuse before they load. */
  sharedMaps(): Record<string, number> {
    return { ...this.fds };
  }

  get counterMapCapacity(): number {
    return this.opts.counterCapacity;
  }

  /** Set to the counter map's capacity at load. */
  get labelSetCapacity(): number {
    return this.opts.counterCapacity;
  }

  get limiters(): SeriesLimiter[] {
    return [...this.families.values()].map((f) => f.limiter);
  }

  /**
   * Starts exposing a metric, and gives it its overflow entries (one per
   * bucket for a histogram) so an update that finds the map full always has
   * somewhere to go.
   */
  define(metric: CounterMetric, registry: Registry): void {
    if (this.metrics.has(metric.id)) throw new Error(`metric id ${metric.id} is taken by ${this.metrics.get(metric.id)!.metric.name}`);
    let family = this.families.get(metric.name);
    if (family && family.type !== metric.type) throw new Error(`${metric.name} is already a ${family.type}`);
    if (metric.sumOf === undefined) this.reserveOverflow(metric);
    if (!family) {
      const f: Family = {
        name: metric.name,
        type: metric.type,
        metric,
        ids: new Set(),
        limiter: new SeriesLimiter(metric.name, this.opts.seriesLimit, this.forgetUnseenMs),
        topBucket: 0,
        unregister: () => undefined,
      };
      f.unregister = exposeSeries(registry, metric, async () => ({ series: (await this.memo.get()).series.get(f.name) ?? [], topBucket: f.topBucket }));
      this.families.set(metric.name, (family = f));
    }
    family.ids.add(metric.id);
    const defined = { metric, family };
    this.metrics.set(metric.id, defined);
    if (metric.sumOf !== undefined) this.sums.set(metric.sumOf, [...(this.sums.get(metric.sumOf) ?? []), defined]);
    this.invalidate();
  }

  /**
   * Creates a metric's overflow entries (one per bucket for a histogram).
   * Call it before the programs counting the metric attach: an update that
   * finds the counter map full must find them. Idempotent; undefine() removes them.
   */
  reserveOverflow(metric: Pick<CounterMetric, 'id' | 'name' | 'type'>): void {
    const buckets = metric.type === 'histogram' ? [...Array(BUCKETS).keys(), BUCKET_ZERO, BUCKET_SUM] : [0];
    const created: Buffer[] = [];
    try {
      for (const bucket of buckets) created.push(seedOverflowKey(this.fds.tally_overflow, metric.id, bucket));
    } catch (e) {
      for (const key of created) native().mapDelete(this.fds.tally_overflow, key);
      if (isNativeError(e) && e.code === 'E2BIG') {
        throw new Error(`no room left for the overflow entries of ${metric.name}: tally_overflow holds ${native().mapInfo(this.fds.tally_overflow).maxEntries} (one per counter, ${buckets.length} per histogram)`);
      }
      throw e;
    }
  }

  /**
   * Reads a pending id's counts into a defined metric. Its overflow entries
   * are reserved (reserveOverflow) before the hook counting under it
   * attaches, like a metric's; undefine() takes the id back.
   */
  definePending(p: PendingMetric): void {
    if (!this.metrics.has(p.metric)) throw new Error(`pending id ${p.id}: metric ${p.metric} is not defined`);
    if (this.metrics.has(p.id) || this.pendingIds.has(p.id)) throw new Error(`metric id ${p.id} is taken`);
    this.pendingIds.set(p.id, p);
    this.invalidate();
  }

  /** The metric ids counting under a name. */
  idsOf(name: string): number[] {
    return [...(this.families.get(name)?.ids ?? [])];
  }

  /**
   * Stops counting metrics and deletes their kernel entries; a name with no
   * id left disappears. The objects that counted into them must be closed
   * first, or late events would recreate the entries.
   */
  undefine(ids: number[]): void {
    const gone = new Set(ids);
    for (const id of ids) {
      this.pendingIds.delete(id);
      const d = this.metrics.get(id);
      if (!d) continue;
      this.metrics.delete(id);
      this.sums.delete(id);
      if (d.metric.sumOf !== undefined) {
        const rest = (this.sums.get(d.metric.sumOf) ?? []).filter((x) => x !== d);
        if (rest.length) this.sums.set(d.metric.sumOf, rest);
        else this.sums.delete(d.metric.sumOf);
      }
      this.staleness.dropMetric(id);
      d.family.ids.delete(id);
      if (d.family.ids.size === 0) {
        d.family.unregister();
        this.families.delete(d.family.name);
      }
    }
    for (const fd of [this.fds.tally_counters, this.fds.tally_overflow]) {
      for (const e of readCounterMap(fd).entries) {
        if (gone.has(e.key.metric)) native().mapDelete(fd, encodeCounterKey(e.key));
      }
    }
    const totals = this.promoted.snapshot();
    for (const key of this.promoted.keys()) if (gone.has(key.metric)) this.promoted.retire(key, totals, true);
    this.promoted.dropMetrics(gone);
    this.invalidate();
  }

  /**
   * Folds resolved cgroups into label sets and retires what went stale. With
   * a backlog of new cgroups, the next sweep follows shortly, yielding to
   * scrapes in between.
   */
  sweep(): void {
    // A read in flight holds a dump of the kernel map while it waits for
    // binary announcements; moving entries now would count them twice.
    if (this.reading > 0) {
      clearTimeout(this.backlogTimer);
      this.backlogTimer = setTimeout(() => this.sweep(), 50);
      this.backlogTimer.unref();
      return;
    }
    try {
      const started = Date.now();
      const backlog = this.staleness.sweep();
      this.opts.log.debug('sweep', { ms: Date.now() - started, label_sets: this.staleness.labelSets.size, backlog });
      this.invalidate();
      if (backlog && !this.closed) {
        clearTimeout(this.backlogTimer);
        this.backlogTimer = setTimeout(() => this.sweep(), 100);
        this.backlogTimer.unref();
      }
    } catch (e) {
      this.opts.log.error('staleness sweep failed', { error: (e as Error).message });
    }
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
    return [...this.families.values()].map((f) => ({ metric: f.metric, series: series.get(f.name) ?? [], topBucket: f.topBucket }));
  }

  /** The names kernel metrics are exposed under. */
  familyNames(): string[] {
    return [...this.families.keys()];
  }

  ringStats(): { delivered: number; dropped: number; failedErrno: number } {
    return this.ring?.stats() ?? { delivered: 0, dropped: 0, failedErrno: 0 };
  }

  private extraLabels(key: CounterKey): Record<string, string> | undefined {
    const labels = this.metrics.get(key.metric)?.metric.labels;
    if (!labels || key.flags === KEY_OVERFLOW) return undefined;
    return labels(key.label0 ?? 0n, key.label1 ?? 0n);
  }

  private async read(): Promise<Snapshot> {
    this.reading++;
    try {
      return await this.readUnswept();
    } finally {
      this.reading--;
    }
  }

  private async readUnswept(): Promise<Snapshot> {
    const started = process.hrtime.bigint();
    const dump = readCounterMap(this.fds.tally_counters);
    const promoted = this.promoted.entries();
    const overflow = readCounterMap(this.fds.tally_overflow);
    const stats = readStatsArray(this.fds.tally_stats);
    const readSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    // An announcement may still be on its way from the ring-buffer thread
    // (the kernel announces a binary just before counting its first event).
    // Deliveries run in a later turn of the event loop: wait for them, briefly.
    for (let waited = 0; this.ring && waited < 50 && this.unknownBinaries(dump.entries).length > 0; waited += 2) {
      await new Promise((r) => setTimeout(r, 2));
    }
    if (this.ring) this.reannounce(this.unknownBinaries(dump.entries));
    const byName = new Map<string, Map<string, SeriesValues>>();
    for (const name of this.families.keys()) byName.set(name, new Map());
    const pending = new Set<bigint>();
    for (const e of dump.entries) this.fold(byName, e, pending);
    for (const e of promoted) this.fold(byName, e, pending);
    for (const e of overflow.entries) this.fold(byName, e, pending);
    this.addRetired(byName);
    // Limits apply here, once per read, so every metric of a scrape (health
    // included, which prom-client collects concurrently) sees the same state.
    const series = new Map<string, SeriesValues[]>();
    const now = Date.now();
    for (const [name, all] of byName) {
      const f = this.families.get(name)!;
      if (f.metric.sumOf === undefined) series.set(name, this.limit(f, all, now));
    }
    // A counter read from a histogram's sum is that histogram's series, limits,
    // overflow and retired counts included: the same labels, the sum as value.
    for (const f of this.families.values()) {
      const source = f.metric.sumOf === undefined ? undefined : this.metrics.get(f.metric.sumOf)?.family;
      if (!source) continue;
      const sums = (series.get(source.name) ?? []).map((s): SeriesValues => ({ labels: s.labels, key: s.key, value: s.buckets?.get(BUCKET_SUM) ?? 0, buckets: undefined }));
      series.set(f.name, sums);
    }
    return { series, entries: dump.entries.length, readSeconds, stats, pendingCgroups: pending.size };
  }

  /** Applies the metric's series limit: label sets past it merge into the overflow series. */
  private limit(d: Family, all: Map<string, SeriesValues>, now: number): SeriesValues[] {
    // Counters read from this histogram's sums take the same decisions: their limiters see the same calls.
    const mirrors = this.mirrorsOf(d);
    const out: SeriesValues[] = [];
    let overflow: SeriesValues | undefined;
    for (const [key, s] of all) {
      if (s.buckets) for (const b of s.buckets.keys()) if (b < BUCKETS && b > d.topBucket) d.topBucket = b;
      if (key !== OVERFLOW_KEY) for (const m of mirrors) m.limiter.place(key, now);
      if (key !== OVERFLOW_KEY && d.limiter.place(key, now) === 'admitted') {
        out.push(s);
        continue;
      }
      overflow ??= { labels: { ...OVERFLOW_LABELS }, key: OVERFLOW_KEY, value: 0, buckets: s.buckets ? new Map() : undefined };
      overflow.value += s.value;
      if (s.buckets) for (const [b, v] of s.buckets) addBucket(overflow, b, v);
    }
    d.limiter.forgetUnseen(now);
    for (const m of mirrors) m.limiter.forgetUnseen(now);
    if (overflow) out.push(overflow);
    return out;
  }

  /** Binary ids in the counters whose path user space does not know (and has not asked for yet). */
  private unknownBinaries(entries: CounterEntry[]): bigint[] {
    const ids = new Set<bigint>();
    for (const e of entries) {
      const id = e.key.binaryId;
      if (id > 1n && !this.opts.binaries.has(id) && !this.reannounced.has(id)) ids.add(id);
    }
    return [...ids];
  }

  /**
   * An id the kernel believes announced but user space never learned (a
   * dropped delivery, or evicted from the path cache): forget it in the
   * kernel, so the next event of that binary announces its path again.
   */
  private reannounce(ids: bigint[]): void {
    if (ids.length === 0) return;
    if (this.reannounced.size > 4 * ANNOUNCED_SLOTS) this.reannounced.clear();
    forgetAnnounced(this.opts.core.object, ids);
    for (const id of ids) this.reannounced.add(id);
    this.opts.log.debug('asked the kernel to announce binaries again', { count: ids.length });
  }

  private fold(byName: Map<string, Map<string, SeriesValues>>, e: CounterEntry, pending: Set<bigint>): void {
    let key = e.key;
    const bucket = key.bucket ?? 0;
    if (key.flags === KEY_OVERFLOW) {
      // A pending id's overflow: the map was full, so which selectors waited is lost with the key. Counted as the metric's.
      const metric = this.pendingIds.get(key.metric)?.metric ?? key.metric;
      if (e.value !== 0) this.addTo(byName, metric, OVERFLOW_KEY, OVERFLOW_LABELS, bucket, e.value);
      return;
    }
    if (pendingSelectors(key)) {
      const settled = this.staleness.settle(key);
      if (!settled) {
        if (this.pendingIds.has(key.metric)) pending.add(key.cgroupId); // held back until its namespace is known
        return;
      }
      if (!settled.counts) return; // no selector admits its namespace: it never matched
      key = settled.key;
    }
    if (!this.metrics.has(key.metric)) return; // a metric being undefined
    const labels = this.staleness.labelsOf(key);
    if (labels) this.addTo(byName, key.metric, labels.key, labels.labels, bucket, e.value);
    else if (key.flags !== KEY_LABEL_SET) pending.add(key.cgroupId); // held back until its labels are final
  }

  /** Adds a kernel value to its metric's series. */
  private addTo(byName: Map<string, Map<string, SeriesValues>>, metric: number, key: string, labels: Readonly<Record<string, string>>, bucket: number, value: number): void {
    const d = this.metrics.get(metric);
    if (!d) return;
    add(byName.get(d.family.name)!, key, labels, d.family.type === 'histogram', bucket, value);
  }

  /** The families of the counters read from this family's histogram sums. */
  private mirrorsOf(f: Family): Family[] {
    return [...f.ids].flatMap((id) => (this.sums.get(id) ?? []).map((d) => d.family));
  }

  /** What fold-in and staleness moved out of the kernel map still counts. */
  private addRetired(byName: Map<string, Map<string, SeriesValues>>): void {
    for (const [metric, held] of this.staleness.held) {
      for (const [key, h] of held) for (const [b, v] of h.buckets) this.addTo(byName, metric, key, h.labels, b, v);
    }
    for (const [metric, buckets] of this.staleness.heldOverflow) {
      for (const [b, v] of buckets) this.addTo(byName, metric, OVERFLOW_KEY, OVERFLOW_LABELS, b, v);
    }
  }

  /** Kernel self-statistics (tally_stats), summed over CPUs. */
  async kernelStats(): Promise<{ mapFull: bigint; lost: bigint; binaryEventDrops: bigint; pathTruncated: bigint; entries: number; readSeconds: number }> {
    const s = await this.memo.get();
    const at = (i: number): bigint => s.stats[i] ?? 0n;
    return {
      mapFull: at(KernelStat.mapFull),
      lost: at(KernelStat.lost),
      binaryEventDrops: at(KernelStat.binaryEventDrops),
      pathTruncated: at(KernelStat.pathTruncated),
      entries: s.entries,
      readSeconds: s.readSeconds,
    };
  }

  /** Stops sweeping and consuming; the maps close with the objects that hold them. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.backlogTimer);
    this.ring?.close();
  }
}

const OVERFLOW_KEY = labelKey(OVERFLOW_LABELS);

function addBucket(s: SeriesValues, bucket: number, value: number): void {
  s.buckets!.set(bucket, (s.buckets!.get(bucket) ?? 0) + value);
}

/** Counters keep one number per series; only histograms pay for a map of buckets. */
function add(series: Map<string, SeriesValues>, key: string, labels: Readonly<Record<string, string>>, histogram: boolean, bucket: number, value: number): void {
  let s = series.get(key);
  if (!s) series.set(key, (s = { labels, key, value: 0, buckets: histogram ? new Map() : undefined }));
  if (histogram) addBucket(s, bucket, value);
  else s.value += value;
}
