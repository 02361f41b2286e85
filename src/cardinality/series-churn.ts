/**
 * Series a metric began and ended: totals (tally_metric_series_created_total,
 * tally_metric_series_retired_total) and the last minute's, in six buckets
 * of ten seconds, for /debug/cardinality.
 */
const BUCKET_MS = 10_000;
const BUCKETS = 6;

export class SeriesChurn {
  createdTotal = 0;
  retiredTotal = 0;
  /** [bucket start, created, retired], oldest first, at most BUCKETS. */
  private readonly recent: Array<[number, number, number]> = [];

  created(now: number): void {
    this.createdTotal++;
    this.bucket(now)[1]++;
  }

  retired(now: number): void {
    this.retiredTotal++;
    this.bucket(now)[2]++;
  }

  /** Series begun and ended in the minute before `now`. */
  lastMinute(now: number): { created: number; retired: number } {
    let created = 0;
    let retired = 0;
    for (const [start, c, r] of this.recent) {
      if (start <= now - BUCKETS * BUCKET_MS) continue;
      created += c;
      retired += r;
    }
    return { created, retired };
  }

  private bucket(now: number): [number, number, number] {
    const start = now - (now % BUCKET_MS);
    let last = this.recent[this.recent.length - 1];
    if (!last || last[0] !== start) {
      this.recent.push((last = [start, 0, 0]));
      if (this.recent.length > BUCKETS) this.recent.shift();
    }
    return last;
  }
}
