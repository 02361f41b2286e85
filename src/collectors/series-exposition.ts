/**
 * Kernel counters as registry metrics, read at scrape time.
 *
 * A counter series is one number. A histogram series is the kernel's log2
 * buckets: bucket i counts values in (2^(i-1), 2^i] of the kernel's unit,
 * zeros apart. It becomes:
 * - classic buckets le="2^(i+unitLog2)", made cumulative (zeros fall in the
 *   first), with an exact _sum and _count. Every series of a metric shows
 *   the same buckets, up to the highest one any series has reached, so a
 *   bucket never vanishes from one scrape to the next;
 * - the same buckets at schema 0 (`native`), index i+unitLog2, for the
 *   protobuf exposition's native histograms.
 */
import { Registry } from 'prom-client';
import { BUCKETS, BUCKET_SUM, BUCKET_ZERO } from '../bpf/layout';
import type { NativeHistogram } from '../exporters/exposition';
import type { SeriesValues } from '../cardinality/series-values';

export type { SeriesValues } from '../cardinality/series-values';

export interface ExposedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  /** Histograms: the kernel's unit as a power of two of the exposed unit. */
  unitLog2?: number;
}

interface PromValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** The upper bound of bucket i, as Prometheus reads it. */
export function bucketBound(i: number, unitLog2 = 0): string {
  return String(2 ** (i + unitLog2));
}

export function histogramValues(name: string, series: SeriesValues[], topBucket: number, unitLog2 = 0): PromValue[] {
  const out: PromValue[] = [];
  for (const s of series) {
    let cumulative = s.buckets?.get(BUCKET_ZERO) ?? 0;
    for (let i = 0; i <= topBucket; i++) {
      cumulative += s.buckets?.get(i) ?? 0;
      out.push({ labels: { ...s.labels, le: bucketBound(i, unitLog2) }, value: cumulative, metricName: `${name}_bucket` });
    }
    // Buckets above topBucket are empty by definition of topBucket.
    out.push({ labels: { ...s.labels, le: '+Inf' }, value: cumulative, metricName: `${name}_bucket` });
    out.push({ labels: { ...s.labels }, value: (s.buckets?.get(BUCKET_SUM) ?? 0) * 2 ** unitLog2, metricName: `${name}_sum` });
    out.push({ labels: { ...s.labels }, value: cumulative, metricName: `${name}_count` });
  }
  return out;
}

/** The kernel buckets of each series at schema 0, index for index. */
export function nativeHistograms(series: SeriesValues[], unitLog2 = 0): NativeHistogram[] {
  return series.map((s) => {
    const buckets = new Map<number, number>();
    let count = 0;
    for (const [b, v] of s.buckets ?? []) {
      if (b === BUCKET_SUM) continue;
      count += v;
      if (b < BUCKETS) buckets.set(b + unitLog2, v);
    }
    return {
      labels: s.labels,
      zeroCount: s.buckets?.get(BUCKET_ZERO) ?? 0,
      buckets,
      sum: (s.buckets?.get(BUCKET_SUM) ?? 0) * 2 ** unitLog2,
      count,
    };
  });
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
      const base = { name: metric.name, help: metric.help, type: metric.type, aggregator: 'sum' as const };
      if (metric.type !== 'histogram') return { ...base, values: series.map((s) => ({ labels: s.labels as Record<string, string>, value: s.value })) };
      return {
        ...base,
        values: histogramValues(metric.name, series, topBucket, metric.unitLog2),
        native: nativeHistograms(series, metric.unitLog2),
      };
    },
    reset() {},
  };
  // Duck-typed: the Registry only calls get() (and reset()) on it.
  registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
  return () => registry.removeSingleMetric(metric.name);
}
