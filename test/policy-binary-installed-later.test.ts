/**
 * matchBinaries In a path that does not exist when the policy loads (a
 * program installed later, or a Tetragon example naming /usr/sbin/sshd on a
 * host without it): the hook loads, matching by the path the kernel walks,
 * and counts the binary's execs once it is there, exactly.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AgentProcess } from './helpers/agent-process';
import { select } from './helpers/prom-text';

const METRIC = 'tally_test_later_execs_total';

describe('matchBinaries on a binary installed after the policy loaded', () => {
  let dir: string;
  let bin: string;
  let agent: AgentProcess;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-later-'));
    bin = path.join(dir, 'bin', 'later-true');
    fs.mkdirSync(path.join(dir, 'policies'));
    fs.writeFileSync(path.join(dir, 'policies', 'later.yaml'), `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: later}
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    selectors:
    - matchBinaries:
      - {operator: In, values: [${bin}]}
    metrics:
    - {name: ${METRIC}, help: Execs of a binary installed later., type: counter}
`);
    agent = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', path.join(dir, 'policies')]);
  });

  after(async () => {
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads, and counts each exec of the binary once it exists', async () => {
    const s0 = await agent.scrape();
    assert.deepEqual(select(s0, 'tally_policy_state', { policy: 'later', state: 'ok' }).map((x) => x.value), [1]);
    fs.mkdirSync(path.dirname(bin));
    fs.copyFileSync('/usr/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    for (let i = 0; i < 4; i++) assert.equal(spawnSync(bin).status, 0);
    // Another binary of the same content elsewhere does not count.
    const other = path.join(dir, 'bin', 'other-true');
    fs.copyFileSync('/usr/bin/true', other);
    fs.chmodSync(other, 0o755);
    assert.equal(spawnSync(other).status, 0);
    const s = await agent.scrapeUntil((x) => select(x, METRIC).reduce((a, y) => a + y.value, 0) >= 4, 'the execs', 10000);
    assert.equal(select(s, METRIC).reduce((a, y) => a + y.value, 0), 4);
  });
});
