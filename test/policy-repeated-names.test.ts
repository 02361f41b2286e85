/**
 * Names one file gives twice (src/policy/repeated-names.ts): a later
 * document repeating a policy name or another document's metric name is in
 * error at that name, and the first keeps running, as the agent would run it.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyText } from '../src/policy';
import { formatProblem } from '../src/policy/problems';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runPolicyCheck } from '../src/cli/policy-check';
import { getpidPolicy } from './helpers/big-policies';

describe('names repeated in one file', () => {
  it('a second policy of the same name is refused at its name', () => {
    const r = loadPolicyText(`${getpidPolicy('same', 1, 'first_total')}---\n${getpidPolicy('same', 1, 'second_total')}`, 'f.yaml');
    assert.deepEqual(r.policies.map((p) => p.state), ['ok', 'error']);
    assert.equal(r.state, 'partial');
    assert.deepEqual(r.problems.map(formatProblem), [
      'f.yaml:17:9: metadata.name: expected a name no other policy of this file has, found "same", the name of the policy at line 1; policies are told apart by name: rename one of them',
    ]);
  });

  it('a metric another document defines is refused at its declaration', () => {
    const r = loadPolicyText(`${getpidPolicy('one', 1, 'shared_total')}---\n${getpidPolicy('two', 2, 'shared_total')}`, 'f.yaml');
    assert.deepEqual(r.policies.map((p) => p.state), ['ok', 'error']);
    assert.deepEqual(r.problems.map(formatProblem), [
      'f.yaml:23:13: spec.kprobes[0].metrics[0].name: expected a metric name no other policy defines, found "shared_total", which policy one defines at line 1; a metric name belongs to one policy: rename it in one of them',
    ]);
  });

  it('a policy in error claims no name', () => {
    const broken = 'apiVersion: tally.dev/v1alpha1\nkind: MetricsPolicy\nmetadata:\n  name: same\nspec:\n  kprobes: 3\n';
    const r = loadPolicyText(`${broken}---\n${getpidPolicy('same', 1, 'shared_total')}`, 'f.yaml');
    assert.deepEqual(r.policies.map((p) => p.state), ['error', 'ok']);
  });
});

describe('metric names across the files of one check', () => {
  it('the first file keeps a name, a later policy defining it is refused at its hook, as the agent keeps it waiting', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-names-'));
    try {
      const a = path.join(dir, 'a.yaml');
      const c = path.join(dir, 'c.yaml');
      fs.writeFileSync(a, getpidPolicy('pa', 1, 'rel_dup_total'));
      fs.writeFileSync(c, `${getpidPolicy('pc', 1, 'rel_dup_total')}---\n${getpidPolicy('pd', 1, 'own_total')}`);
      const lines: string[] = [];
      assert.equal(await runPolicyCheck([dir], (l) => lines.push(l)), 0, 'c is partial: pd loads');
      assert.deepEqual(lines, [
        `${a}: ok (1 policy, 1 hook)`,
        `${c}:7:5: spec.kprobes[0].metrics: expected a metric name no other policy defines, found "rel_dup_total", which policy pa in ${a} defines; a metric name belongs to one policy: rename it in one of them (the agent loads this policy by itself once the name is free)`,
        `${c}: partial (2 policies, 1 hook; 1 error)`,
      ]);
      // Checked alone, or twice over, a file clashes with nothing.
      const alone: string[] = [];
      assert.equal(await runPolicyCheck([c, c], (l) => alone.push(l)), 0);
      assert.deepEqual(alone, [`${c}: ok (2 policies, 2 hooks)`, `${c}: ok (2 policies, 2 hooks)`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
