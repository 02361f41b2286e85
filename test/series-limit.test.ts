/**
 * 150 cgroups against a limit of 100: exactly 100 series plus one overflow
 * series, every admitted cgroup exact to the byte, and nothing lost: the sum
 * over all series equals what the kernel counted.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, sum } from './helpers/prom-text';
import { HOPPER, SINK } from './helpers/python-peers';

const SENT = 'tally_tcp_sent_bytes_total';
const CGROUPS = 150;
const LIMIT = 100;

describe(`--metrics-series-limit ${LIMIT} with ${CGROUPS} cgroups`, () => {
  let agent: AgentProcess;
  const cgroups: TestCgroup[] = [];
  let sinkCg: TestCgroup;
  let senderCg: TestCgroup;

  before(async () => {
    agent = await AgentProcess.start(['--metrics-series-limit', String(LIMIT), '--metrics-label-filter', 'workload']);
    for (let i = 0; i < CGROUPS; i++) cgroups.push(TestCgroup.create(`c${i}`));
    sinkCg = TestCgroup.create('sink');
    senderCg = TestCgroup.create('sender');
  });
  after(async () => {
    for (const cg of [...cgroups, sinkCg, senderCg]) cg?.destroy();
    await agent?.stop();
  });

  it('exposes exactly 100 series plus one overflow series, exact and conserved', async () => {
    const sink = sinkCg.spawn('/usr/bin/python3', ['-c', SINK]);
    const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
    const bytes = cgroups.map((_, i) => 1000 + 7 * i);
    const sender = senderCg.spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    sender.stdout!.on('data', (d) => (out += d));
    sender.stdin!.end(cgroups.map((cg, i) => `${cg.dir}/cgroup.procs ${bytes[i]}\n`).join(''));
    const exit = await waitExit(sender, 60000);
    assert.equal(exit.code, 0);
    assert.match(out, /done/);
    // The sink has drained everything once its receive counter stops moving; only sends matter here.

    const series = await agent.scrape();
    const sent = select(series, SENT);
    const overflow = sent.filter((s) => s.labels.overflow === 'true');
    const own = sent.filter((s) => s.labels.overflow !== 'true');
    assert.equal(own.length, LIMIT, 'series of their own');
    assert.equal(overflow.length, 1, 'one overflow series');
    assert.deepEqual(Object.keys(overflow[0].labels), ['overflow'], 'overflow is its only label');

    // Every one of our cgroups is either its own, exact series or folded.
    const byWorkload = new Map(own.map((s) => [s.labels.workload, s.value]));
    let foldedOurs = 0;
    cgroups.forEach((cg, i) => {
      const v = byWorkload.get(cg.name);
      if (v === undefined) foldedOurs += bytes[i];
      else assert.equal(v, bytes[i], cg.name);
    });
    assert.ok(foldedOurs > 0, 'some of our cgroups overflowed');

    // Nothing lost: the overflow series holds at least every byte of ours
    // that has no series of its own (it may also hold others' traffic).
    assert.ok(overflow[0].value >= foldedOurs, `the overflow series (${overflow[0].value}) holds our folded bytes (${foldedOurs})`);
    // And the totals only grow from one scrape to the next.
    assert.ok(sum(select(await agent.scrape(), SENT)) >= sum(sent));

    const health = select(series, 'tally_metric_overflowed_label_sets', { metric: SENT });
    assert.equal(health.length, 1);
    assert.ok(health[0].value >= CGROUPS - LIMIT, `overflowed label sets: ${health[0].value}`);
    assert.equal(select(series, 'tally_metric_series', { metric: SENT })[0].value, LIMIT);
    assert.equal(select(series, 'tally_metric_series_limit', { metric: SENT })[0].value, LIMIT);
  });
});
