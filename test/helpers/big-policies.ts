/**
 * Policy files generated at a given size, to reach tally's limits on policies
 * per file and hooks per agent (src/policy/limits.ts) exactly.
 */
import { policyDocument } from './test-policies';

/** One MetricsPolicy document named `name` with `hooks` kprobes on getpid, all feeding `metric`. */
export function getpidPolicy(name: string, hooks: number, metric = `${name.replace(/-/g, '_')}_calls_total`): string {
  const hook = ['  - call: sys_getpid', '    syscall: true', '    metrics:', `    - name: ${metric}`, '      help: Calls of getpid.', '      type: counter'];
  return policyDocument(name, 'kprobes', Array.from({ length: hooks }, () => hook).flat());
}

/** A file of `policies` documents (named `${prefix}-1`, …), each with `hooksEach` hooks. */
export function getpidPolicies(prefix: string, policies: number, hooksEach: number): string {
  return Array.from({ length: policies }, (_, i) => getpidPolicy(`${prefix}-${i + 1}`, hooksEach)).join('---\n');
}

/** 1-based line where document `n` (1-based) of getpidPolicies(…, hooksEach) starts: each hook is 6 lines, each header 6, each separator 1. */
export function documentLine(n: number, hooksEach: number): number {
  return (n - 1) * (6 + 6 * hooksEach + 1) + 1;
}
