/**
 * The log of an outage of the API server, as one node's agent sees it: one
 * warning when requests start to fail, one line when the server answers
 * again saying how many attempts failed and for how long. Retries in between
 * are counted (tally_kube_watch_errors_total, tally_kube_requests_total),
 * not logged: with backoff they are many, and on 5,000 nodes a warning per
 * retry is 5,000 log lines per step.
 */
import { Logger } from '../../util/log';

export class OutageLog {
  private since?: number;
  private failures = 0;

  constructor(
    private readonly log: Logger,
    /** What failed, e.g. "kubernetes pod watch". */
    private readonly what: string,
    private readonly fields: Record<string, unknown> = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** True from the first failure until the server answers again. */
  get open(): boolean {
    return this.since !== undefined;
  }

  /** A request failed and will be retried with backoff. */
  failed(reason: string, message: string): void {
    this.failures++;
    if (this.since !== undefined) return;
    this.since = this.now();
    this.log.warn(`${this.what}: the API server request failed; retrying with backoff (logged again once it answers)`, { reason, error: message, ...this.fields });
  }

  /** The server answered: ends the outage, if there was one, with its count. */
  answered(): void {
    if (this.since === undefined) return;
    const seconds = Math.round((this.now() - this.since) / 100) / 10;
    this.log.info(`${this.what}: the API server answers again`, { failed_attempts: this.failures, outage_seconds: seconds, ...this.fields });
    this.since = undefined;
    this.failures = 0;
  }
}
