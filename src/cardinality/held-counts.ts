/**
 * Counts moved out of the kernel and kept in user space: what fold-in moved
 * from a raw cgroup's entry, what a removed cgroup's entry held when it was
 * deleted, and what belongs to the overflow series because its series is
 * gone or was folded. Every read adds them to the kernel's counts.
 */
import { EntryLabels } from './key-labels';

/**
 * One series' counts, by histogram bucket; counters use bucket 0 only. The
 * first bucket is kept in two fields and only further ones in a map: a map
 * per held series was 500 bytes, and every label set holds its counts from
 * before its fold-in, so at 100k series they were 50 MiB of the heap.
 */
export interface Held {
  labels: Record<string, string>;
  /** labelKey of the cgroup-derived labels only: what liveness is decided on. */
  setKey: string;
  bucket: number;
  value: number;
  /** Buckets other than `bucket` (histograms only). */
  more?: Map<number, number>;
}

function held(labels: Record<string, string>, setKey: string, bucket: number): Held {
  return { labels, setKey, bucket, value: 0, more: undefined };
}

function addToHeld(h: Held, bucket: number, value: number): void {
  if (bucket === h.bucket) h.value += value;
  else addToBucket((h.more ??= new Map()), bucket, value);
}

/** Each bucket of a held series and its count. */
export function eachBucket(h: Held, fn: (bucket: number, value: number) => void): void {
  fn(h.bucket, h.value);
  if (h.more) for (const [b, v] of h.more) fn(b, v);
}

/** A held series' [bucket, count] pairs, its first bucket first. */
export function bucketsOf(h: Held): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  eachBucket(h, (b, v) => out.push([b, v]));
  return out;
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
    if (!h) m.set(labels.key, (h = held(labels.labels, labels.setKey, bucket)));
    addToHeld(h, bucket, value);
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
    if (!h) m.set(key, (h = held(labels as Record<string, string>, key, bucket)));
    addToHeld(h, bucket, value);
  }

  /** Takes out every series whose label set is not live, handing each bucket to out. */
  takeStale(live: ReadonlySet<string>, out: (metric: number, key: string, bucket: number, value: number) => void): void {
    for (const [metric, m] of this.series) {
      for (const [key, h] of m) {
        if (live.has(h.setKey)) continue;
        m.delete(key);
        eachBucket(h, (bucket, value) => out(metric, key, bucket, value));
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
