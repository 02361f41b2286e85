/**
 * When the counting core sweeps: on a timer, often enough that a series
 * outlives its TTL by at most a quarter of it; again shortly while fold-in
 * has a backlog of new cgroups, yielding to scrapes in between; and never
 * while a read is in flight.
 */
import { Logger } from '../util/log';

export class SweepSchedule {
  private readonly timer: NodeJS.Timeout;
  private backlogTimer?: NodeJS.Timeout;
  private closed = false;
  /** Sweeps that threw: series neither retire nor fold in while this grows (tally_sweep_failures_total). */
  failures = 0;

  /**
   * @param sweep runs one sweep; true when work is left for another one soon
   * @param busy true while a read holds a dump of the kernel map
   */
  constructor(
    ttlMs: number,
    private readonly sweep: () => boolean,
    private readonly busy: () => boolean,
    private readonly log: Logger,
  ) {
    const every = Math.min(Math.max(ttlMs / 4, 250), 15_000);
    this.timer = setInterval(() => this.run(), every);
    this.timer.unref();
  }

  run(): void {
    // A read in flight holds a dump of the kernel map while it waits for
    // binary announcements; moving entries now would count them twice.
    if (this.busy()) return this.again(50);
    try {
      if (this.sweep() && !this.closed) this.again(100);
    } catch (e) {
      this.failures++;
      this.log.error('staleness sweep failed', { error: (e as Error).message });
    }
  }

  private again(ms: number): void {
    clearTimeout(this.backlogTimer);
    this.backlogTimer = setTimeout(() => this.run(), ms);
    this.backlogTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.backlogTimer);
  }
}
