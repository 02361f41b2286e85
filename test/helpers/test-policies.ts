/** Policies more than one suite loads from a --policy-dir of its own. */

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
