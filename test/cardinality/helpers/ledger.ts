/**
 * Watches every read the way Prometheus would: a series present in two
 * reads in a row never decreases; a series that disappears has ended, with
 * the last value it showed. What was shown is then the sum over the series
 * of a read plus what ended series showed last: never more than what was
 * counted, and, once everything is resolved and swept, exactly that.
 */
import { COUNTER, HISTOGRAM, World } from './world';

type Read = Map<string, Map<string, Map<number, number>>>;

export const FAMILIES: ReadonlyArray<[string, number]> = [
  ['test_events_total', COUNTER],
  ['test_bytes', HISTOGRAM],
];

export class Ledger {
  private last: Read = new Map();
  /** Per `${metric}:${bucket}`: what ended series showed last. */
  private readonly ended = new Map<string, number>();

  constructor(private readonly world: World) {}

  /** Reads, checks monotonicity and that nothing was invented; returns a problem, or undefined. */
  observe(): string | undefined {
    const now = this.world.read();
    for (const [name, metric] of FAMILIES) {
      const before = this.last.get(name) ?? new Map();
      const after = now.get(name) ?? new Map();
      for (const [key, buckets] of before) {
        const cur = after.get(key);
        for (const [bucket, v] of buckets) {
          if (!cur) this.add(this.ended, `${metric}:${bucket}`, v);
          else if ((cur.get(bucket) ?? 0) < v) return `${name}${key} bucket ${bucket} decreased from ${v} to ${cur.get(bucket) ?? 0}`;
        }
      }
    }
    this.last = now;
    for (const [k, shown] of this.shown()) {
      const truth = this.world.truth.get(k) ?? 0;
      if (shown > truth) return `${k}: shown ${shown}, more than the ${truth} counted`;
    }
    return undefined;
  }

  /** The last read has an overflow series. */
  showsOverflow(): boolean {
    return FAMILIES.some(([name]) => this.last.get(name)?.has('{"overflow":"true"}'));
  }

  /** Per `${metric}:${bucket}`: shown now plus shown by ended series. */
  shown(): Map<string, number> {
    const out = new Map(this.ended);
    for (const [name, metric] of FAMILIES) {
      for (const buckets of (this.last.get(name) ?? new Map()).values()) {
        for (const [bucket, v] of buckets) this.add(out, `${metric}:${bucket}`, v);
      }
    }
    return out;
  }

  /** Every metric and bucket shown exactly as counted; a problem otherwise. */
  conserved(): string | undefined {
    const shown = this.shown();
    for (const k of new Set([...shown.keys(), ...this.world.truth.keys()])) {
      if ((shown.get(k) ?? 0) !== (this.world.truth.get(k) ?? 0)) return `${k}: shown ${shown.get(k) ?? 0}, counted ${this.world.truth.get(k) ?? 0}`;
    }
    return undefined;
  }

  private add(m: Map<string, number>, k: string, v: number): void {
    m.set(k, (m.get(k) ?? 0) + v);
  }
}
