/**
 * Live cardinality accounting (issue 18 §3): per metric, what its series
 * limit holds, how it rolls up, what the kernel keeps for it, how fast its
 * series come and go, and which label values own most of its series. Made
 * from one read of the counters, the one a scrape at the same moment shows
 * (GET /debug/cardinality, `tally cardinality`).
 */
import { Family } from './metric-families';
import { OVERFLOW_LABEL } from './rollup-plan';
import { SeriesValues } from './series-values';

export interface LabelValueCount {
  value: string;
  series: number;
}

export interface MetricCardinality {
  metric: string;
  /** Label sets with a series of their own. */
  series: number;
  limit: number;
  /** The most own series the limit allows, the roll-up reserve kept back. */
  ownLimit: number;
  /** Per level, finest first, then "flat": rolled-up series and the label sets folded into them. */
  rolledUp: Array<{ level: string; series: number; labelSets: number }>;
  /** Entries of the kernel's counter map counting for the metric. */
  kernelEntries: number;
  churn: { createdPerMinute: number; retiredPerMinute: number; createdTotal: number; retiredTotal: number };
  /** Per label, its values with the most series, most first. */
  topValues: Record<string, LabelValueCount[]>;
}

/** Per label (overflow aside): how many of these series carry each value. */
export function seriesPerValue(series: readonly SeriesValues[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const s of series) {
    for (const [label, value] of Object.entries(s.labels)) {
      if (label === OVERFLOW_LABEL) continue;
      let values = out.get(label);
      if (!values) out.set(label, (values = new Map()));
      values.set(value, (values.get(value) ?? 0) + 1);
    }
  }
  return out;
}

/** The label with the most distinct values among these series: what a metric near its limit should drop first. */
export function widestLabel(series: readonly SeriesValues[]): { label: string; values: number } | undefined {
  let widest: { label: string; values: number } | undefined;
  for (const [label, values] of seriesPerValue(series)) if (!widest || values.size > widest.values) widest = { label, values: values.size };
  return widest;
}

export function metricCardinality(f: Family, series: readonly SeriesValues[], kernelEntries: number, top: number, now: number): MetricCardinality {
  const l = f.limiter;
  const minute = l.churn.lastMinute(now);
  const topValues: Record<string, LabelValueCount[]> = {};
  for (const [label, values] of seriesPerValue(series)) {
    topValues[label] = [...values]
      .map(([value, n]) => ({ value, series: n }))
      .sort((a, b) => b.series - a.series || (a.value < b.value ? -1 : 1))
      .slice(0, top);
  }
  return {
    metric: f.name,
    series: l.series,
    limit: l.limit,
    ownLimit: l.plan.ownLimit(l.limit),
    rolledUp: l.levels(),
    kernelEntries,
    churn: { createdPerMinute: minute.created, retiredPerMinute: minute.retired, createdTotal: l.churn.createdTotal, retiredTotal: l.churn.retiredTotal },
    topValues,
  };
}

/**
 * Logs once per metric when its series (own and rolled up) first reach 80%
 * of its limit, naming the label with the most values: the one to drop
 * from the filter, or to expect rolled up.
 */
export class LimitWarnings {
  private readonly warned = new Set<string>();

  constructor(private readonly warn: (msg: string, fields: Record<string, unknown>) => void) {}

  check(f: Family, series: readonly SeriesValues[]): void {
    const used = f.limiter.series + f.limiter.rolledUpSeries;
    if (used < 0.8 * f.limiter.limit || this.warned.has(f.name)) return;
    this.warned.add(f.name);
    const widest = widestLabel(series);
    this.warn('a metric reached 80% of its series limit', { metric: f.name, series: used, limit: f.limiter.limit, widest_label: widest?.label ?? 'none', values: widest?.values ?? 0 });
  }
}
