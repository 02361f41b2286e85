/**
 * OTLP push export: a MeterProvider (for the resource) whose one reader
 * pushes what TallyMetricProducer collects through the official exporter
 * of the configured protocol, and the health metrics that count how it
 * goes. Exports start on the interval once it is constructed; stop()
 * exports a last time within a short bound and never holds shutdown up
 * longer.
 */
import { hrTime } from '@opentelemetry/core';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';
import * as catalog from '../../metrics/catalog';
import { defineMetric } from '../../metrics/define';
import type { Logger } from '../../util/log';
import { VERSION } from '../../util/version';
import type { OtlpConfig } from './config';
import { createExporter } from './exporter';
import { TallyMetricProducer, type KernelSource } from './producer';
import { PushReader, type ExportOutcome } from './push-reader';
import { tallyResource } from './resource';
import type { WorkloadKindOf } from './attributes';

export { resolveOtlpConfig, type OtlpConfig } from './config';
export { podLabelAttributes, workloadKinds } from './attributes';

/** The longest stop() waits for the last export. */
export const STOP_FLUSH_MS = 2000;

export interface OtlpExportOptions {
  config: OtlpConfig;
  kernel: KernelSource;
  registry: Registry;
  log: Logger;
  /** The node's name when the agent watches Kubernetes. */
  kubernetesNode?: string;
  workloadKinds?: () => WorkloadKindOf;
  /** See TallyProducerOptions.labelAttributes. */
  labelAttributes?: Readonly<Record<string, string>>;
}

export class OtlpExport {
  readonly stats = { exports: 0, failures: 0, droppedPoints: 0 };
  private readonly provider: MeterProvider;
  private readonly producer: TallyMetricProducer;
  private stopping?: Promise<void>;
  /** Failing since: the first failure after a success is logged, the rest only counted. */
  private failingSince?: number;

  constructor(private readonly opts: OtlpExportOptions) {
    const { config } = opts;
    this.producer = new TallyMetricProducer({
      kernel: opts.kernel,
      registry: opts.registry,
      startTime: hrTime(),
      scope: { name: 'tally', version: VERSION },
      workloadKinds: opts.workloadKinds,
      labelAttributes: opts.labelAttributes,
    });
    const reader = new PushReader({
      exporter: createExporter(config),
      producer: this.producer,
      intervalMs: config.intervalMs,
      timeoutMs: config.timeoutMs,
      onOutcome: (o) => this.record(o),
    });
    this.provider = new MeterProvider({ resource: tallyResource({ kubernetesNode: opts.kubernetesNode }), readers: [reader] });
    defineMetric(opts.registry, catalog.OTLP_EXPORTS, () => [{ labels: {}, value: this.stats.exports }]);
    defineMetric(opts.registry, catalog.OTLP_EXPORT_FAILURES, () => [{ labels: {}, value: this.stats.failures }]);
    defineMetric(opts.registry, catalog.OTLP_DROPPED_POINTS, () => [{ labels: {}, value: this.stats.droppedPoints }]);
    opts.log.info('exporting over OTLP', { endpoint: config.endpoint, protocol: config.protocol, interval_ms: config.intervalMs, timeout_ms: config.timeoutMs });
  }

  private record(o: ExportOutcome): void {
    if (o.ok) {
      this.stats.exports++;
      if (this.failingSince !== undefined) {
        this.opts.log.info('OTLP export recovered', { failing_for_ms: Date.now() - this.failingSince });
        this.failingSince = undefined;
      }
      this.opts.log.debug('OTLP export', { points: o.points, ms: o.ms });
      return;
    }
    this.stats.failures++;
    this.stats.droppedPoints += o.points;
    const fields = { endpoint: this.opts.config.endpoint, error: o.error?.message ?? 'unknown', dropped_points: o.points, ms: o.ms };
    if (this.failingSince === undefined) {
      this.failingSince = Date.now();
      this.opts.log.warn('OTLP export failed; retrying with backoff, counting what is dropped (tally_otlp_export_failures_total)', fields);
    } else {
      this.opts.log.debug('OTLP export failed again', fields);
    }
  }

  /** Exports once more within STOP_FLUSH_MS and shuts the exporter down. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.provider.shutdown({ timeoutMillis: STOP_FLUSH_MS }).catch((e: Error) => {
      this.opts.log.warn('the last OTLP export did not finish', { error: e.message });
    });
    return this.stopping;
  }
}
