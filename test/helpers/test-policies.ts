/** Policies more than one suite loads from a --policy-dir of its own. */

/**
 * A MetricsPolicy document named `name` whose spec holds `section` with the
 * hook lines given (indented as list entries under it): 6 header lines, then
 * the hooks, then a newline.
 */
export function policyDocument(name: string, section: 'kprobes' | 'tracepoints' | 'uprobes', hookLines: string[]): string {
  return ['apiVersion: tally.dev/v1alpha1', 'kind: MetricsPolicy', 'metadata:', `  name: ${name}`, 'spec:', `  ${section}:`, ...hookLines].join('\n') + '\n';
}

/** A latency histogram of clock_nanosleep, named `metric`, in a policy named `name`. */
export function sleepLatencyPolicy(name: string, metric: string): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: ${name}
spec:
  kprobes:
  - call: sys_clock_nanosleep
    syscall: true
    return: true
    metrics:
    - name: ${metric}
      help: Time spent in clock_nanosleep.
      unit: seconds
      type: histogram
      value: latency
`;
}

/** Runs of /usr/bin/true (exec, matchBinaries In), counted as `metric`, in a policy named `name`. */
export function trueExecsPolicy(name: string, metric: string): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: ${name}
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    raw: true
    selectors:
    - matchBinaries:
      - {operator: In, values: ["/usr/bin/true"]}
    metrics:
    - name: ${metric}
      help: Runs of /usr/bin/true.
      type: counter
`;
}

/** Raw scheduler tracepoints every kernel of the matrix has, with BTF. */
export const SCHED_EVENTS = ['sched_process_exec', 'sched_process_fork', 'sched_process_free', 'task_newtask'];

/**
 * A policy named `name` of `hooks` counting hooks, spread over `events` (raw
 * sched tracepoints) in turn, each with its own metric `<name>_<i>_total`:
 * as many programs to load as hooks, few enough on each tracepoint.
 */
export function manyHookPolicy(name: string, hooks: number, events = SCHED_EVENTS): string {
  const lines: string[] = [];
  for (let i = 0; i < hooks; i++) {
    lines.push(
      '  - subsystem: sched',
      `    event: ${events[i % events.length]}`,
      '    raw: true',
      '    metrics:',
      `    - name: ${name.replace(/-/g, '_')}_${i}_total`,
      `      help: Events of hook ${i}.`,
      '      type: counter',
    );
  }
  return policyDocument(name, 'tracepoints', lines);
}
