/**
 * Restart persistence's other ends (docs/restart.md), with real BPF: pins
 * of another layout are replaced, reported and never misread; without the
 * flag, and after `tally state clear`, nothing stays pinned.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AgentProcess, awaitUnloaded, MAIN } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { ISOLATED, restartState, usePinDir } from './helpers/pin-dir';
import { PinDir } from '../src/persist/pin-dir';

const SENT = 'tally_tcp_sent_bytes_total';

describe('restart persistence: incompatible pins and cleanup', () => {
  const cgs: TestCgroup[] = [];
  const agents: AgentProcess[] = [];
  after(async () => {
    for (const a of agents) await a.stop();
    for (const c of cgs) c.destroy();
  });

  it('replaces pins of another layout, reports it, and counts from zero', async (tc) => {
    const dir = usePinDir(tc);
    const sender = TestCgroup.create('sender');
    const receiver = TestCgroup.create('receiver');
    cgs.push(sender, receiver);
    const flags = ['--bpf-pin-dir', dir, ...ISOLATED];
    const a = await AgentProcess.start(flags);
    agents.push(a);
    await transfer(sender, receiver, 50_000);
    const aPrograms = a.programIds();
    await a.stop();
    // An agent of another layout wrote this state.
    const pins = new PinDir(dir);
    const found = pins.read();
    assert.equal(found.kind, 'state');
    if (found.kind === 'state') pins.writeState({ ...found.state, layout: '0123456789abcdef' });

    const b = await AgentProcess.start(flags);
    agents.push(b);
    assert.deepEqual(restartState(await b.scrape()), { replaced: 1 });
    assert.match(b.stderr, /cannot be read by this one: replaced.*layout 0123456789abcdef/);
    assert.deepEqual(await awaitUnloaded(aPrograms), [], "the previous agent's programs are detached");
    assert.ok(!fs.existsSync(dir), 'its pins are removed');
    const t = await transfer(sender, receiver, 77_777);
    assert.equal(sum(select(await b.scrape(), SENT, { workload: sender.name })), t.sent, 'counted from zero: the old counts are not misread into it');
  });

  it('without the flag, and after `tally state clear`, nothing stays pinned', async (tc) => {
    const sender = TestCgroup.create('sender');
    const receiver = TestCgroup.create('receiver');
    cgs.push(sender, receiver);
    const dir = usePinDir(tc);
    const bpffsBefore = fs.readdirSync(path.dirname(dir));
    const a = await AgentProcess.start([...ISOLATED]);
    agents.push(a);
    assert.deepEqual(restartState(await a.scrape()), { off: 1 });
    await transfer(sender, receiver, 10_000);
    const aPrograms = a.programIds();
    await a.stop();
    assert.deepEqual(await awaitUnloaded(aPrograms), []);
    assert.deepEqual(fs.readdirSync(path.dirname(dir)), bpffsBefore, 'nothing pinned');
    const b = await AgentProcess.start(['--bpf-pin-dir', dir, ...ISOLATED]);
    agents.push(b);
    await transfer(sender, receiver, 10_000);
    const bPrograms = b.programIds();
    await b.stop();
    assert.ok(fs.existsSync(path.join(dir, 'state')));
    const out = execFileSync(process.execPath, [MAIN, 'state', 'clear', '--bpf-pin-dir', dir], { encoding: 'utf8' });
    assert.match(out, /removed \d+ pins \(\d+ links, their programs detached\) and the directory/);
    assert.ok(!fs.existsSync(dir));
    assert.deepEqual(await awaitUnloaded(bPrograms), [], 'the pinned programs are gone');
  });
});
