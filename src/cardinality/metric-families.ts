/**
 * The metrics counted in the shared counter map, by id, and the families
 * they are exposed under, by name. Usually one id per name; several when
 * several policies count into one name (each Tetragon policy's
 * tally_policy_events_total), so each can be removed on its own. Each
 * family has one series limiter.
 *
 * Metrics are defined and undefined at run time (a policy file is added or
 * deleted).
 */
import { CounterKey, KEY_OVERFLOW } from '../bpf/layout';
import { PendingIds, PendingMetric } from './pending-labels';
import { PeerRollupLabels, RollupPlan } from './rollup-plan';
import { Placement, SeriesLimiter } from './series-limiter';

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
  /** What its keys mean (engine/policy-metrics.ts): a next agent reads this metric's keys only under an equal signature. */
  signature?: string;
  /** A metric by peer: its peer labels that roll up in steps of their own (RollupPlan.withPeerLabels). */
  peerLabels?: PeerRollupLabels;
  /** A metric by peer: which of the key's two label values hold peer ids (0: label0, 1: label1), for a restart to translate. */
  peerSlots?: readonly number[];
}

/** The metrics exposed under one name. */
export interface Family {
  name: string;
  type: CounterMetric['type'];
  /** The first metric defined under the name: its help and unit stand for all (policies must agree on them). */
  metric: CounterMetric;
  ids: Set<number>;
  limiter: SeriesLimiter;
  /** Highest bucket any series of this histogram has reached: buckets are exposed up to it, stably. */
  topBucket: number;
}

export interface Defined {
  metric: CounterMetric;
  family: Family;
}

export class MetricFamilies implements PendingIds {
  private readonly metrics = new Map<number, Defined>();
  private readonly pendingIds = new Map<number, PendingMetric>();
  private readonly families = new Map<string, Family>();
  /** Histogram id -> the counters read from its sum. */
  private readonly sums = new Map<number, Defined[]>();

  /**
   * @param forgetUnseenMs a label set no read has shown for this long is
   *   forgotten by its limiter (SeriesLimiter)
   */
  constructor(
    private readonly seriesLimit: number,
    private readonly forgetUnseenMs: number,
    private readonly rollup: RollupPlan = RollupPlan.none(),
    /** A rolled-up series with no member left ends after this long (SeriesLimiter). */
    private readonly rolledIdleMs = 0,
  ) {}

  /** Defines a metric; returns its family, and whether the family is new (to be exposed). */
  define(metric: CounterMetric): { family: Family; created: boolean } {
    this.checkDefinable(metric);
    let family = this.families.get(metric.name);
    const created = !family;
    if (!family) {
      family = { name: metric.name, type: metric.type, metric, ids: new Set(), limiter: new SeriesLimiter(metric.name, this.seriesLimit, this.rollup.withPeerLabels(metric.peerLabels ?? {}), this.forgetUnseenMs, this.rolledIdleMs), topBucket: 0 };
      this.families.set(metric.name, family);
    }
    family.ids.add(metric.id);
    const defined = { metric, family };
    this.metrics.set(metric.id, defined);
    if (metric.sumOf !== undefined) this.sums.set(metric.sumOf, [...(this.sums.get(metric.sumOf) ?? []), defined]);
    return { family, created };
  }

  /** Throws if the metric's id is taken, or its name is a family of another type. */
  checkDefinable(metric: CounterMetric): void {
    if (this.metrics.has(metric.id)) throw new Error(`metric id ${metric.id} is taken by ${this.metrics.get(metric.id)!.metric.name}`);
    const family = this.families.get(metric.name);
    if (family && family.type !== metric.type) throw new Error(`${metric.name} is already a ${family.type}`);
  }

  /** A pending id whose counts are read into a defined metric once their namespace is known. */
  definePending(p: PendingMetric): void {
    if (!this.metrics.has(p.metric)) throw new Error(`pending id ${p.id}: metric ${p.metric} is not defined`);
    if (this.metrics.has(p.id) || this.pendingIds.has(p.id)) throw new Error(`metric id ${p.id} is taken`);
    this.pendingIds.set(p.id, p);
  }

  /** Forgets metric and pending ids; returns the families left with no id (to stop exposing). */
  undefine(ids: number[]): Family[] {
    const emptied: Family[] = [];
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
      d.family.ids.delete(id);
      if (d.family.ids.size === 0) {
        this.families.delete(d.family.name);
        emptied.push(d.family);
      }
    }
    return emptied;
  }

  get(id: number): Defined | undefined {
    return this.metrics.get(id);
  }

  pendingOf(id: number): PendingMetric | undefined {
    return this.pendingIds.get(id);
  }

  family(name: string): Family | undefined {
    return this.families.get(name);
  }

  all(): Family[] {
    return [...this.families.values()];
  }

  names(): string[] {
    return [...this.families.keys()];
  }

  /** The metric ids counting under a name. */
  idsOf(name: string): number[] {
    return [...(this.families.get(name)?.ids ?? [])];
  }

  /** The families of the counters read from this family's histogram sums. */
  mirrorsOf(f: Family): Family[] {
    return [...f.ids].flatMap((id) => (this.sums.get(id) ?? []).map((d) => d.family));
  }

  /** The histogram family a derived counter family reads its sums from. */
  sumSource(f: Family): Family | undefined {
    return f.metric.sumOf === undefined ? undefined : this.metrics.get(f.metric.sumOf)?.family;
  }

  /** A policy metric's extra labels, decoded from the key's label values; undefined when it has none. */
  extraLabels(key: CounterKey): Record<string, string> | undefined {
    const labels = this.metrics.get(key.metric)?.metric.labels;
    if (!labels || key.flags === KEY_OVERFLOW) return undefined;
    return labels(key.label0 ?? 0n, key.label1 ?? 0n);
  }

  /** A label set went stale: it frees its place in its family's limiter and its mirrors'. */
  forget(metric: number, key: string): Placement {
    const f = this.metrics.get(metric)?.family;
    if (!f) return { at: 'unknown' };
    for (const m of this.mirrorsOf(f)) m.limiter.forget(key);
    return f.limiter.forget(key);
  }
}
