/**
 * Promoted counters (src/bpf/promoted-counters.ts) with the real agent and
 * kernel: once a sweep promotes a key, the kernel counts it in
 * tally_fast_counters and leaves its hash entry alone, and the series stays
 * exact across the change. When the label set goes stale the key is retired:
 * its entry cleared in the kernel, and its series gone. A policy removed
 * takes its promoted keys with it, and a policy added after it, whose key
 * may take the same metric id and so the same position, counts from zero.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { waitFor } from './helpers/cleanup';
import { kernelCounters, kernelLabelSets, kernelPromoted, kernelPromotedCount, PromotedEntry } from './helpers/kernel-maps';
import { kernelIdOf, select } from './helpers/prom-text';
import { trueExecsPolicy } from './helpers/test-policies';

const EXECS = 'tally_process_execs_total';
const TRUE = '/usr/bin/true';

/** Runs of true in cgroup `cg`, a sweep apart, until pred finds what it wants in the kernel's index. */
async function execsUntil<T>(cg: TestCgroup, pred: () => Promise<T | undefined>, what: string): Promise<{ found: T; ran: number }> {
  const deadline = Date.now() + 20000;
  let ran = 0;
  for (;;) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    const child = cg.spawn('/bin/sh', ['-c', `for i in $(seq 20); do ${TRUE}; done`]);
    assert.equal((await waitExit(child, 20000)).code, 0);
    ran += 20;
    await new Promise((r) => setTimeout(r, 600));
    const found = await pred();
    if (found !== undefined) return { found, ran };
  }
}

describe('promoted counters', () => {
  let agent: AgentProcess;
  let cg: TestCgroup;

  before(async () => {
    cg = TestCgroup.create('promoted');
    // A 2 s TTL: sweeps, which map cgroups and promote keys, every 500 ms.
    agent = await AgentProcess.start(['--builtin-policies', 'process', '--metrics-label-filter', 'workload,binary', '--metrics-series-ttl', '2s']);
  });

  after(async () => {
    cg?.destroy();
    await agent?.stop();
  });

  async function execs(n: number): Promise<void> {
    const child = cg.spawn('/bin/sh', ['-c', `for i in $(seq ${n}); do ${TRUE}; done`]);
    assert.equal((await waitExit(child, 20000)).code, 0);
  }

  /**
   * The health gauge reads what the kernel holds. The agent counts the whole
   * host and sweeps every 500 ms, so keys of other suites' processes may be
   * promoted between the scrape and the dump: compare until a pair agrees.
   */
  async function gaugeAgrees(pid: number): Promise<void> {
    let last = '';
    for (let i = 0; i < 20; i++) {
      const gauge = select(await agent.scrape(), 'tally_bpf_promoted_counters')[0].value;
      const kernel = kernelPromoted(pid).length;
      if (gauge === kernel) return;
      last = `gauge ${gauge}, kernel ${kernel}`;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`tally_bpf_promoted_counters never agreed with tally_fast_index: ${last}`);
  }

  const trueExecs = async (): Promise<number[]> => select(await agent.scrape(), EXECS, { workload: cg.name, binary: TRUE }).map((s) => s.value);

  it('counts a promoted key outside the hash, exactly, and retires it with its label set', async () => {
    const pid = agent.child.pid!;
    let sent = 0;
    // Until the cgroup has a label set and this workload's exec of true is promoted.
    let promoted: PromotedEntry | undefined;
    const deadline = Date.now() + 20000;
    while (!promoted) {
      assert.ok(Date.now() < deadline, 'the exec key of true was never promoted');
      await execs(20);
      sent += 20;
      await new Promise((r) => setTimeout(r, 600));
      const labelSet = kernelLabelSets(pid).get(cg.id);
      if (labelSet === undefined) continue;
      const execId = kernelIdOf(await agent.scrape(), EXECS);
      const hash = kernelCounters(pid).filter((e) => e.flags === 2 && e.cgroupId === BigInt(labelSet) && e.metric === execId);
      // The workload's shells exec /bin/sh once a round; true is the key that counted the most.
      const top = hash.sort((a, b) => Number(b.value - a.value))[0];
      promoted = top && kernelPromoted(pid).find((p) => p.cgroupId === top.cgroupId && p.binaryId === top.binaryId && p.metric === execId && p.flags === 2);
    }
    const ofTrue = { workload: cg.name, binary: TRUE };
    await agent.scrapeUntil((x) => select(x, EXECS, ofTrue)[0]?.value === sent, `the series to read ${sent}`);

    const hashBefore = kernelCounters(pid).find((e) => e.flags === 2 && e.cgroupId === promoted!.cgroupId && e.binaryId === promoted!.binaryId && e.metric === promoted!.metric)!;
    const countedBefore = kernelPromotedCount(pid, promoted.pos);
    await execs(57);
    sent += 57;
    assert.deepEqual(await trueExecs(), [sent], 'exact across the promotion');
    const hashAfter = kernelCounters(pid).find((e) => e.flags === 2 && e.cgroupId === promoted!.cgroupId && e.binaryId === promoted!.binaryId && e.metric === promoted!.metric)!;
    assert.equal(hashAfter.value, hashBefore.value, 'the hash entry of a promoted key is left alone');
    assert.equal(kernelPromotedCount(pid, promoted.pos) - countedBefore, 57n, 'the kernel counted the 57 execs at the promoted position');
    await gaugeAgrees(pid);

    // The cgroup goes: after the TTL its series is gone, and so is its promoted key.
    cg.destroy();
    await agent.scrapeUntil((x) => select(x, EXECS, ofTrue).length === 0, 'the series to be retired', 20000);
    await waitFor(() => !kernelPromoted(pid).some((p) => p.cgroupId === promoted!.cgroupId), 'the promoted key to be retired', 5000);
    await gaugeAgrees(pid);
  });
});

describe('promoted counters of a policy removed, then another added', () => {
  let agent: AgentProcess;
  let cg: TestCgroup;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-promoted-'));
    cg = TestCgroup.create('promoted-policy');
    agent = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', dir, '--metrics-label-filter', 'workload', '--metrics-series-ttl', '2s']);
  });

  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('retires the removed metric\'s keys, and the next policy counts from zero', async () => {
    const pid = agent.child.pid!;
    const series = async (metric: string): Promise<number[]> => select(await agent.scrape(), metric, { workload: cg.name }).map((x) => x.value);
    const promotedOf = (metric: string) => async (): Promise<PromotedEntry | undefined> => {
      const s = await agent.scrape();
      if (select(s, 'tally_metric_kernel_ids', { metric }).length !== 1) return undefined;
      const id = kernelIdOf(s, metric);
      return kernelPromoted(pid).find((p) => p.metric === id && p.flags === 2);
    };
    const loaded = (metric: string): Promise<unknown> =>
      agent.scrapeUntil((s) => select(s, 'tally_metric_kernel_ids', { metric }).length === 1, `${metric} to be defined`);

    const file = path.join(dir, 'promoted.yaml');
    fs.writeFileSync(file, trueExecsPolicy('promoted', 'tally_promoted_a_total'));
    await loaded('tally_promoted_a_total');
    const a = await execsUntil(cg, promotedOf('tally_promoted_a_total'), 'policy a\'s key to be promoted');
    assert.deepEqual(await series('tally_promoted_a_total'), [a.ran]);

    // Removed: its metric goes, and so do its promoted keys.
    fs.rmSync(file);
    await agent.scrapeUntil((s) => select(s, 'tally_metric_kernel_ids', { metric: 'tally_promoted_a_total' }).length === 0, 'policy a to be removed');
    assert.equal(kernelPromoted(pid).filter((p) => p.metric === a.found.metric && p.cgroupId === a.found.cgroupId).length, 0, 'policy a\'s key is retired');

    // Added: counts only its own runs, even at the position policy a's key had.
    fs.writeFileSync(file, trueExecsPolicy('promoted', 'tally_promoted_b_total'));
    await loaded('tally_promoted_b_total');
    const b = await execsUntil(cg, promotedOf('tally_promoted_b_total'), 'policy b\'s key to be promoted');
    const more = cg.spawn('/bin/sh', ['-c', `for i in $(seq 13); do ${TRUE}; done`]);
    assert.equal((await waitExit(more, 20000)).code, 0);
    assert.deepEqual(await series('tally_promoted_b_total'), [b.ran + 13]);
    if (b.found.metric === a.found.metric) assert.equal(b.found.pos, a.found.pos, 'the same key, so the same position');
  });
});
