/**
 * Names one file gives twice. Policies are told apart by name (their
 * tally_policy_state series would be one and the same), and a metric name
 * belongs to one policy, so a later document that repeats either is in
 * error, at the repeated name, and the first one keeps it: the same policy
 * the agent would let run, since it loads a file's documents in order.
 */
import { Policy, PolicyFileResult, PolicyState, TETRAGON_EVENTS_METRIC } from './model';
import { byPosition, fileProblem, makeProblem } from './problems';
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

/**
 * Metric names across files, as one agent holds them: the policy loaded
 * first keeps a name, a later one defining it is in error (the agent keeps
 * it waiting, and loads it once the name is free). `tally policy check`
 * claims the files it is given in order, as the agent loads a directory.
 */
export class MetricOwnership {
  private readonly owners = new Map<string, Policy>();

  /** Claims the names of the file's valid policies; a policy whose name another file holds is put in error. */
  claim(result: PolicyFileResult): void {
    this.release(result.file);
    let changed = false;
    for (const policy of result.policies) {
      if (policy.state === 'error') continue;
      const hook = policy.hooks.find((h) => h.metrics.some((m) => m.name !== TETRAGON_EVENTS_METRIC && this.owners.has(m.name)));
      if (hook) {
        const name = hook.metrics.find((m) => m.name !== TETRAGON_EVENTS_METRIC && this.owners.has(m.name))!.name;
        const owner = this.owners.get(name)!;
        const p = fileProblem(policy.file, 'a metric name no other policy defines', `"${name}", which policy ${owner.name} in ${owner.file} defines`, hook.origin.line, hook.origin.column,
          'a metric name belongs to one policy: rename it in one of them (the agent loads this policy by itself once the name is free)');
        refuse(policy, { ...p, path: `${hook.origin.path}.metrics` });
        changed = true;
        continue;
      }
      for (const m of policy.hooks.flatMap((h) => h.metrics)) if (m.name !== TETRAGON_EVENTS_METRIC) this.owners.set(m.name, policy);
    }
    if (!changed) return;
    result.problems = result.policies.flatMap((p) => p.problems);
    const states: PolicyState[] = result.policies.map((p) => p.state);
    result.state = states.every((st) => st === 'ok') ? 'ok' : states.every((st) => st === 'error') ? 'error' : 'partial';
  }

  private release(file: string): void {
    for (const [name, p] of this.owners) if (p.file === file) this.owners.delete(name);
  }
}
