/**
 * The counting core: what turns the kernel's counters into series, over a
 * counter store (src/bpf/counter-store.ts). It keeps the metric families and
 * their series limits, folds resolved cgroups into label sets, retires what
 * went stale, promotes hot keys, and reads series. Its callers give it the
 * time, and it makes no syscall of its own, so the same code runs over the
 * kernel's maps in the agent and over an in-memory store in the core tests
 * (test/cardinality/), on a clock they drive.
 */
import { CounterEntry, counterKeyId, CounterStore, OverflowEntriesFull } from '../bpf/counter-store';
import { BUCKETS, BUCKET_SUM, BUCKET_ZERO } from '../bpf/layout';
import { CacheStats } from '../util/cache-stats';
import { Adoption } from './adoption';
import { CgroupMappings } from './cgroup-mappings';
import { FoldIn } from './fold-in';
import { HeldCounts } from './held-counts';
import { KeyLabels } from './key-labels';
import { LabelSets } from './label-sets';
import { CounterMetric, Family, MetricFamilies } from './metric-families';
import { PendingCgroups, PendingMetric } from './pending-labels';
import { Promotion } from './promotion';
import { Relabelling } from './relabel';
import { RollupPlan } from './rollup-plan';
import { SeriesRead, SeriesReader } from './series-read';
import { CgroupResolver, Removals } from './sources';
import { Staleness } from './staleness';
import { Sweeper } from './sweep';
import { SweepCounts } from './sweep-pass';

export interface CountingCoreOptions {
  store: CounterStore;
  seriesLimit: number;
  /** How label sets past the limit roll up; none (all to the flat overflow series) unless given. */
  rollup?: RollupPlan;
  /** --metrics-series-ttl, in ms. */
  ttlMs: number;
  resolver: CgroupResolver;
  removals: Removals;
  /** The binary label of an executable id; {} when not keyed by binary or not known. */
  binaryLabels(binaryId: bigint): Record<string, string>;
  /** Called once a removed cgroup's mapping is retired. */
  cgroupGone?(cgroupId: bigint): void;
  /** When fold-in first saw a cgroup waiting for its labels; Date.now unless a test drives time. */
  clock?: () => number;
  /** Removed cgroups whose labels are remembered for late events. */
  removedCgroupCapacity?: number;
}

export class CountingCore {
  readonly families: MetricFamilies;
  readonly labelSets = new LabelSets();
  readonly counts = new SweepCounts();
  private readonly labels: KeyLabels;
  private readonly held = new HeldCounts();
  /** What this agent took over from the previous one (--bpf-pin-dir). */
  readonly adoption: Adoption;
  private readonly mappings: CgroupMappings;
  private readonly sweeper: Sweeper;
  private readonly reader: SeriesReader;

  constructor(private readonly opts: CountingCoreOptions) {
    const { store } = opts;
    // A label set no read has shown for this long has left the kernel and user space alike.
    this.families = new MetricFamilies(opts.seriesLimit, Math.max(2 * opts.ttlMs, 5 * 60_000), opts.rollup, opts.ttlMs);
    const pending = new PendingCgroups();
    this.labels = new KeyLabels({
      labelSets: this.labelSets,
      resolver: opts.resolver,
      keys: { binaryLabels: opts.binaryLabels, extraLabels: (key) => this.families.extraLabels(key) },
      pending,
      clock: opts.clock ?? Date.now,
      removedCapacity: opts.removedCgroupCapacity,
    });
    this.mappings = new CgroupMappings(store);
    const staleness = new Staleness(
      {
        ttlMs: opts.ttlMs,
        removals: opts.removals,
        resolver: opts.resolver,
        forget: (metric, key) => this.families.forget(metric, key),
        cgroupGone: (id) => opts.cgroupGone?.(id),
      },
      this.mappings,
      this.labels,
      this.labelSets,
      this.held,
      this.counts,
    );
    this.sweeper = new Sweeper({
      store,
      families: this.families,
      labels: this.labels,
      pending,
      held: this.held,
      mappings: this.mappings,
      foldIn: new FoldIn(this.mappings, this.labels, this.labelSets, this.counts),
      staleness,
      relabelling: new Relabelling({ resolver: opts.resolver, removals: opts.removals, mappings: this.mappings, labels: this.labels, labelSets: this.labelSets, counts: this.counts, ttlMs: opts.ttlMs }),
      promotion: new Promotion(store, this.labels, (key) => this.families.get(key.metric) !== undefined),
      resolver: opts.resolver,
      removals: opts.removals,
      counts: this.counts,
    });
    this.adoption = new Adoption(this.labels, this.held);
    this.reader = new SeriesReader(this.families, this.labels, this.held, this.adoption);
  }

  /**
   * Defines a metric, and gives it its overflow entries (one per bucket for
   * a histogram) so an update that finds the map full always has somewhere
   * to go. Returns its family, and whether it is new (to be exposed).
   */
  define(metric: CounterMetric): { family: Family; created: boolean } {
    this.families.checkDefinable(metric);
    if (metric.sumOf === undefined) this.reserveOverflow(metric);
    return this.families.define(metric);
  }

  /**
   * Creates a metric's overflow entries (one per bucket for a histogram).
   * Call it before the programs counting the metric attach: an update that
   * finds the counter map full must find them. Idempotent; undefine() removes them.
   */
  reserveOverflow(metric: Pick<CounterMetric, 'id' | 'name' | 'type'>): void {
    const buckets = metric.type === 'histogram' ? [...Array(BUCKETS).keys(), BUCKET_ZERO, BUCKET_SUM] : [0];
    try {
      this.opts.store.reserveOverflow(metric.id, buckets);
    } catch (e) {
      if (!(e instanceof OverflowEntriesFull)) throw e;
      throw new Error(`no room left for the overflow entries of ${metric.name}: tally_overflow holds ${e.capacity} (one per counter, ${buckets.length} per histogram)`);
    }
  }

  /**
   * Reads a pending id's counts into a defined metric. Its overflow entries
   * are reserved (reserveOverflow) before the hook counting under it
   * attaches, like a metric's; undefine() takes the id back.
   */
  definePending(p: PendingMetric): void {
    this.families.definePending(p);
  }

  /**
   * Stops counting metrics and deletes their entries; returns the families
   * left with no id. The objects that counted into them must be closed
   * first, or late events would recreate the entries.
   */
  undefine(ids: number[]): Family[] {
    const metrics = ids.filter((id) => this.families.get(id) !== undefined);
    const emptied = this.families.undefine(ids);
    for (const id of metrics) this.held.dropMetric(id);
    // Their ids may be reused by metrics with other extra labels.
    if (metrics.length > 0) this.labels.forgetExtraLabels();
    this.opts.store.dropMetrics(new Set(ids));
    return emptied;
  }

  /** Folds resolved cgroups into label sets and retires what went stale; true when fold-in work is left. */
  sweep(now: number): boolean {
    this.adoption.settle();
    return this.sweeper.sweep(now);
  }

  /**
   * Maps a cgroup as a previous agent had it (docs/restart.md), before this
   * agent's programs count: its events land under its label set from the
   * first, and the set stays live (its series kept) while the cgroup is.
   * False when the mapping table is full: fold-in maps it later.
   */
  restoreMapping(cgroupId: bigint, key: string, labels: Record<string, string>, namespaceId: bigint): boolean {
    const ok = this.mappings.map(cgroupId, this.labelSets.idFor(key, labels), namespaceId, 0);
    this.mappings.publish();
    return ok;
  }

  /** A cgroup's final labels (and namespace), if known: what a handover tells the next agent of a raw cgroup. */
  cgroupLabelsOf(cgroupId: bigint): { key: string; labels: Record<string, string>; namespace?: string } | undefined {
    return this.labels.cgroupLabels(cgroupId, false);
  }

  /** Overflow counts a previous agent's programs made after its last read (docs/restart.md). */
  adoptOverflow(metric: number, bucket: number, n: number): void {
    this.held.addOverflow(metric, bucket, n);
  }

  /**
   * The last read before the agent hands over (docs/restart.md). Promoted
   * keys are retired first, all at once, and what they counted read once no
   * program can still add to them; the kernel then counts every key in the
   * hash. Nothing is deleted: a program may be adding to an entry through a
   * pointer it looked up, and a delete would lose that event (hence the
   * quiet entries of staleness). Instead the hash values this read saw are
   * returned as bases: the next agent counts only what each entry gained
   * after them. Overflow entries likewise.
   */
  async handOver(now: () => number, settle: () => Promise<void>): Promise<{ read: SeriesRead; overflow: CounterEntry[]; bases: CounterEntry[] }> {
    const { store } = this.opts;
    const late = (key: CounterEntry['key'], n: number): void => this.held.addOverflow(key.metric, key.bucket ?? 0, n);
    const promoted = new Map((await store.retireAllPromoted(settle, late)).map((e) => [counterKeyId(e.key), e]));
    store.beginPass();
    const shown: CounterEntry[] = [];
    const bases: CounterEntry[] = [];
    for (const e of store.dump()) {
      const id = counterKeyId(e.key);
      const extra = promoted.get(id)?.value ?? 0;
      promoted.delete(id);
      if (!this.reader.shows(e.key)) {
        if (extra > 0) late(e.key, extra); // never happens: only shown keys are promoted
        continue; // the next agent reads it whole
      }
      shown.push({ key: e.key, value: e.value + extra });
      bases.push(e);
    }
    // Keys that counted only while promoted, with no hash entry (yet).
    for (const e of promoted.values()) {
      if (this.reader.shows(e.key)) shown.push(e);
      else late(e.key, e.value);
    }
    const overflow = store.dumpOverflow();
    return { read: this.reader.read(shown, overflow, now()), overflow, bases };
  }

  /** Each family's series from one read of the store (entries and overflow entries). */
  read(entries: CounterEntry[], overflow: CounterEntry[], now: number): SeriesRead {
    return this.reader.read(entries, overflow, now);
  }

  get mappedCgroups(): number {
    return this.mappings.size;
  }

  /** The bounded caches of labels, for tally_cache_*. */
  get caches(): CacheStats[] {
    return this.labels.caches;
  }
}
