/**
 * Kernel counters as prom-client metrics, read at scrape time.
 *
 * A counter series is one number. A histogram series is the kernel's log2
 * buckets: bucket i counts values in (2^(i-1), 2^i], so it becomes the
 * classic bucket le="2^i" (times the metric's scale) made cumulative, with
 * an exact _sum and _count. Every series of a metric shows the same buckets,
 * up to the highest one any series has reached, so a bucket never vanishes
 * from one scrape to the next.
 */
import { Registry } from 'prom-client';
import { BUCKET_SUM } from '../bpf/layout';

export interface SeriesValues {
  labels: Readonly<Record<string, string>>;
  /** Counters: the count. */
  value: number;
  /** Histograms: count per bucket, and the sum under BUCKET_SUM. */
  buckets?: Map<number, number>;
}

export interface ExposedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  scale?: number;
}

interface PromValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** The upper bound of bucket i, as Prometheus reads it. */
export function bucketBound(i: number, scale = 1): string {
  return String(2 ** i * scale);
}

export function histogramValues(name: string, series: SeriesValues[], topBucket: number, scale = 1): PromValue[] {
  const out: PromValue[] = [];
  for (const s of series) {
    let cumulative = 0;
    for (let i = 0; i <= topBucket; i++) {
      cumulative += s.buckets?.get(i) ?? 0;
      out.push({ labels: { ...s.labels, le: bucketBound(i, scale) }, value: cumulative, metricName: `${name}_bucket` });
    }
    // Buckets above topBucket are empty by definition of topBucket.
    out.push({ labels: { ...s.labels, le: '+Inf' }, value: cumulative, metricName: `${name}_bucket` });
    out.push({ labels: { ...s.labels }, value: (s.buckets?.get(BUCKET_SUM) ?? 0) * scale, metricName: `${name}_sum` });
    out.push({ labels: { ...s.labels }, value: cumulative, metricName: `${name}_count` });
  }
  return out;
}

/** Registers the metric; returns what unregisters it. */
export function exposeSeries(
  registry: Registry,
  metric: ExposedMetric,
  collect: () => Promise<{ series: SeriesValues[]; topBucket: number }>,
): () => void {
  const m = {
    name: metric.name,
    help: metric.help,
    type: metric.type,
    aggregator: 'sum' as const,
    async get() {
      const { series, topBucket } = await collect();
      const values =
        metric.type === 'histogram'
          ? histogramValues(metric.name, series, topBucket, metric.scale)
          : series.map((s) => ({ labels: s.labels as Record<string, string>, value: s.value }));
      return { name: metric.name, help: metric.help, type: metric.type, aggregator: 'sum' as const, values };
    },
    reset() {},
  };
  // Duck-typed: the Registry only calls get() (and reset()) on it.
  registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
  return () => registry.removeSingleMetric(metric.name);
}
