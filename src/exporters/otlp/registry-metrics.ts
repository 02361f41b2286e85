/**
 * The agent's own metrics (health, process) from the prom-client registry
 * as OTLP metric data: counters become cumulative monotonic sums, gauges
 * gauges, classic histograms explicit-bucket histograms. Metrics the kernel
 * counts are left to kernel-metrics.ts, which reads them without the
 * Prometheus shaping. Summaries (none is registered) would be skipped.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';
import { otlpName } from './names';
import type { RegistryItem, RegistryValue } from '../exposition/model';

/** What the registry's metrics offer besides the typed interface: get() reads the values. */
interface Gettable {
  name: string;
  get(): Promise<RegistryItem> | RegistryItem;
}

export async function registryMetrics(registry: Registry, skip: ReadonlySet<string>, start: HrTime, now: HrTime): Promise<MetricData[]> {
  const out: MetricData[] = [];
  for (const m of registry.getMetricsAsArray() as unknown as Gettable[]) {
    if (skip.has(m.name)) continue;
    const item = await m.get();
    const values = item.values ?? [];
    if (values.length === 0) continue;
    if (item.type === 'counter' || item.type === 'gauge') {
      const { name, unit } = otlpName(item.name, item.type);
      const descriptor = { name, description: item.help, unit, valueType: ValueType.DOUBLE };
      const dataPoints = values.map((v) => ({ startTime: start, endTime: now, attributes: (v.labels ?? {}) as Attributes, value: v.value }));
      out.push(
        item.type === 'counter'
          ? { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints }
          : { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints },
      );
    } else if (item.type === 'histogram') {
      const { name, unit } = otlpName(item.name, 'histogram');
      out.push({
        descriptor: { name, description: item.help, unit, valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: explicitHistograms(item.name, values, start, now),
      });
    }
  }
  return out;
}

/** Prometheus' cumulative _bucket{le}, _sum and _count samples, per label set, as OTLP histograms. */
export function explicitHistograms(name: string, values: readonly RegistryValue[], start: HrTime, now: HrTime): DataPoint<Histogram>[] {
  const groups = new Map<string, { labels: Attributes; le: Array<[number, number]>; sum: number; count: number }>();
  for (const v of values) {
    const { le, ...labels } = v.labels ?? {};
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { labels: labels as Attributes, le: [], sum: 0, count: 0 }));
    if (v.metricName === `${name}_bucket`) g.le.push([le === '+Inf' ? Infinity : Number(le), v.value]);
    else if (v.metricName === `${name}_sum`) g.sum = v.value;
    else if (v.metricName === `${name}_count`) g.count = v.value;
  }
  return [...groups.values()].map((g) => {
    const sorted = g.le.sort((a, b) => a[0] - b[0]);
    const boundaries = sorted.filter(([bound]) => bound !== Infinity).map(([bound]) => bound);
    // OTLP counts are per bucket; the last one is above every boundary.
    const counts: number[] = [];
    let below = 0;
    for (const [, cumulative] of sorted.filter(([bound]) => bound !== Infinity)) {
      counts.push(cumulative - below);
      below = cumulative;
    }
    counts.push(g.count - below);
    return { startTime: start, endTime: now, attributes: g.labels, value: { buckets: { boundaries, counts }, sum: g.sum, count: g.count } };
  });
}
