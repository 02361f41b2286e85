/**
 * The policy directory is live: adding, changing and deleting a file applies
 * within seconds, without a restart, without resetting any other policy's
 * counters; a bad file is reported and harms nothing else; SIGHUP rescans.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, Series } from './helpers/prom-text';
import { waitFor } from './helpers/cleanup';
import { trueExecsPolicy } from './helpers/test-policies';

const BAD = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: broken
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    raw: true
    metricz: []
`;

const stateOf = (s: Series[], policy: string): string | undefined => select(s, 'tally_policy_state', { policy }).find((x) => x.value === 1)?.labels.state;
const value = (s: Series[], name: string, workload: string): number | undefined => select(s, name, { workload })[0]?.value;

describe('the policy directory, live', () => {
  let dir: string;
  let agent: AgentProcess;
  let cg: TestCgroup;
  const file = (): string => path.join(dir, 'reload.yaml');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-reload-'));
    cg = TestCgroup.create('reload');
    agent = await AgentProcess.start(['--policy-dir', dir, '--metrics-label-filter', 'workload']);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const runTrue = (n: number): Promise<void> => cg.run('/bin/sh', ['-c', `for i in $(seq ${n}); do /usr/bin/true; done`]);

  it('adds, changes and deletes a policy without touching the others', async () => {
    fs.writeFileSync(file(), trueExecsPolicy('reload-test', 'reload_true_runs_total'));
    let s = await agent.scrapeUntil((x) => stateOf(x, 'reload-test') === 'ok', 'the added policy', 10000);
    await runTrue(3);
    s = await agent.scrape();
    assert.equal(value(s, 'reload_true_runs_total', cg.name), 3);
    const builtinBefore = value(s, 'tally_process_execs_total', cg.name)!;
    assert.ok(builtinBefore >= 4, 'the built-in process policy counts the same execs');

    // Changed: the old metric goes, the new one counts from here.
    fs.writeFileSync(file(), trueExecsPolicy('reload-test', 'reload_true_execs_total'));
    s = await agent.scrapeUntil((x) => select(x, 'reload_true_runs_total').length === 0 && stateOf(x, 'reload-test') === 'ok', 'the changed policy', 10000);
    await runTrue(2);
    s = await agent.scrape();
    assert.equal(value(s, 'reload_true_execs_total', cg.name), 2);
    assert.ok(value(s, 'tally_process_execs_total', cg.name)! >= builtinBefore + 2, 'the built-in policy was not reset');

    // A bad file next to it: reported, and nothing else is disturbed.
    fs.writeFileSync(path.join(dir, 'bad.yaml'), BAD);
    s = await agent.scrapeUntil((x) => stateOf(x, 'broken') === 'error', 'the bad policy reported', 10000);
    assert.match(agent.stderr, /msg="policy failed" policy=broken .*metricz/);
    await runTrue(1);
    assert.equal(value(await agent.scrape(), 'reload_true_execs_total', cg.name), 3);

    // Deleted: its metric and state go.
    fs.unlinkSync(file());
    s = await agent.scrapeUntil((x) => stateOf(x, 'reload-test') === undefined, 'the deleted policy', 10000);
    assert.deepEqual(select(s, 'reload_true_execs_total'), []);
    assert.ok(value(s, 'tally_process_execs_total', cg.name)! >= builtinBefore + 3);
  });

  it('SIGHUP rescans the directories and changes nothing that did not change', async () => {
    const before = value(await agent.scrape(), 'tally_process_execs_total', cg.name)!;
    const logged = agent.stderr.length;
    agent.child.kill('SIGHUP');
    await waitFor(() => /msg="reloading policies"/.test(agent.stderr.slice(logged)), 'the reload');
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(agent.stderr.slice(logged), /msg="policy (loaded|failed)"/, 'unchanged files are not reloaded');
    assert.equal(value(await agent.scrape(), 'tally_process_execs_total', cg.name), before);
    assert.equal(agent.child.exitCode, null);
  });
});
