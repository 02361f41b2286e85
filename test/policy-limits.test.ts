/**
 * The limits on policies per file and hooks per agent (src/policy/limits.ts),
 * as `tally policy check` applies them: past either, the file is refused with
 * one line naming the limit, at the document or hook beyond it. Without a
 * kernel: the agent's side is test/policy-limits-agent.test.ts.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LIMITS, loadPolicyText, PolicyFileResult } from '../src/policy';
import { formatProblem } from '../src/policy/problems';
import { HookBudget, hooksOf } from '../src/policy/hook-budget';
import { runPolicyCheck } from '../src/cli/policy-check';
import { documentLine, getpidPolicies, getpidPolicy } from './helpers/big-policies';

const check = async (...args: string[]): Promise<{ code: number; lines: string[] }> => {
  const lines: string[] = [];
  const code = await runPolicyCheck(args, (l) => lines.push(l));
  return { code, lines };
};

describe('policies per file', () => {
  it('takes exactly the limit, and refuses one more at the first document past it', () => {
    assert.equal(LIMITS.policiesPerFile, 100);
    const atLimit = loadPolicyText(getpidPolicies('p', 100, 1), 'at.yaml');
    assert.equal(atLimit.state, 'ok');
    assert.equal(atLimit.policies.length, 100);

    const over = loadPolicyText(getpidPolicies('p', 101, 1), 'over.yaml');
    assert.equal(over.state, 'error');
    assert.deepEqual(over.policies, []);
    assert.deepEqual(over.problems.map(formatProblem), [
      `over.yaml:${documentLine(101, 1)}:1: (file): expected at most 100 policy documents in one file (tally's limit policiesPerFile), found 101; document 101 starts here; split the policies over several files`,
    ]);
  });
});

describe('hooks per agent', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-limits-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };

  it('refuses a file that is past the limit by itself, at its first hook beyond it', async () => {
    assert.equal(LIMITS.hooksPerAgent, 256);
    const f = write('alone.yaml', getpidPolicies('alone', 5, 64)); // 320 hooks, 64 per policy
    const { code, lines } = await check(f);
    assert.equal(code, 1);
    // Hook 257 is the first hook of document 5, on the line after its 6 header lines.
    assert.deepEqual(lines, [
      `${f}:${documentLine(5, 64) + 6}:5: (file): expected at most 256 hooks in all the policies one agent runs (tally's limit hooksPerAgent), found 320 in this file; no agent can run it whole: split it, and give the parts to agents of their own`,
      `${f}: error (0 policies, 0 hooks; 1 error)`,
    ]);
  });

  it('counts the files of a directory together, in order, as the agent counts its --policy-dir', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'dir-'));
    const a = path.join(sub, 'a.yaml');
    const b = path.join(sub, 'b.yaml');
    const c = path.join(sub, 'c.yaml');
    fs.writeFileSync(a, getpidPolicies('a', 4, 63)); // 252
    fs.writeFileSync(b, getpidPolicies('b', 1, 5)); // 257 with a: refused at its 5th hook
    fs.writeFileSync(c, getpidPolicies('c', 1, 4)); // 256 with a: fits exactly
    const { code, lines } = await check(sub);
    assert.equal(code, 1);
    assert.deepEqual(lines, [
      `${a}: ok (4 policies, 252 hooks)`,
      `${b}:31:5: (file): expected at most 256 hooks in all the policies one agent runs (tally's limit hooksPerAgent), found 257: this file's 5 on top of 252 in the files loaded before it; remove policies from other files or hooks from this one; it loads by itself once there is room`,
      `${b}: error (0 policies, 0 hooks; 1 error)`,
      `${c}: ok (1 policy, 4 hooks)`,
    ]);
  });
});

describe('HookBudget', () => {
  const file = (name: string, hooks: number): PolicyFileResult => loadPolicyText(getpidPolicy(name, hooks), `${name}.yaml`);

  it('lets a refused file in once hooks are freed, by removal or by a smaller replacement, in name order', () => {
    const budget = new HookBudget(10);
    const states = (rs: ReturnType<HookBudget['offer']>): string[] => rs.map((r) => `${r.file}:${r.state}`);
    assert.deepEqual(states(budget.offer(file('a', 6))), ['a.yaml:ok']);
    assert.deepEqual(states(budget.offer(file('c', 5))), ['c.yaml:error']);
    assert.deepEqual(states(budget.offer(file('b', 4))), ['b.yaml:ok']);
    assert.equal(budget.used, 10);
    assert.deepEqual(states(budget.offer(file('d', 1))), ['d.yaml:error']);
    // a shrinks from 6 to 2: 6 used; c (5) would make 11, d (1) makes 7.
    assert.deepEqual(states(budget.offer(file('a', 2))), ['a.yaml:ok', 'd.yaml:ok']);
    assert.equal(budget.used, 7);
    // b goes: 3 used, c (5) fits.
    assert.deepEqual(states(budget.remove('b.yaml')), ['c.yaml:ok']);
    assert.equal(budget.used, 8);
    // Removing a refused or unknown file frees nothing.
    assert.deepEqual(budget.remove('zzz.yaml'), []);
    assert.equal(budget.used, 8);
  });

  it('holds nothing for a file in error, and counts only the valid policies of a partial one', () => {
    const budget = new HookBudget(10);
    const broken = loadPolicyText('apiVersion: tally.dev/v1alpha1\nkind: MetricsPolicy\n', 'broken.yaml');
    assert.equal(hooksOf(broken), 0);
    assert.deepEqual(budget.offer(broken).map((r) => r.state), ['error']);
    const mixed = loadPolicyText(`${getpidPolicies('ok', 1, 3)}---\napiVersion: tally.dev/v1alpha1\nkind: MetricsPolicy\n`, 'mixed.yaml');
    assert.equal(mixed.state, 'partial');
    assert.equal(hooksOf(mixed), 3);
    budget.offer(mixed);
    assert.equal(budget.used, 3);
  });
});
