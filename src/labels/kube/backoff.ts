/**
 * Exponential backoff with full jitter, for every request tally retries
 * against the Kubernetes API server (lists, watches, owner lookups).
 *
 * Like client-go's wait.Backoff, it has a first step, a factor and a cap:
 * step n (from 0) is min(cap, initial × factor^n). Unlike a plain
 * exponential backoff, each wait is drawn uniformly from [0, step) ("full
 * jitter"): tally runs on every node, and nodes that lost the API server at
 * the same instant must not come back at the same instant either. The cap
 * bounds every single wait, so once the server answers again each node is
 * back within one cap.
 */

export interface BackoffOptions {
  /** The first step's upper bound, ms. */
  initialMs: number;
  /** Every step's upper bound, ms. */
  capMs: number;
  /** How much each step grows (2 doubles it). */
  factor?: number;
  /** A number in [0, 1); Math.random unless a test fixes it. */
  random?: () => number;
}

/** tally's defaults: the first retry within 0.5 s, none later than 30 s. */
export const DEFAULT_BACKOFF = { initialMs: 500, capMs: 30_000, factor: 2 } as const;

export class Backoff {
  private step = 0;
  private readonly random: () => number;
  private readonly factor: number;

  constructor(private readonly o: BackoffOptions) {
    if (!(o.initialMs > 0) || !(o.capMs >= o.initialMs)) {
      throw new Error(`backoff: need 0 < initialMs <= capMs, got initialMs=${o.initialMs} capMs=${o.capMs}`);
    }
    this.factor = o.factor ?? 2;
    if (!(this.factor >= 1)) throw new Error(`backoff: factor must be at least 1, got ${this.factor}`);
    this.random = o.random ?? Math.random;
  }

  /** The upper bound of the next wait, ms (without drawing it). */
  get ceilingMs(): number {
    // Past the cap the power may reach Infinity, which min() turns into the cap.
    return Math.min(this.o.capMs, this.o.initialMs * this.factor ** this.step);
  }

  /** Failures in a row so far (0 after reset). */
  get failures(): number {
    return this.step;
  }

  /** The next wait: uniform in [0, ceiling), then the ceiling grows. */
  next(): number {
    const ceiling = this.ceilingMs;
    this.step++;
    return Math.floor(this.random() * ceiling);
  }

  /** Success: the next failure starts from the first step again. */
  reset(): void {
    this.step = 0;
  }
}

/**
 * A period with jitter, for timers that every node runs (watch timeouts,
 * resyncs): uniform in [base, base × (1 + spread)), so that nodes started
 * together drift apart rather than renew in step.
 */
export function jittered(baseMs: number, spread: number, random: () => number = Math.random): number {
  return baseMs + Math.floor(random() * baseMs * spread);
}
