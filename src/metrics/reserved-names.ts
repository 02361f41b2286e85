/**
 * Metric names a policy may not use because tally's own registry does: its
 * catalogued metrics (catalog.ts, whether or not this run exposes the
 * optional ones) and prom-client's process metrics (health/process-metrics.ts).
 *
 * The policy validator refuses them (policy/metrics.ts), so `tally policy
 * check` and the agent refuse the same names with the same message at the
 * same position. Were they only refused when registering, the agent would
 * find out after loading the policy's programs, with prom-client's message
 * and no file or position.
 *
 * The list of process metrics is written out rather than read from
 * prom-client at run time: asking prom-client means starting its collectors
 * (an event-loop monitor, a GC observer) in a checker that needs none.
 * test/reserved-names.test.ts checks it against what registerProcessMetrics
 * registers, so an upgrade of prom-client cannot leave a name out.
 */
import { CATALOG } from './catalog';

/** Registered by registerProcessMetrics on Linux (prom-client 15). */
export const PROCESS_METRIC_NAMES: readonly string[] = [
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources',
  'nodejs_active_handles',
  'nodejs_active_requests',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes',
  'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes',
  'nodejs_version_info',
  'nodejs_gc_duration_seconds',
];

/**
 * A name's family: what OpenMetrics calls it, a counter without its _total.
 * Two metrics of one family clash in an OpenMetrics scrape even when their
 * names differ (a histogram x and a counter x_total).
 */
export function metricFamily(name: string): string {
  return name.replace(/_total$/, '');
}

/** Family -> [the reserved name, whose it is]. */
const RESERVED = new Map<string, [string, string]>([
  ...CATALOG.map((m): [string, [string, string]] => [metricFamily(m.name), [m.name, "one of tally's own metrics (docs/metrics.md)"]]),
  ...PROCESS_METRIC_NAMES.map((n): [string, [string, string]] => [metricFamily(n), [n, 'one of the Node.js process metrics tally exports (docs/metrics.md)']]),
]);

/**
 * Why `name` is not a policy's to use: "tally_scrapes_total is one of
 * tally's own metrics (docs/metrics.md)"; undefined when it is free.
 */
export function reservedMetricName(name: string): string | undefined {
  const hit = RESERVED.get(metricFamily(name));
  if (!hit) return undefined;
  const [reserved, whose] = hit;
  return reserved === name ? `${name} is ${whose}` : `${reserved}, with the same base name, is ${whose}`;
}
