/**
 * `tally policy check [--load] FILE|DIR...`: validates policy files without
 * running the agent. One line per problem (FILE:LINE:COLUMN: PATH: MESSAGE),
 * then one summary line per file with its state.
 *
 * Exit 0 when no file is in error: a partial file loads (minus what its lines
 * say), and warnings change nothing. Exit 1 when any file is in error, or
 * --load cannot be honoured; 2 for a wrong command line.
 *
 * --load also loads each policy into the kernel (and unloads it) through the
 * `load` callback, which the BPF side provides; without one, --load fails
 * with a line saying so rather than pretending to have checked anything.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs/promises';
import { Policy, PolicyFileResult, Problem } from '../policy/model';
import { fileStateOf, loadPolicyDir, loadPolicyFile } from '../policy/load';
import { byPosition, fileProblem, formatProblem } from '../policy/problems';
import { HookBudget } from '../policy/hook-budget';
import { MetricOwnership } from '../policy/repeated-names';

export const POLICY_CHECK_USAGE = 'usage: tally policy check [--load [--verbose]] [--json] FILE|DIR...';

/** Loads one validated policy (state ok or partial) into the kernel and back out; returns what went wrong. */
export type PolicyLoader = (policy: Policy, opts: { verbose: boolean }) => Promise<Problem[]>;

/** How a long --load run says how far it is (each policy takes the kernel 0.1-0.3 s per hook to verify). */
export interface CheckProgress {
  /** Where progress lines go: stderr, so that stdout stays the report (and --json stays JSON). */
  report: (line: string) => void;
  /** At most one line this often, and none for a run shorter than that (default 5 s). */
  everyMs?: number;
}

const PROGRESS_EVERY_MS = 5000;

export async function runPolicyCheck(argv: string[], out: (line: string) => void, load?: PolicyLoader, progress?: CheckProgress): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { load: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    out(`tally policy check: ${(e as Error).message.replace(/\. To specify.*$/s, '')}`);
    out(POLICY_CHECK_USAGE);
    return 2;
  }
  if (values.help) {
    out(POLICY_CHECK_USAGE);
    out('Checks policy files (MetricsPolicy, Tetragon TracingPolicy); a directory checks its *.yaml and *.yml files.');
    out('--load also loads each valid policy into the kernel and unloads it.');
    out('--verbose names, for a hook that cannot attach, every attach type it tried and the kernel\'s answer to each.');
    out('--json prints one JSON object per file instead: {file, state, policies: [{name, state, hooks}], problems: [...]}.');
    return 0;
  }
  if (!positionals.length) {
    out(`tally policy check: no policy file given; ${POLICY_CHECK_USAGE}`);
    return 2;
  }
  let failed = false;
  if (values.load && !load) {
    out('tally policy check: --load is unavailable: this build of tally cannot load policies into the kernel; run without --load to check the files only');
    failed = true;
  }
  for (const arg of positionals) {
    // The files of a directory are checked as one agent loads its --policy-dir: in name order, sharing the
    // hooks-per-agent limit and metric names (the first file keeps a name). Each argument is an agent of its own.
    const budget = new HookBudget();
    const metricNames = new MetricOwnership();
    for (const read of await resultsFor(arg, out)) {
      const [result] = budget.offer(read);
      metricNames.claim(result);
      if (values.load && load) await loadAll(result, load, values.verbose === true, progress);
      if (values.json) out(JSON.stringify(asJson(result)));
      else {
        for (const p of result.problems) out(formatProblem(p));
        out(summary(result));
      }
      if (result.state === 'error') failed = true;
    }
  }
  return failed ? 1 : 0;
}

/** A directory stands for its policy files; anything else is read as a file (and fails as one). */
async function resultsFor(arg: string, out: (line: string) => void): Promise<PolicyFileResult[]> {
  const isDir = await fs.stat(arg).then((s) => s.isDirectory(), () => false);
  if (!isDir) return [await loadPolicyFile(arg)];
  const results = await loadPolicyDir(arg);
  if (!results.length) {
    out(formatProblem(fileProblem(arg, 'policy files (*.yaml, *.yml)', 'none in this directory')));
    return [{ file: arg, state: 'error', problems: [], policies: [] }];
  }
  return results;
}

/** Adds what loading found to each loadable policy, and recomputes the states. */
async function loadAll(result: PolicyFileResult, load: PolicyLoader, verbose: boolean, progress?: CheckProgress): Promise<void> {
  const started = Date.now();
  let reported = started;
  const loadable = result.policies.filter((p) => p.state !== 'error').length;
  let done = 0;
  for (const policy of result.policies) {
    if (policy.state === 'error') continue;
    const now = Date.now();
    if (progress && now - reported >= (progress.everyMs ?? PROGRESS_EVERY_MS)) {
      reported = now;
      progress.report(`tally policy check: ${result.file}: loaded ${done} of ${loadable} policies (${Math.round((now - started) / 1000)} s)`);
    }
    done++;
    let found: Problem[];
    try {
      found = await load(policy, { verbose });
    } catch (e) {
      const at = policy.hooks[0]?.origin;
      found = [{ ...fileProblem(policy.file, 'a policy the kernel accepts', (e as Error).message, at?.line, at?.column), path: at?.path ?? '(document)' }];
    }
    policy.problems = [...policy.problems, ...found].sort(byPosition);
    if (found.some((p) => p.severity === 'error')) {
      policy.state = 'error';
      policy.hooks = [];
    } else if (found.some((p) => p.severity === 'unsupported')) policy.state = 'partial';
  }
  if (!result.policies.length) return;
  result.problems = result.policies.flatMap((p) => p.problems);
  result.state = fileStateOf(result.policies.map((p) => p.state));
}

/** One file's outcome for tools (the kernel matrix's table of Tetragon's examples). */
function asJson(r: PolicyFileResult): object {
  return {
    file: r.file,
    state: r.state,
    policies: r.policies.map((p) => ({ name: p.name, state: p.state, hooks: p.hooks.map((h) => h.name) })),
    problems: r.problems.map((p) => ({ line: p.line, column: p.column, path: p.path, severity: p.severity, message: p.message })),
  };
}

const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "x.yaml: partial (1 policy, 2 hooks; 1 unsupported, 1 warning)". */
function summary(r: PolicyFileResult): string {
  const hooks = r.policies.reduce((n, p) => n + p.hooks.length, 0);
  const bySeverity = (['error', 'unsupported', 'warning'] as const)
    .map((s) => [s, r.problems.filter((p) => p.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => (s === 'unsupported' ? `${n} unsupported` : count(n, s)));
  const tail = bySeverity.length ? `; ${bySeverity.join(', ')}` : '';
  return `${r.file}: ${r.state} (${count(r.policies.length, 'policy', 'policies')}, ${count(hooks, 'hook')}${tail})`;
}
