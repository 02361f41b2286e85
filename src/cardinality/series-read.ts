/**
 * One read of the counters turned into each family's series: every entry
 * labelled and added to its series, what user space holds added, then each
 * family's series limit applied. Limits apply here, once per read, so every
 * metric of a scrape (health included, which prom-client collects
 * concurrently) sees the same state.
 */
import { CounterEntry } from '../bpf/counter-store';
import { BUCKETS, BUCKET_SUM, KEY_LABEL_SET, KEY_OVERFLOW, pendingSelectors } from '../bpf/layout';
import { SeriesValues } from './series-values';
import { eachBucket, HeldCounts } from './held-counts';
import { KeyLabels } from './key-labels';
import { Family, MetricFamilies } from './metric-families';
import { settle } from './pending-labels';
import { Known, OVERFLOW_KEY, OVERFLOW_LABELS, SeriesLimiter } from './series-limiter';
import { Adoption } from './adoption';

export interface SeriesRead {
  /** Per family name: its series after the series limit. */
  series: Map<string, SeriesValues[]>;
  /** cgroups whose counts this read held back, their labels not final yet. */
  pendingCgroups: number;
  /** Per family name: entries of the counter map counting for it (pending ones included). */
  kernelEntries: Map<string, number>;
}


/**
 * A series as the reader keeps it from read to read. A read of 100k series
 * made 100k objects and a map of 100k anew, and the collector spent a fifth
 * of the read on them; now a read resets what it meets (read: its number)
 * and adds to it. The values change at the next read: what a consumer keeps
 * past its read, it copies (the exporters copy as they encode; a read is
 * synchronous, so none sees one half done).
 */
interface Slot extends SeriesValues {
  key: string;
  /** The number of the last read that added to it. */
  read: number;
  /** What its family's limiter knew of it at that read, and that limiter (a family redefined has a new one). */
  known?: Known;
  limiter?: SeriesLimiter;
}

/** A family's series: all kept, and those the read under way has met, in the order it met them. */
interface FamilySlots {
  family: Family;
  slots: Map<string, Slot>;
  met: Slot[];
}

type ByName = Map<string, FamilySlots>;

/** Metric ids below this are counted per read in an array. */
const SMALL_METRIC_IDS = 4096;

export class SeriesReader {
  /** Per metric id, the series it adds to in the read under way (null: not defined): one lookup per id, not per entry. */
  private readonly targets = new Map<number, { family: FamilySlots; histogram: boolean } | null>();
  /** Per family name, its series from earlier reads. */
  private readonly kept: ByName = new Map();
  private reads = 0;

  constructor(
    private readonly families: MetricFamilies,
    private readonly labels: KeyLabels,
    private readonly held: HeldCounts,
    private readonly adoption: Adoption,
  ) {}

  /**
   * Whether a read shows this counter-map key's count in a series (fold()
   * decides alike): what a handover takes out of the kernel, leaving the
   * rest (labels not final, namespaces pending) for the next agent.
   */
  shows(key: CounterEntry['key']): boolean {
    if (key.flags === KEY_OVERFLOW) return false;
    if (pendingSelectors(key)) {
      const settled = settle(key, this.families, this.labels);
      if (!settled?.counts) return false;
      key = settled.key;
    }
    return this.families.get(key.metric) !== undefined && this.labels.labelsOf(key) !== undefined;
  }

  read(entries: CounterEntry[], overflow: CounterEntry[], now: number): SeriesRead {
    const byName: ByName = new Map();
    this.reads++;
    for (const name of this.families.names()) {
      const family = this.families.family(name)!;
      let k = this.kept.get(name);
      if (!k || k.family !== family) this.kept.set(name, (k = { family, slots: new Map(), met: [] }));
      k.met = [];
      byName.set(name, k);
    }
    for (const name of this.kept.keys()) if (!byName.has(name)) this.kept.delete(name);
    this.targets.clear();
    const pending = new Set<bigint>();
    // Counted by metric id, named once after: a read meets a handful of ids 100k times. Ids are small integers
    // (policy-manager.ts numbers them from 16), so an array: two map operations per entry were a tenth of a read.
    // Any id at all may come from the kernel (a previous agent's): those past the array go to a map.
    const byMetric = new Array<number>(SMALL_METRIC_IDS).fill(0);
    const byLargeMetric = new Map<number, number>();
    for (const e of entries) {
      const m = e.key.metric;
      if (m < SMALL_METRIC_IDS) byMetric[m]++;
      else byLargeMetric.set(m, (byLargeMetric.get(m) ?? 0) + 1);
      this.fold(byName, e, pending);
    }
    for (let m = 0; m < SMALL_METRIC_IDS; m++) if (byMetric[m] > 0) byLargeMetric.set(m, byMetric[m]);
    const kernelEntries = new Map<string, number>();
    for (const [metric, n] of byLargeMetric) {
      const name = this.families.get(this.families.pendingOf(metric)?.metric ?? metric)?.family.name;
      if (name !== undefined) kernelEntries.set(name, (kernelEntries.get(name) ?? 0) + n);
    }
    for (const e of overflow) this.fold(byName, e, pending);
    this.addHeld(byName);
    const series = new Map<string, SeriesValues[]>();
    for (const [name, k] of byName) {
      // Series no read adds to any more go: a map that kept them all would grow with every label set ever seen.
      if (k.slots.size > k.met.length) for (const [key, s] of k.slots) if (s.read !== this.reads) k.slots.delete(key);
      const f = k.family;
      // What the previous agent showed continues, whatever this agent's limiter decides (adoption.ts).
      if (f.metric.sumOf === undefined) series.set(name, this.adoption.merge(name, this.limit(f, k.met, now), now));
    }
    // A counter read from a histogram's sum is that histogram's series, limits,
    // overflow and held counts included: the same labels, the sum as value.
    for (const f of this.families.all()) {
      const source = this.families.sumSource(f);
      if (!source) continue;
      const sums = (series.get(source.name) ?? []).map((s): SeriesValues => ({ labels: s.labels, key: s.key, value: s.buckets?.get(BUCKET_SUM) ?? 0, buckets: undefined }));
      series.set(f.name, sums);
    }
    return { series, pendingCgroups: pending.size, kernelEntries };
  }

  private fold(byName: ByName, e: CounterEntry, pending: Set<bigint>): void {
    let key = e.key;
    const bucket = key.bucket ?? 0;
    if (key.flags === KEY_OVERFLOW) {
      // A pending id's overflow: the map was full, so which selectors waited is lost with the key. Counted as the metric's.
      const metric = this.families.pendingOf(key.metric)?.metric ?? key.metric;
      if (e.value !== 0) this.addTo(byName, metric, OVERFLOW_KEY, OVERFLOW_LABELS, bucket, e.value);
      return;
    }
    if (pendingSelectors(key)) {
      const settled = settle(key, this.families, this.labels);
      if (!settled) {
        if (this.families.pendingOf(key.metric)) pending.add(key.cgroupId); // held back until its namespace is known
        return;
      }
      if (!settled.counts) return; // no selector admits its namespace: it never matched
      key = settled.key;
    }
    if (!this.families.get(key.metric)) return; // a metric being undefined
    const labels = this.labels.labelsOf(key);
    if (labels) this.addTo(byName, key.metric, labels.key, labels.labels, bucket, e.value);
    else if (key.flags !== KEY_LABEL_SET) pending.add(key.cgroupId); // held back until its labels are final
  }

  /**
   * Applies the family's series limit: label sets past it merge into their
   * rolled-up series, or the flat overflow series (SeriesLimiter).
   */
  private limit(f: Family, all: Slot[], now: number): SeriesValues[] {
    // Counters read from this histogram's sums take the same decisions: their limiters see the same calls.
    const mirrors = this.families.mirrorsOf(f);
    const limiter = f.limiter;
    // Own series in read order, then the rolled-up ones (new objects each read: they gather several), then overflow.
    const own: SeriesValues[] = [];
    const rolledUp = new Map<string, SeriesValues>();
    let overflow: SeriesValues | undefined;
    // Every label set of the read known first: places are kept for each namespace it shows, whatever the order.
    // What know() returns is kept with the series, so that placing, and the next read, need no lookup.
    const anyRolled = (): boolean => limiter.rolledUpSeries > 0;
    for (const s of all) {
      if (s.key === OVERFLOW_KEY || (anyRolled() && limiter.rolledSeries(s.key))) {
        s.known = undefined;
        continue;
      }
      s.known = limiter.knowAgain(s.limiter === limiter ? s.known : undefined, s.key, s.labels, now);
      s.limiter = limiter;
      for (const m of mirrors) m.limiter.know(s.key, s.labels, now);
    }
    for (const s of all) {
      const key = s.key;
      const k = s.known;
      if (s.buckets) for (const b of s.buckets.keys()) if (b < BUCKETS && b > f.topBucket) f.topBucket = b;
      let into: { key: string; labels: Readonly<Record<string, string>> } | undefined;
      // Looked up again, not taken from the first pass: placing the read's earlier label sets may have begun it.
      const rolled = anyRolled() ? limiter.rolledSeries(key) : undefined;
      if (rolled) {
        into = rolled; // what its stale members counted
      } else if (k) {
        for (const m of mirrors) m.limiter.place(key, s.labels, now);
        const d = limiter.placeKnown(k, s.labels, now);
        if (d.at === 'own') {
          own.push(s);
          continue;
        }
        if (d.at === 'rolled') into = d.series;
      }
      if (into) {
        gather(rolledUp, into, s);
        continue;
      }
      overflow ??= { labels: { ...OVERFLOW_LABELS }, key: OVERFLOW_KEY, value: 0, buckets: s.buckets ? new Map() : undefined };
      overflow.value += s.value;
      if (s.buckets) for (const [b, v] of s.buckets) addBucket(overflow, b, v);
    }
    limiter.forgetUnseen(now);
    for (const m of mirrors) m.limiter.forgetUnseen(now);
    for (const r of rolledUp.values()) own.push(r);
    if (overflow) own.push(overflow);
    return own;
  }

  /** What fold-in and staleness moved out of the kernel map still counts. */
  private addHeld(byName: ByName): void {
    for (const [metric, held] of this.held.series) {
      for (const [key, h] of held) eachBucket(h, (b, v) => this.addTo(byName, metric, key, h.labels, b, v));
    }
    for (const [metric, held] of this.held.rolled) {
      const limiter = this.families.get(metric)?.family.limiter;
      for (const [key, h] of held) {
        // A rolled-up series that ended (its last member went stale) takes its held counts with it.
        if (!limiter?.rolledSeries(key)) held.delete(key);
        else eachBucket(h, (b, v) => this.addTo(byName, metric, key, h.labels, b, v));
      }
    }
    for (const [metric, buckets] of this.held.overflow) {
      for (const [b, v] of buckets) this.addTo(byName, metric, OVERFLOW_KEY, OVERFLOW_LABELS, b, v);
    }
  }

  /** Adds a count to its metric's series. */
  private addTo(byName: ByName, metric: number, key: string, labels: Readonly<Record<string, string>>, bucket: number, value: number): void {
    let t = this.targets.get(metric);
    if (t === undefined) {
      const d = this.families.get(metric);
      t = d ? { family: byName.get(d.family.name)!, histogram: d.family.type === 'histogram' } : null;
      this.targets.set(metric, t);
    }
    if (!t) return;
    let s = t.family.slots.get(key);
    if (!s) t.family.slots.set(key, (s = { labels, key, value: 0, buckets: t.histogram ? new Map() : undefined, read: 0 }));
    if (s.read !== this.reads) {
      s.read = this.reads;
      s.value = 0;
      s.buckets?.clear();
      t.family.met.push(s);
    }
    // Counters keep one number per series; only histograms pay for a map of buckets.
    if (t.histogram) addBucket(s, bucket, value);
    else s.value += value;
  }
}

function addBucket(s: SeriesValues, bucket: number, value: number): void {
  s.buckets!.set(bucket, (s.buckets!.get(bucket) ?? 0) + value);
}

/** Adds a label set's counts to the rolled-up series it folds into. */
function gather(out: Map<string, SeriesValues>, into: { key: string; labels: Readonly<Record<string, string>> }, s: SeriesValues): void {
  let have = out.get(into.key);
  if (!have) out.set(into.key, (have = { labels: into.labels, key: into.key, value: 0, buckets: s.buckets ? new Map() : undefined }));
  have.value += s.value;
  if (s.buckets) for (const [b, v] of s.buckets) addBucket(have, b, v);
}
