/**
 * Live cardinality accounting against the real agent (issue 18 §3): 12
 * cgroups send past a series limit of 10; GET /debug/cardinality agrees with
 * the scrape next to it (own series, rolled-up series per level, top label
 * values, churn, kernel entries), `tally cardinality` prints the same, and
 * the agent warned once, naming the label with the most values.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { AgentProcess, MAIN, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, Series } from './helpers/prom-text';
import { HOPPER, SINK } from './helpers/python-peers';
import type { CardinalityDebug } from '../src/collectors/cardinality-debug';

const SENT = 'tally_tcp_sent_bytes_total';
const LIMIT = 10;
const CGROUPS = 12;

describe('/debug/cardinality and tally cardinality', () => {
  let agent: AgentProcess;
  const cgroups: TestCgroup[] = [];

  before(async () => {
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload,binary', '--metrics-series-limit', String(LIMIT), '--metrics-rollup-reserve', '50']);
    for (let i = 0; i < CGROUPS; i++) cgroups.push(TestCgroup.create(`card${i}`));
    cgroups.push(TestCgroup.create('sink'), TestCgroup.create('hopper'));
  });
  after(async () => {
    for (const cg of cgroups) cg.destroy();
    await agent?.stop();
  });

  async function debug(top = 3): Promise<CardinalityDebug> {
    const res = await fetch(agent.url(`/debug/cardinality?top=${top}`));
    assert.equal(res.status, 200);
    return (await res.json()) as CardinalityDebug;
  }

  /** A scrape and the accounting of the reads on either side of it, once both agree (other tests' traffic may add series meanwhile). */
  async function scrapeBetween(): Promise<{ scrape: Series[]; card: CardinalityDebug['metrics'][number] }> {
    for (let attempt = 0; ; attempt++) {
      const before = (await debug()).metrics.find((m) => m.metric === SENT)!;
      const scrape = await agent.scrape();
      const after = (await debug()).metrics.find((m) => m.metric === SENT)!;
      const { churn: c1, kernelEntries: k1, ...rest1 } = before;
      const { churn: c2, kernelEntries: k2, ...rest2 } = after;
      if (JSON.stringify(rest1) === JSON.stringify(rest2) && c1.createdTotal === c2.createdTotal) return { scrape, card: after };
      assert.ok(attempt < 10, 'the series kept changing');
    }
  }

  it('agrees with the scrape, and tally cardinality prints it', async () => {
    const [sinkCg, hopCg] = cgroups.slice(-2);
    const sink = sinkCg.spawn('/usr/bin/python3', ['-c', SINK]);
    const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
    const hop = hopCg.spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'pipe', 'pipe'] });
    hop.stdin!.end(cgroups.slice(0, CGROUPS).map((cg, i) => `${cg.dir}/cgroup.procs ${1000 + i}\n`).join(''));
    assert.equal((await waitExit(hop, 30000)).code, 0);
    await agent.scrapeUntil((s) => (select(s, 'tally_metric_overflowed_label_sets', { metric: SENT })[0]?.value ?? 0) >= CGROUPS - LIMIT / 2, 'our cgroups past the own limit');

    const { scrape, card } = await scrapeBetween();
    const sent = select(scrape, SENT);
    const own = sent.filter((s) => s.labels.overflow !== 'true');
    const rolled = sent.filter((s) => s.labels.overflow === 'true' && s.labels.workload !== undefined);
    const flat = sent.filter((s) => s.labels.overflow === 'true' && s.labels.workload === undefined);
    assert.equal(card.limit, LIMIT);
    assert.equal(card.ownLimit, LIMIT / 2);
    assert.equal(card.series, own.length);
    assert.deepEqual(
      card.rolledUp.map((l) => [l.level, l.series]),
      [['workload', rolled.length], ['flat', flat.length]],
    );
    assert.ok(rolled.length > 0, 'some label sets rolled up to their workload');
    assert.equal(card.rolledUp[0].labelSets, select(scrape, 'tally_metric_rolled_up_label_sets', { metric: SENT, level: 'workload' })[0].value);

    // Top values: as many series as the scrape shows with that value, most first.
    const perWorkload = new Map<string, number>();
    for (const s of sent) if (s.labels.workload !== undefined) perWorkload.set(s.labels.workload, (perWorkload.get(s.labels.workload) ?? 0) + 1);
    const top = card.topValues.workload;
    assert.equal(top.length, Math.min(3, perWorkload.size));
    for (const v of top) assert.equal(v.series, perWorkload.get(v.value), v.value);
    assert.equal(top[0].series, Math.max(...perWorkload.values()));

    assert.equal(card.churn.createdTotal, select(scrape, 'tally_metric_series_created_total', { metric: SENT })[0].value);
    assert.ok(card.churn.createdPerMinute >= own.length + rolled.length - card.churn.retiredTotal, `created in the last minute: ${card.churn.createdPerMinute}`);
    const mapEntries = select(scrape, 'tally_bpf_map_entries', { map: 'tally_counters' })[0].value;
    assert.ok(card.kernelEntries >= 1 && card.kernelEntries <= mapEntries, `kernel entries ${card.kernelEntries} of ${mapEntries}`);

    // The agent warned once for the metric, at 80% of its limit, naming workload (one value per series; binary has few).
    const warnings = agent.stderr.split('\n').filter((l) => l.includes('a metric reached 80% of its series limit') && l.includes(`metric=${SENT}`));
    assert.equal(warnings.length, 1, agent.stderr);
    assert.match(warnings[0], /widest_label=workload/);

    const cli = spawnSync(process.execPath, [MAIN, 'cardinality', '--server', `127.0.0.1:${agent.port}`, '--top', '3'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const block = cli.stdout.split('\n\n').find((b) => b.startsWith(`${SENT}\n`))!;
    assert.ok(block, cli.stdout);
    assert.match(block, new RegExp(`limit ${LIMIT} \\(own up to ${LIMIT / 2}\\)`));
    assert.match(block, new RegExp(`  top workload +${top[0].value.replace(/[.]/g, '\\.')} \\(${top[0].series}\\)`));

    const bad = spawnSync(process.execPath, [MAIN, 'cardinality', '--top', 'x'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--top "x" must be a whole number from 1 to 1000/);
  });
});
