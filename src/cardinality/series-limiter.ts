/**
 * The per-metric series limit (--metrics-series-limit).
 *
 * The first `limit` distinct label sets a metric shows get series of their
 * own; every later one is folded into a single series whose only label is
 * overflow="true", together with whatever the kernel diverted to its overflow
 * key when its map was full. A label set, once folded, stays folded: so
 * neither its own series nor the overflow series can ever decrease, and the
 * sum over all series always equals what the kernel counted.
 */
import { Sample } from '../metrics/define';

export const OVERFLOW_LABELS: Readonly<Record<string, string>> = Object.freeze({ overflow: 'true' });

/** The key of a label set: its labels in a stable order. */
export function labelKey(labels: Record<string, string>): string {
  return JSON.stringify(labels);
}

const OVERFLOW_KEY = labelKey({ ...OVERFLOW_LABELS });

/** What a label set was to the limiter when it went stale. */
export type Placement = 'admitted' | 'folded' | 'unknown';

export class SeriesLimiter {
  /** labelKey -> when a read last showed it (ms): admitted and folded label sets. */
  private readonly admitted = new Map<string, number>();
  private readonly folded = new Map<string, number>();

  /**
   * @param forgetUnseenMs a label set no read has shown for this long is
   *   forgotten even if staleness never retired it: a safety net that keeps
   *   both sets bounded by what the kernel still holds.
   */
  constructor(
    readonly metric: string,
    readonly limit: number,
    private readonly forgetUnseenMs = Infinity,
  ) {}

  /**
   * Where a label set's series goes at this read: its own series while there
   * is room or it already has one, else the overflow series, for good.
   */
  place(key: string, now = Date.now()): 'admitted' | 'folded' {
    if (this.admitted.has(key) || (!this.folded.has(key) && this.admitted.size < this.limit)) {
      this.admitted.set(key, now);
      return 'admitted';
    }
    this.folded.set(key, now);
    return 'folded';
  }

  /** Series to expose for one read of the kernel, keyed by labelKey. */
  apply(samples: Map<string, Sample>, now = Date.now()): Sample[] {
    const out: Sample[] = [];
    let overflow = 0;
    let anyOverflow = false;
    for (const [key, s] of samples) {
      if (key !== OVERFLOW_KEY && this.place(key, now) === 'admitted') {
        out.push(s);
      } else {
        overflow += s.value;
        anyOverflow = true;
      }
    }
    if (anyOverflow) out.push({ labels: { ...OVERFLOW_LABELS }, value: overflow });
    this.forgetUnseen(now);
    return out;
  }

  private lastPrune = 0;

  /** Forgets label sets no read has shown for forgetUnseenMs; cheap unless due. */
  forgetUnseen(now: number): void {
    if (!Number.isFinite(this.forgetUnseenMs) || now - this.lastPrune < this.forgetUnseenMs / 4) return;
    this.lastPrune = now;
    for (const set of [this.admitted, this.folded]) {
      for (const [key, seen] of set) if (now - seen > this.forgetUnseenMs) set.delete(key);
    }
  }

  /** A label set that went stale frees its place; says where it was. */
  forget(key: string): Placement {
    if (this.admitted.delete(key)) return 'admitted';
    return this.folded.delete(key) ? 'folded' : 'unknown';
  }

  /** Label sets with a series of their own. */
  get series(): number {
    return this.admitted.size;
  }

  /** Distinct label sets folded into the overflow series. */
  get overflowedLabelSets(): number {
    return this.folded.size;
  }
}
