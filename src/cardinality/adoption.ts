/**
 * What a new agent takes over from the previous one (docs/restart.md), on
 * the counting core's side.
 *
 * - The carry: each series as the previous agent's last read showed it
 *   (what its entries gained after it is adopted below). Until this agent's policies are
 *   loaded, it is added to the series of the same key after the series
 *   limit, so the first scrapes already continue every series. Then
 *   (holdCarried) a label set's own series and the flat overflow series
 *   become held counts, which live, roll up and go stale like anything
 *   fold-in moved out of the kernel: an idle but live workload keeps its
 *   count. A rolled-up series stays added after the limit, while this
 *   agent's reads show it or until the TTL after the takeover.
 * - Adopted entries: what the previous agent's programs counted after that
 *   read (while no agent ran, and until this agent took over), already
 *   translated into this agent's metric ids and label sets. Each is held
 *   (HeldCounts) once its labels are known, and from then on counts like
 *   anything fold-in moved out of the kernel.
 */
import { CounterEntry } from '../bpf/counter-store';
import { HeldCounts } from './held-counts';
import { KeyLabels } from './key-labels';
import { SeriesValues } from './series-values';
import { OVERFLOW_KEY } from './series-limiter';

export interface Carried {
  labels: Readonly<Record<string, string>>;
  value: number;
  buckets?: Map<number, number>;
}

export class Adoption {
  /** Family name -> series key -> what the previous agent showed. */
  private readonly carry = new Map<string, Map<string, Carried>>();
  private carryUntil = 0;
  private waiting: CounterEntry[] = [];

  constructor(
    private readonly labels: KeyLabels,
    private readonly held: HeldCounts,
  ) {}

  /** The previous agent's series, kept at least until `until` (ms). */
  setCarry(carry: Map<string, Map<string, Carried>>, until: number): void {
    for (const [name, series] of carry) this.carry.set(name, series);
    this.carryUntil = until;
  }

  /** Counts the previous agent's programs made after its last read, in this agent's ids. */
  adopt(entries: CounterEntry[]): void {
    this.waiting.push(...entries.filter((e) => e.value > 0));
    this.settle();
  }

  /** Holds every adopted entry whose labels are known now; the others wait for the next sweep. */
  settle(): void {
    if (this.waiting.length === 0) return;
    this.waiting = this.waiting.filter((e) => {
      const labels = this.labels.labelsOf(e.key);
      if (!labels) return true;
      this.held.add(e.key.metric, labels, e.key.bucket ?? 0, e.value);
      return false;
    });
  }

  /** Adopted entries still waiting for their labels. */
  get waitingEntries(): number {
    return this.waiting.length;
  }

  /**
   * Holds the carried own and flat overflow series (see the top), under the
   * metric id idOf gives their family; what it gives none (a family this
   * agent does not define) is dropped. Returns the series held.
   */
  holdCarried(idOf: (family: string) => number | undefined, setKeyOf: (labels: Readonly<Record<string, string>>) => string): number {
    let n = 0;
    for (const [name, carried] of this.carry) {
      const metric = idOf(name);
      if (metric === undefined) {
        this.carry.delete(name);
        continue;
      }
      for (const [key, c] of carried) {
        const flat = key === OVERFLOW_KEY;
        if (!flat && c.labels.overflow !== undefined) continue; // rolled up: stays added after the limit
        const buckets = c.buckets ?? new Map([[0, c.value]]);
        for (const [b, v] of buckets) {
          if (flat) this.held.addOverflow(metric, b, v);
          else this.held.add(metric, { labels: { ...c.labels }, key, setKey: setKeyOf(c.labels) }, b, v);
        }
        carried.delete(key);
        n++;
      }
      if (carried.size === 0) this.carry.delete(name);
    }
    return n;
  }

  /** A family's series with the carry added: the same key continues, a key this read lacks is shown while the carry is kept. */
  merge(name: string, series: SeriesValues[], now: number): SeriesValues[] {
    const carried = this.carry.get(name);
    if (!carried) return series;
    const byKey = new Map(series.map((s) => [s.key, s]));
    const out = [...series];
    for (const [key, c] of carried) {
      const s = byKey.get(key);
      if (s) {
        const merged: SeriesValues = { ...s, value: s.value + c.value, buckets: s.buckets ? new Map(s.buckets) : undefined };
        if (merged.buckets && c.buckets) for (const [b, v] of c.buckets) merged.buckets.set(b, (merged.buckets.get(b) ?? 0) + v);
        out[out.indexOf(s)] = merged;
      } else if (now <= this.carryUntil) {
        out.push({ labels: c.labels, key, value: c.value, buckets: c.buckets ? new Map(c.buckets) : undefined });
      } else {
        carried.delete(key); // ended: no read of this agent continued it
      }
    }
    if (carried.size === 0) this.carry.delete(name);
    return out;
  }

  /** A family is gone (its policy was removed): its carry goes with it. */
  dropFamily(name: string): void {
    this.carry.delete(name);
  }
}
