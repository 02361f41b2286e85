/**
 * The official OTLP metric exporter for the configured protocol. Settings
 * come from OtlpConfig (flags over environment, already validated); the
 * exporters still read the rest of OTEL_EXPORTER_OTLP_* themselves
 * (compression, TLS certificates, gRPC insecure), which tally passes on.
 */
import { Metadata } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { AggregationTemporality, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { OtlpConfig } from './config';
import { VERSION } from '../../util/version';

export function createExporter(config: OtlpConfig): PushMetricExporter {
  const common = {
    url: config.endpoint,
    timeoutMillis: config.timeoutMs,
    temporalityPreference: AggregationTemporality.CUMULATIVE,
    userAgent: `tally/${VERSION}`,
  };
  if (config.protocol === 'grpc') {
    return new FreshAfterFailure(() => {
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(config.headers)) metadata.set(k, v);
      return new GrpcMetricExporter({ ...common, metadata });
    });
  }
  return new ProtobufMetricExporter({ ...common, headers: { ...config.headers } });
}

/**
 * gRPC: once its connection has failed, a grpc-js channel reconnects only
 * on its own backoff, which grows to two minutes, so exports kept failing
 * long after the collector was back. The exporter offers no channel
 * options; instead, the export after a failed one goes out on a new
 * exporter (a new channel), which connects at once. The old one is shut
 * down. At most one is made per failed attempt, and attempts back off.
 */
export class FreshAfterFailure implements PushMetricExporter {
  private current: PushMetricExporter;

  constructor(private readonly make: () => PushMetricExporter) {
    this.current = make();
  }

  export(metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    const used = this.current;
    used.export(metrics, (result) => {
      // This runs inside the exporter's own promise chain: a throw here would
      // be an unhandled rejection nobody could catch, so none may escape.
      if (result.code !== ExportResultCode.SUCCESS && used === this.current) {
        try {
          this.current = this.make();
          used.shutdown().catch(() => undefined);
        } catch {
          // No new channel now: the old one stays, and the next failure tries again.
        }
      }
      done(result);
    });
  }

  forceFlush(): Promise<void> {
    return this.current.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.current.shutdown();
  }
}
