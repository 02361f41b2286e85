/**
 * The limits on policies per file and hooks per agent in the running agent:
 * a file past either is refused whole, with the line `tally policy check`
 * prints for it, and reported in tally_policy_state; what runs already keeps
 * its programs and keeps counting exactly.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, Series, sum } from './helpers/prom-text';
import { trueExecsPolicy } from './helpers/test-policies';
import { getpidPolicies } from './helpers/big-policies';
import { runPolicyCheck } from '../src/cli/policy-check';

const RUNS = 'keep_true_runs_total';

/** The reason of the agent's "policy failed" line for `file`, as logged (JSON-quoted). */
function failureReason(stderr: string, file: string): string | undefined {
  const line = stderr.split('\n').find((l) => l.includes('msg="policy failed"') && l.includes(` file=${file} `));
  const m = line && / reason=("(?:[^"\\]|\\.)*")$/.exec(line);
  return m ? (JSON.parse(m[1]) as string) : undefined;
}

const stateOf = (s: Series[], file: string): string | undefined => select(s, 'tally_policy_state', { file }).find((x) => x.value === 1)?.labels.state;

describe('policy limits in the agent', () => {
  let dir: string;
  let agent: AgentProcess;
  let cg: TestCgroup;
  const runTrue = (n: number): Promise<void> => cg.run('/bin/sh', ['-c', `for i in $(seq ${n}); do /usr/bin/true; done`]);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-limits-agent-'));
    fs.writeFileSync(path.join(dir, 'a-keep.yaml'), trueExecsPolicy('keep', RUNS));
    cg = TestCgroup.create('limits');
    agent = await AgentProcess.start(['--policy-dir', dir, '--builtin-policies', 'none', '--metrics-label-filter', 'workload']);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file past policiesPerFile or hooksPerAgent whole, as policy check does, and disturbs nothing running', async () => {
    await runTrue(5);
    let s = await agent.scrapeUntil((x) => sum(select(x, RUNS, { workload: cg.name })) === 5, 'the first runs');
    const programs = agent.programIds().sort();

    // 256 hooks: within the limit alone, one too many with a-keep's hook.
    const overHooks = path.join(dir, 'b-over-hooks.yaml');
    const overDocs = path.join(dir, 'c-over-docs.yaml');
    fs.writeFileSync(overHooks, getpidPolicies('over', 4, 64));
    fs.writeFileSync(overDocs, getpidPolicies('docs', 101, 1));
    s = await agent.scrapeUntil((x) => stateOf(x, overHooks) === 'error' && stateOf(x, overDocs) === 'error', 'both files refused', 20000);
    assert.equal(stateOf(s, path.join(dir, 'a-keep.yaml')), 'ok');

    // The agent's reasons are the checker's lines for the same directory.
    const lines: string[] = [];
    assert.equal(await runPolicyCheck([dir], (l) => lines.push(l)), 1);
    const checked = (file: string): string => lines.find((l) => l.startsWith(`${file}:`) && / \(file\): /.test(l))!;
    assert.match(checked(overHooks), /: \(file\): expected at most 256 hooks in all the policies one agent runs \(tally's limit hooksPerAgent\), found 257: this file's 256 on top of 1 in the files loaded before it; /);
    assert.match(checked(overDocs), /: \(file\): expected at most 100 policy documents in one file \(tally's limit policiesPerFile\), found 101; /);
    assert.equal(failureReason(agent.stderr, overHooks), checked(overHooks));
    assert.equal(failureReason(agent.stderr, overDocs), checked(overDocs));

    // Nothing of the refused files was loaded, and the running policy kept its programs and its count.
    assert.deepEqual(agent.programIds().sort(), programs);
    await runTrue(7);
    s = await agent.scrapeUntil((x) => sum(select(x, RUNS, { workload: cg.name })) >= 12, 'the later runs');
    assert.equal(sum(select(s, RUNS, { workload: cg.name })), 12);
  });
});
