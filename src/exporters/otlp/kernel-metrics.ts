/**
 * The kernel's counters and histograms as OTLP metric data, from the same
 * read and the same series limits as /metrics (KernelCounters.collect()):
 * counters become cumulative monotonic sums, histograms exponential
 * histograms at scale 0 (see exponential.ts). Nothing is recorded into SDK
 * instruments: the kernel already keeps the cumulative values.
 */
import { ValueType, type HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import type { CollectedFamily } from '../../collectors/kernel-counters';
import { labelKey } from '../../cardinality/series-limiter';
import { seriesAttributes, type WorkloadKindOf } from './attributes';
import { exponentialHistogram } from './exponential';
import { otlpName } from './names';
import type { SeriesMemory } from './series-memory';

export function kernelMetrics(families: readonly CollectedFamily[], memory: SeriesMemory, now: HrTime, kindOf?: WorkloadKindOf, attributeOf?: Readonly<Record<string, string>>): MetricData[] {
  const out: MetricData[] = [];
  for (const { metric, series } of families) {
    if (series.length === 0) continue;
    const { name, unit } = otlpName(metric.name, metric.type);
    const entry = (s: (typeof series)[number]) => memory.entry(name, s.key ?? labelKey(s.labels), () => seriesAttributes(s.labels, kindOf, attributeOf));
    const base = { aggregationTemporality: AggregationTemporality.CUMULATIVE } as const;
    if (metric.type === 'histogram') {
      out.push({
        ...base,
        descriptor: { name, description: metric.help, unit, valueType: ValueType.DOUBLE },
        dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM,
        dataPoints: series.map((s) => {
          const e = entry(s);
          return { startTime: e.start, endTime: now, attributes: e.attributes, value: exponentialHistogram(s.buckets ?? new Map(), metric.unitLog2) };
        }),
      });
    } else {
      out.push({
        ...base,
        descriptor: { name, description: metric.help, unit, valueType: ValueType.INT },
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: series.map((s) => {
          const e = entry(s);
          return { startTime: e.start, endTime: now, attributes: e.attributes, value: s.value };
        }),
      });
    }
  }
  return out;
}
