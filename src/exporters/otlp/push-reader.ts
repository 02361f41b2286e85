/**
 * A MetricReader that pushes to an OTLP exporter on a timer, with the
 * guarantees the agent needs from a collector that is down or slow:
 *
 * - one export in flight at a time: an attempt whose exporter has not
 *   answered (past its timeout) holds later ticks off until it does, so
 *   memory holds at most one batch;
 * - every attempt times out (the exporter's own timeout, and a guard a
 *   second later in case it does not keep it);
 * - a failed attempt's points are given up and counted, never queued: the
 *   values are cumulative, so the next attempt, which collects afresh,
 *   carries everything they had;
 * - after failures the next attempt backs off: one interval, then two,
 *   then four at most, until an attempt succeeds.
 *
 * The HTTP exporter retries inside one attempt (see docs/otlp.md); the
 * gRPC exporter does not.
 *
 * SDK's PeriodicExportingMetricReader is not used: it reports no outcome
 * (so nothing could be counted), and after its timeout it starts the next
 * export while the previous one may still be sending.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporality, MetricReader, type MetricProducer, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** How long past the exporter's timeout the reader waits before it gives an attempt up itself. */
const GUARD_MS = 1000;
/** Backoff stops growing at this many intervals. */
const MAX_BACKOFF_INTERVALS = 4;

export interface ExportOutcome {
  ok: boolean;
  /** Data points the attempt carried: delivered when ok, given up when not. */
  points: number;
  ms: number;
  error?: Error;
}

export interface PushReaderOptions {
  exporter: PushMetricExporter;
  producer: MetricProducer;
  intervalMs: number;
  timeoutMs: number;
  /** Told about every attempt that collected something. */
  onOutcome: (outcome: ExportOutcome) => void;
}

export class PushReader extends MetricReader {
  private timer?: NodeJS.Timeout;
  /** The exporter's answer to the last export, until it comes. */
  private unanswered?: Promise<ExportResult>;
  /** An attempt under way (collect and export). */
  private running?: Promise<boolean>;
  private failures = 0;
  private stopped = false;

  constructor(private readonly opts: PushReaderOptions) {
    super({ metricProducers: [opts.producer], aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }

  protected override onInitialized(): void {
    this.schedule(this.opts.intervalMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick().catch(() => undefined), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    let ok = false;
    try {
      ok = await this.attempt(this.opts.timeoutMs);
    } finally {
      // Whatever happened in the attempt, exports go on: a timer callback's rejection would end the agent.
      const intervals = ok ? 1 : Math.min(2 ** Math.max(this.failures - 1, 0), MAX_BACKOFF_INTERVALS);
      this.schedule(this.opts.intervalMs * intervals);
    }
  }

  /** One collection and export; resolves whether it was delivered (true when there was nothing to send). */
  private attempt(timeoutMs: number): Promise<boolean> {
    if (this.running) return this.running;
    this.running = this.collectAndSend(timeoutMs).finally(() => (this.running = undefined));
    return this.running;
  }

  private async collectAndSend(timeoutMs: number): Promise<boolean> {
    // The last export is still unanswered: a second one would double what a slow collector holds us to.
    if (this.unanswered) return false;
    const started = Date.now();
    let points = 0;
    let result: ExportResult;
    try {
      const { resourceMetrics } = await this.collect({ timeoutMillis: timeoutMs });
      points = countPoints(resourceMetrics);
      if (points === 0) return true;
      result = await this.send(resourceMetrics, timeoutMs);
    } catch (e) {
      result = { code: ExportResultCode.FAILED, error: e as Error };
    }
    const ok = result.code === ExportResultCode.SUCCESS;
    this.failures = ok ? 0 : this.failures + 1;
    try {
      this.opts.onOutcome({ ok, points, ms: Date.now() - started, error: ok ? undefined : (result.error ?? new Error('export failed')) });
    } catch {
      // Counting and logging an outcome must not stop exporting.
    }
    return ok;
  }

  private send(metrics: ResourceMetrics, timeoutMs: number): Promise<ExportResult> {
    const answer = new Promise<ExportResult>((resolve) => {
      try {
        this.opts.exporter.export(metrics, resolve);
      } catch (e) {
        resolve({ code: ExportResultCode.FAILED, error: e as Error });
      }
    });
    this.unanswered = answer;
    void answer.then(() => {
      if (this.unanswered === answer) this.unanswered = undefined;
    });
    let guard: NodeJS.Timeout | undefined;
    const givenUp = new Promise<ExportResult>((resolve) => {
      guard = setTimeout(() => resolve({ code: ExportResultCode.FAILED, error: new Error(`the collector did not answer within ${timeoutMs} ms`) }), timeoutMs + GUARD_MS);
      guard.unref();
    });
    return Promise.race([answer, givenUp]).finally(() => clearTimeout(guard));
  }

  /** Exports once now (after any attempt under way), within timeoutMs. */
  protected override async onForceFlush(): Promise<void> {
    await this.running;
    await this.attempt(this.opts.timeoutMs);
  }

  /**
   * Stops the timer, exports once more, and shuts the exporter down. The
   * caller bounds the time (MetricReader.shutdown's timeoutMillis); the
   * exporter may still be sending after that, with its own timeout.
   */
  protected override async onShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.attempt(this.opts.timeoutMs);
    await this.opts.exporter.shutdown();
  }
}

export function countPoints(rm: ResourceMetrics): number {
  let n = 0;
  for (const s of rm.scopeMetrics) for (const m of s.metrics) n += m.dataPoints.length;
  return n;
}
