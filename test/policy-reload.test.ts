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
import { runPolicyCheck } from '../src/cli/policy-check';

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

/** The policy-failed line the agent logged for `policy`, as logged (reason JSON-quoted), from `since` on. */
const failedLine = (stderr: string, policy: string): string | undefined =>
  stderr.split('\n').find((l) => l.includes(`msg="policy failed" policy=${policy} `));
const reasonOf = (line: string | undefined): string | undefined => {
  const m = line && / reason=("(?:[^"\\]|\\.)*")$/.exec(line);
  return m ? (JSON.parse(m[1]) as string) : undefined;
};

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
  it('a policy refused for a metric name another held loads once that policy is removed, or changed to another name', async () => {
    const a = path.join(dir, 'dup-a.yaml');
    const c = path.join(dir, 'dup-c.yaml');
    try {
      fs.writeFileSync(a, trueExecsPolicy('dup-a', 'rel_dup_total'));
      await agent.scrapeUntil((x) => stateOf(x, 'dup-a') === 'ok', 'dup-a loaded', 10000);
      let logged = agent.stderr.length;
      fs.writeFileSync(c, trueExecsPolicy('dup-c', 'rel_dup_total'));
      await agent.scrapeUntil((x) => stateOf(x, 'dup-c') === 'error', 'dup-c refused', 10000);
      assert.equal(reasonOf(failedLine(agent.stderr.slice(logged), 'dup-c')),
        `metric rel_dup_total is already defined by policy dup-a in ${a}; a metric name belongs to one policy: rename it in one of them (this policy loads by itself once the name is free)`);

      // The holder goes: the refused policy loads without its file being touched, and counts.
      fs.unlinkSync(a);
      let s = await agent.scrapeUntil((x) => stateOf(x, 'dup-c') === 'ok', 'dup-c healed after dup-a was removed', 10000);
      assert.equal(stateOf(s, 'dup-a'), undefined);
      await runTrue(2);
      assert.equal(value(await agent.scrape(), 'rel_dup_total', cg.name), 2);

      // Now dup-a comes back and is the one refused; changing dup-c to another name lets it in.
      logged = agent.stderr.length;
      fs.writeFileSync(a, trueExecsPolicy('dup-a', 'rel_dup_total'));
      await agent.scrapeUntil((x) => stateOf(x, 'dup-a') === 'error', 'dup-a refused', 10000);
      assert.match(reasonOf(failedLine(agent.stderr.slice(logged), 'dup-a')) ?? '', /^metric rel_dup_total is already defined by policy dup-c in /);
      fs.writeFileSync(c, trueExecsPolicy('dup-c', 'rel_dup_other_total'));
      s = await agent.scrapeUntil((x) => stateOf(x, 'dup-a') === 'ok' && stateOf(x, 'dup-c') === 'ok', 'dup-a healed after dup-c was changed', 10000);
      await runTrue(1);
      s = await agent.scrape();
      assert.equal(value(s, 'rel_dup_total', cg.name), 1, 'dup-a counts from when it loaded');
      assert.equal(value(s, 'rel_dup_other_total', cg.name), 1);
    } finally {
      fs.rmSync(a, { force: true });
      fs.rmSync(c, { force: true });
    }
  });

  it('refuses a metric name of its own registry as tally policy check does: same line, and tally_policy_state error', async () => {
    const file = path.join(dir, 'reserved.yaml');
    const logged = agent.stderr.length;
    try {
      fs.writeFileSync(file, trueExecsPolicy('reserved', 'tally_scrapes_total'));
      const s = await agent.scrapeUntil((x) => stateOf(x, 'reserved') === 'error', 'the reserved name refused', 10000);
      const checker: string[] = [];
      assert.equal(await runPolicyCheck([file], (l) => checker.push(l)), 1);
      assert.deepEqual(checker, [
        `${file}:14:13: spec.tracepoints[0].metrics[0].name: expected a name of your own, found "tally_scrapes_total"; tally_scrapes_total is one of tally's own metrics (docs/metrics.md); rename yours, e.g. with your own prefix`,
        `${file}: error (1 policy, 0 hooks; 1 error)`,
      ]);
      assert.equal(reasonOf(failedLine(agent.stderr.slice(logged), 'reserved')), checker[0]);
      assert.doesNotMatch(agent.stderr.slice(logged), /already been registered/);
      // tally's own metric is untouched: still its counter by format.
      assert.ok(select(s, 'tally_scrapes_total', { format: 'prometheus' })[0].value > 0);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
  it('refuses a file that is not UTF-8 at the invalid byte, as tally policy check does', async () => {
    const file = path.join(dir, 'latin1.yaml');
    const logged = agent.stderr.length;
    try {
      // A help text saved as Latin-1: \xe9 is é there, and no UTF-8 at all.
      fs.writeFileSync(file, Buffer.from(trueExecsPolicy('latin1', 'latin1_runs_total').replace('Runs of', 'Runs of caf\xe9'), 'latin1'));
      const checker: string[] = [];
      assert.equal(await runPolicyCheck([file], (l) => checker.push(l)), 1);
      assert.deepEqual(checker, [
        `${file}:15:24: (file): expected UTF-8 text, found the byte 0xE9, which is not valid UTF-8 there; save the file as UTF-8`,
        `${file}: error (0 policies, 0 hooks; 1 error)`,
      ]);
      const s = await agent.scrapeUntil((x) => select(x, 'tally_policy_state', { file, state: 'error' })[0]?.value === 1, 'the file in error', 10000);
      assert.deepEqual(select(s, 'latin1_runs_total'), []);
      const line = agent.stderr.slice(logged).split('\n').find((l) => l.includes('msg="policy failed" policy="(unnamed)" ') && l.includes(` file=${file} `));
      assert.equal(reasonOf(line), checker[0]);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
