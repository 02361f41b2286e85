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

  /**
   * Sums by namespace, and by namespace and workload for every workload with
   * a rolled-up series of its own, as Prometheus would sum the last read:
   * each equal to what that namespace or workload counted; a problem
   * otherwise. For histories where no series ended.
   */
  exactByGroup(): string | undefined {
    const byNs = new Map<string, number>();
    const byWl = new Map<string, number>();
    const rolledWorkloads = new Set<string>();
    for (const [name, metric] of FAMILIES) {
      for (const [key, buckets] of this.last.get(name) ?? new Map()) {
        const labels = JSON.parse(key) as Record<string, string>;
        if (labels.overflow && labels.workload !== undefined && labels.pod === undefined && labels.binary === undefined) rolledWorkloads.add(`${labels.namespace}/${labels.workload}`);
        for (const [bucket, v] of buckets) {
          this.add(byNs, `${metric}:${bucket}:${labels.namespace}`, v);
          if (labels.workload !== undefined) this.add(byWl, `${metric}:${bucket}:${labels.namespace}/${labels.workload}`, v);
        }
      }
    }
    const nsTruth = new Map<string, number>();
    for (const [k, v] of this.world.truthByWorkload) this.add(nsTruth, k.slice(0, k.lastIndexOf('/')), v);
    for (const [k, v] of nsTruth) if ((byNs.get(k) ?? 0) !== v) return `sum by namespace ${k}: shown ${byNs.get(k) ?? 0}, counted ${v}`;
    for (const [k, v] of this.world.truthByWorkload) {
      if (!rolledWorkloads.has(k.slice(k.lastIndexOf(':') + 1))) continue;
      if ((byWl.get(k) ?? 0) !== v) return `sum by namespace, workload ${k}: shown ${byWl.get(k) ?? 0}, counted ${v}`;
    }
    return undefined;
  }

  /** Rolled-up series in the last read, by how many labels of namespace, workload and pod they kept. */
  rolledUp(): number {
    let n = 0;
    for (const [name] of FAMILIES) for (const key of (this.last.get(name) ?? new Map()).keys()) if (key !== '{"overflow":"true"}' && key.includes('"overflow"')) n++;
    return n;
  }

  private add(m: Map<string, number>, k: string, v: number): void {
    m.set(k, (m.get(k) ?? 0) + v);
  }
}
