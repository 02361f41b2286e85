/**
 * --metrics-series-ttl: a removed cgroup's series disappear after the TTL and
 * its kernel entries are deleted; a label set that lives on in another cgroup
 * keeps counting from where it was.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { useScenario } from './helpers/scenario';
import { kernelCounters, kernelLabelSets } from './helpers/kernel-maps';
import { select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { SINK, STREAMER } from './helpers/python-peers';

const SENT = 'tally_tcp_sent_bytes_total';
const TTL_MS = 2000;

async function entriesOf(agent: AgentProcess, cgroupId: bigint): Promise<number> {
  return kernelCounters(agent.child.pid!).filter((e) => e.cgroupId === cgroupId).length;
}

describe('--metrics-series-ttl', () => {
  const sc = useScenario(['--metrics-series-ttl', `${TTL_MS}ms`, '--metrics-label-filter', 'workload'], ['gone', 'stays', 'receiver']);

  it('a removed cgroup: series gone after the TTL, kernel entries deleted', async () => {
    const { agent } = sc;
    const { gone, receiver } = sc.cg;
    await transfer(gone, receiver, 12_345);
    assert.deepEqual(select(await agent.scrape(), SENT, { workload: gone.name }).map((s) => s.value), [12_345]);
    // The kernel knows the cgroup: by a raw entry, or (once folded in) by its label-set mapping.
    assert.ok((await entriesOf(agent, gone.id)) > 0 || kernelLabelSets(agent.child.pid!).has(gone.id));

    gone.destroy();
    const removedAt = Date.now();
    // Within the TTL the series is still there, unchanged.
    assert.deepEqual(select(await agent.scrape(), SENT, { workload: gone.name }).map((s) => s.value), [12_345]);
    let series = await agent.scrape();
    while (select(series, SENT, { workload: gone.name }).length > 0) {
      assert.ok(Date.now() - removedAt < TTL_MS + 5000, 'series still there long after the TTL');
      await new Promise((r) => setTimeout(r, 100));
      series = await agent.scrape();
    }
    assert.ok(Date.now() - removedAt >= TTL_MS, `series went after ${Date.now() - removedAt} ms, before the TTL`);
    assert.equal(await entriesOf(agent, gone.id), 0, 'kernel entries of the removed cgroup');
    assert.equal(kernelLabelSets(agent.child.pid!).has(gone.id), false, 'its label-set mapping');
    assert.ok(sum(select(series, 'tally_stale_series_total')) >= 1);
    assert.ok(sum(select(series, 'tally_cgroup_removals_total', { source: 'kernel' })) >= 1);
  });

  it('a label set that lives on in another cgroup stays monotonic and exact', async () => {
    const { agent } = sc;
    const { stays, receiver } = sc.cg;
    // Two cgroups with the same leaf name under different parents: one workload.
    const name = `shared-${randomBytes(3).toString('hex')}`;
    const a = stays.child(name);
    const b = sc.cg.receiver.child(name);
    try {
      await transfer(a, receiver, 1000);
      await transfer(b, stays, 2000);
      assert.deepEqual(select(await agent.scrape(), SENT, { workload: name }).map((s) => s.value), [3000]);

      a.destroy();
      await new Promise((r) => setTimeout(r, TTL_MS + 1500));
      assert.equal(await entriesOf(agent, a.id), 0, 'the removed cgroup\'s entries are deleted');
      assert.deepEqual(select(await agent.scrape(), SENT, { workload: name }).map((s) => s.value), [3000], 'unchanged, not reset');

      await transfer(b, stays, 500);
      assert.deepEqual(select(await agent.scrape(), SENT, { workload: name }).map((s) => s.value), [3500]);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});

describe('--metrics-series-ttl with --metrics-series-limit 1', () => {
  const sc = useScenario(['--metrics-series-ttl', `${TTL_MS}ms`, '--metrics-label-filter', 'workload', '--metrics-series-limit', '1'], ['a', 'b', 'receiver']);

  it('a stale label set that had overflowed leaves its count in the overflow series', async () => {
    const { agent } = sc;
    const { a, b, receiver } = sc.cg;
    await transfer(a, receiver, 1000);
    await agent.scrape();
    await transfer(b, receiver, 2000);
    const before = await agent.scrape();
    // With one series allowed, at least one of the two is folded (other
    // traffic on this host may have taken the one place first).
    const folded = [a, b].filter((cg) => select(before, SENT, { workload: cg.name }).length === 0);
    assert.ok(folded.length >= 1, 'one of a, b is folded');
    const gone = folded[folded.length - 1];
    const overflowBefore = select(before, SENT, { overflow: 'true' })[0].value;
    assert.ok(overflowBefore >= (gone === a ? 1000 : 2000));
    const staleBefore = sum(select(before, 'tally_stale_series_total'));

    gone.destroy();
    const removedAt = Date.now();
    await new Promise((r) => setTimeout(r, TTL_MS));
    await waitForNoKernelState(agent, gone.id, removedAt);
    const after = await agent.scrapeUntil((s) => sum(select(s, 'tally_stale_series_total')) > staleBefore, 'the folded label set to be retired');
    const overflowAfter = select(after, SENT, { overflow: 'true' })[0].value;
    assert.ok(overflowAfter >= overflowBefore, `the overflow series went from ${overflowBefore} to ${overflowAfter}`);
  });
});

async function waitForNoKernelState(agent: AgentProcess, cgroupId: bigint, since: number): Promise<void> {
  while ((await entriesOf(agent, cgroupId)) > 0 || kernelLabelSets(agent.child.pid!).has(cgroupId)) {
    assert.ok(Date.now() - since < TTL_MS + 6000, 'kernel state of the removed cgroup outlived the TTL');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('fold-in while the cgroup is sending', () => {
  // A short TTL sweeps every 250 ms: the mapping is written and the raw entry
  // folded in while events keep arriving on both CPUs.
  const sc = useScenario(['--metrics-series-ttl', '1s', '--metrics-label-filter', 'workload'], ['streamer', 'sink']);

  it('loses no byte: the series equals what the sender sent', async () => {
    const { agent } = sc;
    const sink = sc.cg.sink.spawn('/usr/bin/python3', ['-c', SINK]);
    try {
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const streamer = sc.cg.streamer.spawn('/usr/bin/python3', ['-c', STREAMER, port, '3']);
      let out = '';
      streamer.stdout!.on('data', (d) => (out += d));
      assert.equal((await waitExit(streamer, 20000)).code, 0);
      const sent = Number(out.trim());
      assert.ok(sent > 100_000, `sent ${sent}`);
      assert.ok(kernelLabelSets(agent.child.pid!).has(sc.cg.streamer.id), 'the cgroup was mapped to its label set meanwhile');
      assert.deepEqual(select(await agent.scrape(), SENT, { workload: sc.cg.streamer.name }).map((s) => s.value), [sent]);
    } finally {
      sink.kill();
    }
  });
});
