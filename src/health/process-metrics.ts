/**
 * prom-client's default metrics about the agent process, minus the three
 * gauges it names with a `_total` suffix (nodejs_active_handles_total, …):
 * promtool rejects a non-counter with that suffix, and the same numbers are
 * exported without it (nodejs_active_handles, …).
 *
 * The event loop's delay is sampled every EVENT_LOOP_SAMPLE_MS, not every
 * 10 ms as prom-client would: its 10 ms timer woke the idle agent 100 times
 * a second, and was most of its CPU when idle (0.9% of a core, 0.3% with
 * this; BENCHMARKS.md, "Agent CPU"). A stall still shows in full: the
 * sample due during it is late by as much.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

const EVENT_LOOP_SAMPLE_MS = 100;
const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const name of MISNAMED) registry.removeSingleMetric(name);
}
