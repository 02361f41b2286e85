/**
 * prom-client's default metrics about the agent process, minus the three
 * gauges it names with a `_total` suffix (nodejs_active_handles_total, …):
 * promtool rejects a non-counter with that suffix, and the same numbers are
 * exported without it (nodejs_active_handles, …).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED) registry.removeSingleMetric(name);
}
