/**
 * The per-metric series limit (--metrics-series-limit), with roll-up
 * (docs/rollup.md, rollup-plan.ts).
 *
 * The first label sets a metric shows get series of their own, up to the
 * limit less the share kept for roll-ups. Every later one is folded into the
 * finest coarser series that exists or still has room: its labels less the
 * first labels of the roll-up order, with overflow="true". The limit counts
 * own and rolled-up series alike; the flat {overflow="true"} series, the last
 * level, is outside it (it also takes what the kernel diverted to its
 * overflow key when its map was full, which has no labels at all).
 *
 * A finer level never takes the last places a coarsest-level series may
 * still need: one for each coarsest key (usually a namespace) among the
 * label sets known that has no coarsest series yet, and a quarter of the
 * reserve for those not seen yet. So sums by namespace stay exact as long
 * as the namespaces fit.
 *
 * A label set, once placed, stays where it is until it goes stale: no series
 * can decrease, and the sum over all series is what the kernel counted.
 */
import { FLAT_LEVEL, labelKey, RollupPlan } from './rollup-plan';
import { RollupRoom } from './rollup-room';
import { SeriesChurn } from './series-churn';

export { labelKey, OVERFLOW_KEY, OVERFLOW_LABELS } from './rollup-plan';

/** A series that holds label sets folded at one level of the roll-up. */
export interface RolledSeries {
  key: string;
  labels: Readonly<Record<string, string>>;
  /** Index into RollupPlan.levels. */
  level: number;
  /** Label sets folded into it. */
  members: number;
  /** Since when it has had no member (ms); it ends once idle for rolledIdleMs. */
  idleSince?: number;
}

/** Where a label set's counts go. */
export type Destination = { at: 'own' } | { at: 'rolled'; series: RolledSeries } | { at: 'flat' };

/** Where a label set was when it was forgotten. */
export type Placement = Destination | { at: 'unknown' };

const OWN: Destination = Object.freeze({ at: 'own' });
const FLAT: Destination = Object.freeze({ at: 'flat' });

/** A label set as know() left it: place() it with placeKnown(), without looking it up again. */
export type Known = { readonly __known: unique symbol };

interface Tracked {
  /** Undefined from know() until place(). */
  dest?: Destination;
  /** Folded past finer levels: its keys at each of them. */
  passed?: string[];
  /** When a read last showed it (ms). */
  seen: number;
  /** Its key at the coarsest roll-up level, when it has one. */
  coarse?: string;
  /** Set by forget(): a Known kept across reads is no longer this label set's. */
  gone?: true;
}

export class SeriesLimiter {
  private readonly sets = new Map<string, Tracked>();
  private readonly rolled = new Map<string, RolledSeries>();
  private own = 0;
  private readonly ownLimit: number;
  /** Places kept from finer levels for coarsest keys not seen yet. */
  private readonly unseenMargin: number;
  private readonly room = new RollupRoom((key) => this.rolled.get(key)?.level === this.plan.levels.length - 1);
  private lastPrune = 0;
  /** The time of the last read: what forget() dates a series' end with. */
  private lastNow = 0;
  /** Own and rolled-up series begun and ended. */
  readonly churn = new SeriesChurn();
  /** Rolled-up series ended at the end of the last read: not begun again in this one, so a read shows each gone. */
  private readonly ended = new Set<string>();

  /**
   * @param forgetUnseenMs a label set no read has shown for this long is
   *   forgotten even if staleness never retired it: a safety net that keeps
   *   what the limiter tracks bounded by what the kernel still holds.
   * @param rolledIdleMs a rolled-up series with no member for this long
   *   ends (at the end of a read that still showed it), freeing its place.
   *   Until then a new member continues it, so it never restarts from zero.
   */
  constructor(
    readonly metric: string,
    readonly limit: number,
    readonly plan: RollupPlan = RollupPlan.none(),
    private readonly forgetUnseenMs = Infinity,
    private readonly rolledIdleMs = 0,
  ) {
    this.ownLimit = plan.ownLimit(limit);
    this.unseenMargin = plan.levels.length < 2 ? 0 : Math.ceil((limit - this.ownLimit) / 4);
  }

  /**
   * Makes a label set known before any of a read is placed, so that places
   * are kept for every namespace the read shows, whatever order it comes in.
   */
  know(key: string, labels: Readonly<Record<string, string>>, now: number): Known {
    return this.tracked(key, labels, now) as unknown as Known;
  }

  /**
   * know() for a label set known at an earlier read, as that read's know()
   * returned it: no lookup while it is still tracked (the reader keeps it
   * with the series, so a read of 100k label sets makes no 100k lookups in a
   * map of 100k); looked up afresh once forgotten.
   */
  knowAgain(known: Known | undefined, key: string, labels: Readonly<Record<string, string>>, now: number): Known {
    const t = known as unknown as Tracked | undefined;
    if (!t || t.gone) return this.know(key, labels, now);
    t.seen = now;
    return known!;
  }

  /**
   * place() for a label set know() returned in this read: a read of 100k
   * label sets looked each up twice in a map of 100k, once to know it and
   * once to place it.
   */
  placeKnown(known: Known, labels: Readonly<Record<string, string>>, now: number): Destination {
    const t = known as unknown as Tracked;
    if (!t.dest) this.choose(labels, t, now);
    return t.dest!;
  }

  private tracked(key: string, labels: Readonly<Record<string, string>>, now: number): Tracked {
    let t = this.sets.get(key);
    if (t) {
      t.seen = now;
      return t;
    }
    this.lastNow = now;
    t = { seen: now, coarse: this.coarseKeyOf(labels) };
    if (t.coarse !== undefined) this.room.addCoarse(t.coarse);
    this.sets.set(key, t);
    return t;
  }

  /** Where a label set's counts go at this read; the same place at every read until it is forgotten. */
  place(key: string, labels: Readonly<Record<string, string>>, now = Date.now()): Destination {
    const t = this.tracked(key, labels, now);
    if (!t.dest) this.choose(labels, t, now);
    return t.dest!;
  }

  private choose(labels: Readonly<Record<string, string>>, t: Tracked, now: number): void {
    if (this.own < this.ownLimit && this.total < this.limit) {
      this.own++;
      this.churn.created(now);
      t.dest = OWN;
      return;
    }
    const last = this.plan.levels.length - 1;
    const passed: string[] = [];
    t.dest = FLAT;
    for (let level = 0; level <= last; level++) {
      const rolledLabels = this.plan.rolledLabels(labels, level);
      if (!rolledLabels) break;
      const key = level === last && t.coarse !== undefined ? t.coarse : labelKey(rolledLabels);
      let series = this.rolled.get(key);
      if (!series && this.ended.has(key)) continue;
      if (!series) {
        // The coarsest level may take the last place; a finer one leaves one for each uncovered coarsest key.
        const free = this.limit - this.total;
        if (free < 1 || (level < last && (free - 1 < this.room.uncovered + this.unseenMargin || this.room.isPassedOver(key)))) {
          passed.push(key);
          continue;
        }
        series = { key, labels: rolledLabels, level, members: 0 };
        this.rolled.set(key, series);
        this.churn.created(now);
        if (level === last) this.room.coarseSeries(key, true);
      }
      series.members++;
      series.idleSince = undefined;
      t.dest = { at: 'rolled', series };
      break;
    }
    if (passed.length === 0) return;
    t.passed = passed;
    this.room.pass(passed, 1);
  }

  /** A rolled-up series' key: counts held under it (from stale members) belong to it while it lasts. */
  rolledSeries(key: string): RolledSeries | undefined {
    return this.rolled.get(key);
  }

  /** A label set went stale: it frees its place; says where it was. */
  forget(key: string): Placement {
    const t = this.sets.get(key);
    if (!t) return { at: 'unknown' };
    this.sets.delete(key);
    t.gone = true;
    if (t.coarse !== undefined) this.room.removeCoarse(t.coarse);
    if (!t.dest) return { at: 'unknown' };
    this.room.pass(t.passed ?? [], -1);
    if (t.dest.at === 'own') {
      this.own--;
      this.churn.retired(this.lastNow);
      return t.dest;
    }
    if (t.dest.at === 'flat') return t.dest;
    const series = t.dest.series;
    series.members--;
    return t.dest;
  }

  /**
   * At the end of a read: forgets label sets no read has shown for
   * forgetUnseenMs (cheap unless due), and ends rolled-up series idle for
   * rolledIdleMs. The read showed them one last time, with all they held.
   */
  forgetUnseen(now: number): void {
    this.lastNow = now;
    this.ended.clear();
    for (const series of this.rolled.values()) {
      if (series.members > 0) continue;
      series.idleSince ??= now;
      if (now - series.idleSince < this.rolledIdleMs) continue;
      this.rolled.delete(series.key);
      this.ended.add(series.key);
      this.churn.retired(now);
      if (series.level === this.plan.levels.length - 1) this.room.coarseSeries(series.key, false);
    }
    if (!Number.isFinite(this.forgetUnseenMs) || now - this.lastPrune < this.forgetUnseenMs / 4) return;
    this.lastPrune = now;
    for (const [key, t] of this.sets) if (now - t.seen > this.forgetUnseenMs) this.forget(key);
  }

  private coarseKeyOf(labels: Readonly<Record<string, string>>): string | undefined {
    if (this.plan.levels.length < 2) return undefined; // no finer level to keep places from
    const coarse = this.plan.rolledLabels(labels, this.plan.levels.length - 1);
    return coarse && labelKey(coarse);
  }

  private get total(): number {
    return this.own + this.rolled.size;
  }

  /** Label sets with a series of their own. */
  get series(): number {
    return this.own;
  }

  /** Rolled-up series, all levels but the flat one. */
  get rolledUpSeries(): number {
    return this.rolled.size;
  }

  /** Distinct label sets folded, at any level. */
  get overflowedLabelSets(): number {
    let n = 0;
    for (const t of this.sets.values()) if (t.dest && t.dest.at !== 'own') n++;
    return n;
  }

  /** Per level name (the plan's levels, then "flat"): rolled-up series, and label sets folded into them. */
  levels(): Array<{ level: string; series: number; labelSets: number }> {
    const out = [...this.plan.levels, FLAT_LEVEL].map((level) => ({ level, series: 0, labelSets: 0 }));
    for (const s of this.rolled.values()) out[s.level].series++;
    for (const t of this.sets.values()) {
      if (!t.dest) continue;
      if (t.dest.at === 'rolled') out[t.dest.series.level].labelSets++;
      else if (t.dest.at === 'flat') out[out.length - 1].labelSets++;
    }
    // The flat series is one whatever folds into it (the kernel's full-map updates too: those are no label set).
    out[out.length - 1].series = Math.min(1, out[out.length - 1].labelSets);
    return out;
  }
}
