/** docs/policies.md states the limits, arg types and operators the code has. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LIMITS } from '../src/policy/limits';
import { ARG_TYPES } from '../src/policy/args';
import { ARG_OPERATORS } from '../src/policy/match-args';
import { RESERVED_LABELS } from '../src/policy/labels';
import { loadPolicyText, formatProblem } from '../src/policy';
import { PROJECT_ROOT } from '../src/util/paths';

const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'policies.md'), 'utf8');

describe('docs/policies.md', () => {
  it('has the limits table of src/policy/limits.ts', () => {
    const rows = Object.fromEntries([...doc.matchAll(/^\| `(\w+)` \| (\d+) \|/gm)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual(rows, LIMITS);
  });

  it('its whole policies are valid', () => {
    const policies = [...doc.matchAll(/```yaml\n(apiVersion:[^`]*)```/g)].map((m) => m[1]);
    assert.ok(policies.length > 0);
    for (const text of policies) {
      const r = loadPolicyText(text, 'docs/policies.md');
      assert.deepEqual(r.problems.map(formatProblem), []);
      assert.equal(r.state, 'ok');
    }
  });

  it('names every arg type, operator and reserved label', () => {
    for (const word of [...ARG_TYPES, ...ARG_OPERATORS, ...RESERVED_LABELS]) assert.ok(doc.includes(`\`${word}\``), word);
  });
});
