/**
 * The agent validates a policy file a document at a time, yielding to the
 * event loop between documents (loadPolicyBytesYielding, issue 20 §2): a
 * file of 100 policies took 30-140 ms in one piece, during which no scrape
 * was answered. Its result is the same as the checker's (loadPolicyText).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyBytesYielding, loadPolicyText } from '../src/policy/load';
import { policyDocument } from './helpers/test-policies';

const DOCS = 100;

function file(): string {
  const docs: string[] = [];
  for (let i = 0; i < DOCS; i++) {
    const hook = ['  - subsystem: sched', '    event: sched_process_exec', '    raw: true', '    metrics:', `    - name: yield_${i}_total`, '      help: Execs.', '      type: counter'];
    // One bad document among them: its problem is reported alike both ways.
    if (i === 42) hook.push('      unit: parsecs');
    docs.push(policyDocument(`yield-${i}`, 'tracepoints', hook));
  }
  return docs.join('---\n');
}

describe('validating a policy file for the agent', () => {
  it('lets the event loop run between documents, and gives the checker\'s result', async () => {
    const text = file();
    let ticks = 0;
    let done = false;
    const tick = (): void => {
      ticks++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const result = await loadPolicyBytesYielding(Buffer.from(text), '/policies/yield.yaml');
    done = true;
    assert.ok(ticks >= DOCS - 1, `the event loop ran ${ticks} times while ${DOCS} documents were validated`);
    assert.deepEqual(result, loadPolicyText(text, '/policies/yield.yaml'));
    assert.equal(result.policies.length, DOCS);
    assert.deepEqual(result.policies.filter((p) => p.state === 'error').map((p) => p.name), ['yield-42']);
  });

  it('refuses invalid UTF-8 as the checker does', async () => {
    const bytes = Buffer.concat([Buffer.from('apiVersion: tally.dev/v1alpha1\nkind: '), Buffer.from([0xff]), Buffer.from('\n')]);
    const r = await loadPolicyBytesYielding(bytes, '/policies/bad.yaml');
    assert.equal(r.state, 'error');
    assert.match(r.problems[0].message ?? JSON.stringify(r.problems[0]), /0xFF/);
  });
});
