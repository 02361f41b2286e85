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

export class SeriesLimiter {
  private readonly admitted = new Set<string>();
  private readonly folded = new Set<string>();

  constructor(
    readonly metric: string,
    readonly limit: number,
  ) {}

  /** Series to expose for one read of the kernel, keyed by labelKey. */
  apply(samples: Map<string, Sample>): Sample[] {
    const out: Sample[] = [];
    let overflow = 0;
    let anyOverflow = false;
    for (const [key, s] of samples) {
      if (key === OVERFLOW_KEY) {
        overflow += s.value;
        anyOverflow = true;
      } else if (this.admitted.has(key) || (!this.folded.has(key) && this.admitted.size < this.limit)) {
        this.admitted.add(key);
        out.push(s);
      } else {
        this.folded.add(key);
        overflow += s.value;
        anyOverflow = true;
      }
    }
    if (anyOverflow) out.push({ labels: { ...OVERFLOW_LABELS }, value: overflow });
    return out;
  }

  /** A label set that went stale frees its place. Returns true if it had been folded. */
  forget(key: string): boolean {
    this.admitted.delete(key);
    return this.folded.delete(key);
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
