/**
 * GET /debug/cardinality: every kernel metric's cardinality
 * (cardinality/cardinality-report.ts) from a fresh read, the same a scrape
 * would show at that moment.
 */
import { metricCardinality, MetricCardinality } from '../cardinality/cardinality-report';
import type { KernelCounters } from './kernel-counters';

export interface CardinalityDebug {
  /** When the read was made (ms since the epoch). */
  at: number;
  metrics: MetricCardinality[];
}

export const DEFAULT_TOP = 5;
export const MAX_TOP = 1000;

export async function cardinalityDebug(counters: KernelCounters, top = DEFAULT_TOP): Promise<CardinalityDebug> {
  counters.invalidate();
  const snap = await counters.snapshot();
  const at = Date.now();
  const metrics = counters.core.families
    .all()
    // A counter read from a histogram's sum has no entries of its own: it shows the histogram's.
    .map((f) => metricCardinality(f, snap.series.get(f.name) ?? [], snap.kernelEntries.get((counters.core.families.sumSource(f) ?? f).name) ?? 0, top, at))
    .sort((a, b) => (a.metric < b.metric ? -1 : 1));
  return { at, metrics };
}
