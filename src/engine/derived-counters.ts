/**
 * Counters the kernel need not count: a counter that adds the same value, in
 * the same hooks, with the same labels, as a histogram's sum. tcp-bytes'
 * tally_tcp_sent_bytes_total is tally_tcp_send_size_bytes' sum, so counting
 * it apart cost every send one more hash lookup for a number the histogram
 * already holds. Such a counter is exposed from the histogram's sum entries
 * instead (KernelCounters, CounterMetric.sumOf), series for series.
 */
import { Hook, Metric, Policy } from '../policy/model';

/** The value and labels that make a counter equal to a histogram's sum. */
function shape(m: Metric): string {
  return JSON.stringify({ value: m.value, labels: m.labels, constLabels: m.constLabels });
}

/**
 * Counter name -> the histogram name whose sum it is, for a policy. Hook by
 * hook (a fallback hook may count another value than the hook it stands in
 * for): every hook counting either counts both, of the same arg or return
 * value with the same labels. Otherwise the sums would differ.
 */
export function derivedCounters(policy: Pick<Policy, 'hooks'>): Map<string, string> {
  const out = new Map<string, string>();
  const all = policy.hooks.flatMap((h) => h.metrics);
  const names = (type: Metric['type']) => [...new Set(all.filter((m) => m.type === type).map((m) => m.name))];
  const sumOfIn = (hook: Hook, counter: string, histogram: string): boolean => {
    const c = hook.metrics.find((m) => m.name === counter);
    const h = hook.metrics.find((m) => m.name === histogram);
    if (!c || !h) return !c && !h;
    // Latencies and counts have no sum to share; an arg or the return value does.
    return (c.value.kind === 'arg' || c.value.kind === 'return') && shape(c) === shape(h);
  };
  for (const counter of names('counter')) {
    const histogram = names('histogram').find((h) => policy.hooks.every((hook) => sumOfIn(hook, counter, h)));
    if (histogram) out.set(counter, histogram);
  }
  return out;
}
