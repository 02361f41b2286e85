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
