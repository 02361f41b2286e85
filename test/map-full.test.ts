/**
 * A kernel counter map that is full: updates land in the metric's reserved
 * overflow entry, are counted, and are never dropped.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { useScenario } from './helpers/scenario';
import { kernelCounters } from './helpers/kernel-maps';
import { select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';

const SENT = 'tally_tcp_sent_bytes_total';

describe('--bpf-map-capacity 3 (overflow entries live in a map of their own)', () => {
  // A long TTL: nothing is deleted during the test. (The first sweep, which
  // could fold entries in, comes 15 s after the start; the test takes ~1 s.)
  const sc = useScenario(['--bpf-map-capacity', '3', '--metrics-label-filter', 'workload', '--metrics-series-ttl', '1h'], ['a', 'b', 'c', 'receiver']);

  it('diverts what does not fit to the overflow series, counts it, and loses nothing', async () => {
    const { agent } = sc;
    const { a, b, c, receiver } = sc.cg;
    await transfer(a, receiver, 10_000);
    await transfer(b, receiver, 20_000);
    await transfer(c, receiver, 30_000);

    const entries = kernelCounters(agent.child.pid!);
    assert.equal(entries.length, 3, 'the map is full');
    const series = await agent.scrape();
    const overflow = select(series, SENT, { overflow: 'true' });
    assert.equal(overflow.length, 1, 'an overflow series');
    // Whatever has no entry of its own was counted in the overflow entry.
    const own = new Map(select(series, SENT).filter((s) => s.labels.workload).map((s) => [s.labels.workload, s.value]));
    const ours = [[a, 10_000], [b, 20_000], [c, 30_000]] as const;
    let diverted = 0;
    for (const [cg, n] of ours) {
      if (own.has(cg.name)) assert.equal(own.get(cg.name), n, cg.name);
      else diverted += n;
    }
    assert.ok(diverted >= 10_000, 'at least one of the three senders did not fit');
    assert.ok(overflow[0].value >= diverted, `overflow ${overflow[0].value} holds the diverted ${diverted}`);
    assert.ok(sum(select(series, 'tally_bpf_map_overflow_updates_total', { map: 'tally_counters' })) > 0);
    assert.equal(sum(select(series, 'tally_bpf_map_lost_updates_total', { map: 'tally_counters' })), 0);
  });
});
