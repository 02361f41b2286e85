/**
 * Counts moved out of the kernel and kept in user space: what fold-in moved
 * from a raw cgroup's entry, what a removed cgroup's entry held when it was
 * deleted, and what belongs to the overflow series because its series is
 * gone or was folded. Every read adds them to the kernel's counts.
 */
import { EntryLabels } from './key-labels';

/** One series' counts, by histogram bucket; counters use bucket 0 only. */
export interface Held {
  labels: Record<string, string>;
  /** labelKey of the cgroup-derived labels only: what liveness is decided on. */
  setKey: string;
  buckets: Map<number, number>;
}

export function addToBucket(buckets: Map<number, number>, bucket: number, value: number): void {
  buckets.set(bucket, (buckets.get(bucket) ?? 0) + value);
}

export class HeldCounts {
  /** Per metric, by series key. */
  readonly series = new Map<number, Map<string, Held>>();
  /** Per metric, per bucket: what the overflow series holds beside the kernel's overflow entries. */
  readonly overflow = new Map<number, Map<number, number>>();
  /** Per metric, by rolled-up series key: what its stale members counted, held while the series lasts. */
  readonly rolled = new Map<number, Map<string, Held>>();

  add(metric: number, labels: EntryLabels, bucket: number, value: number): void {
    let m = this.series.get(metric);
    if (!m) this.series.set(metric, (m = new Map()));
    let h = m.get(labels.key);
    if (!h) m.set(labels.key, (h = { labels: labels.labels, setKey: labels.setKey, buckets: new Map() }));
    addToBucket(h.buckets, bucket, value);
  }

  addOverflow(metric: number, bucket: number, value: number): void {
    if (value <= 0) return;
    let m = this.overflow.get(metric);
    if (!m) this.overflow.set(metric, (m = new Map()));
    addToBucket(m, bucket, value);
  }

  addRolled(metric: number, key: string, labels: Readonly<Record<string, string>>, bucket: number, value: number): void {
    if (value <= 0) return;
    let m = this.rolled.get(metric);
    if (!m) this.rolled.set(metric, (m = new Map()));
    let h = m.get(key);
    if (!h) m.set(key, (h = { labels: labels as Record<string, string>, setKey: key, buckets: new Map() }));
    addToBucket(h.buckets, bucket, value);
  }

  /** Takes out every series whose label set is not live, handing each bucket to out. */
  takeStale(live: ReadonlySet<string>, out: (metric: number, key: string, bucket: number, value: number) => void): void {
    for (const [metric, m] of this.series) {
      for (const [key, h] of m) {
        if (live.has(h.setKey)) continue;
        m.delete(key);
        for (const [bucket, value] of h.buckets) out(metric, key, bucket, value);
      }
    }
  }

  /** A metric is gone (its policy was removed): nothing held for it counts any more. */
  dropMetric(metric: number): void {
    this.series.delete(metric);
    this.overflow.delete(metric);
    this.rolled.delete(metric);
  }
}
