/**
 * Names one file gives twice. Policies are told apart by name (their
 * tally_policy_state series would be one and the same), and a metric name
 * belongs to one policy, so a later document that repeats either is in
 * error, at the repeated name, and the first one keeps it: the same policy
 * the agent would let run, since it loads a file's documents in order.
 */
import { Policy, TETRAGON_EVENTS_METRIC } from './model';
import { byPosition, makeProblem } from './problems';
import { Path, YamlDocument } from './yaml-positions';

export function refuseRepeatedNames(file: string, policies: Policy[], documents: readonly YamlDocument[]): void {
  const policyNames = new Map<string, Policy>();
  const metricOwners = new Map<string, Policy>();
  policies.forEach((policy, i) => {
    if (policy.state === 'error' || policy.name === undefined) return;
    const positions = documents[i].positions;
    const lineOf = (p: Policy): number => documents[p.document].positions.valueAt([]).line;
    const first = policyNames.get(policy.name);
    if (first) {
      refuse(policy, makeProblem(file, positions, {
        severity: 'error',
        path: ['metadata', 'name'],
        expected: 'a name no other policy of this file has',
        found: `"${policy.name}", the name of the policy at line ${lineOf(first)}`,
        hint: 'policies are told apart by name: rename one of them',
      }));
      return;
    }
    const metrics = new Set(policy.hooks.flatMap((h) => h.metrics.map((m) => m.name)).filter((n) => n !== TETRAGON_EVENTS_METRIC));
    const taken = [...metrics].find((n) => metricOwners.has(n));
    if (taken) {
      const owner = metricOwners.get(taken)!;
      refuse(policy, makeProblem(file, positions, {
        severity: 'error',
        path: metricPath(documents[i].value, taken),
        expected: 'a metric name no other policy defines',
        found: `"${taken}", which policy ${owner.name} defines at line ${lineOf(owner)}`,
        hint: 'a metric name belongs to one policy: rename it in one of them',
      }));
      return;
    }
    policyNames.set(policy.name, policy);
    for (const n of metrics) metricOwners.set(n, policy);
  });
}

function refuse(policy: Policy, problem: ReturnType<typeof makeProblem>): void {
  policy.problems = [...policy.problems, problem].sort(byPosition);
  policy.state = 'error';
  policy.hooks = [];
}

/** Where the first metric named `name` is declared: spec.<hooks>[i].metrics[j].name, or the spec when not found. */
function metricPath(doc: unknown, name: string): Path {
  const spec = (doc as { spec?: Record<string, unknown> } | null)?.spec ?? {};
  for (const [kind, hooks] of Object.entries(spec)) {
    if (!Array.isArray(hooks)) continue;
    for (let i = 0; i < hooks.length; i++) {
      const metrics = (hooks[i] as { metrics?: unknown } | null)?.metrics;
      if (!Array.isArray(metrics)) continue;
      const j = metrics.findIndex((m) => (m as { name?: unknown } | null)?.name === name);
      if (j >= 0) return ['spec', kind, i, 'metrics', j, 'name'];
    }
  }
  return ['spec'];
}
