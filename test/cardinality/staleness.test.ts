/**
 * --metrics-series-ttl over the in-memory store, table-driven: a removed
 * cgroup or a deleted pod has its series disappear after the TTL, not
 * before, and its kernel entries and mapping deleted; a label set another
 * cgroup keeps alive stays monotonic and exact. No root, no kernel.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { labelKey } from '../../src/cardinality/series-limiter';
import { COUNTER, World } from './helpers/world';

const TTL = 2000;
const web = labelKey({ workload: 'web' });

function shown(w: World): Map<string, number> {
  return new Map([...(w.read().get('test_events_total') ?? new Map())].map(([k, b]) => [k, b.get(0) ?? 0]));
}

/** Sweeps (and reads, as a scrape would) for ms of simulated time. */
function run(w: World, ms: number): void {
  for (let t = 0; t < ms; t += TTL / 4) {
    w.now += TTL / 4;
    w.sweep();
    w.read();
  }
}

interface Case {
  name: string;
  /** How the cgroup goes: removed (a container restart), its pod deleted, or both. */
  goes: 'removed' | 'pod deleted' | 'both';
  /** Another cgroup with the same labels lives on, and counts this much after. */
  sibling?: number;
  /** A socket that outlived the cgroup counts this much after it went. */
  late?: number;
  /** The series after the TTL: undefined when gone. */
  after: number | undefined;
  /** The overflow series after the TTL. */
  overflow?: number;
}

const CASES: Case[] = [
  { name: 'a removed cgroup', goes: 'removed', after: undefined },
  { name: 'a deleted pod whose cgroup lingers', goes: 'pod deleted', after: undefined },
  { name: 'a deleted pod and its cgroup', goes: 'both', after: undefined },
  { name: 'a label set another cgroup keeps alive', goes: 'removed', sibling: 50, after: 150 },
  { name: 'a label set kept alive, with a socket outliving its cgroup', goes: 'both', sibling: 50, late: 7, after: 157 },
  { name: 'a socket outliving its cgroup, shown before the series ends', goes: 'removed', late: 7, after: undefined },
];

describe('counting core: series TTL', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
      const gone = w.addCgroup({ namespace: 'shop', workload: 'web', pod: 'web-1' });
      const sibling = c.sibling === undefined ? undefined : w.addCgroup({ namespace: 'shop', workload: 'web', pod: 'web-2' });
      w.count(gone, COUNTER, 100);
      run(w, TTL); // folded in: counted under the label set
      assert.equal(shown(w).get(web), 100);

      if (c.goes !== 'pod deleted') gone.removedAt = w.now;
      if (c.goes !== 'removed') gone.deletedAt = w.now;
      if (c.late) w.count(gone, COUNTER, c.late);
      run(w, TTL / 2);
      assert.equal(shown(w).get(web), 100 + (c.late ?? 0), 'within the TTL the series stays, with everything counted');

      if (sibling) w.count(sibling, COUNTER, c.sibling!);
      run(w, TTL + TTL);
      assert.equal(shown(w).get(web), c.after);
      assert.equal(w.store.dump().filter((e) => e.key.cgroupId === gone.id).length, 0, 'its raw entries are deleted');
      assert.equal(w.store.mappingOf(gone.id), undefined, 'its mapping is deleted');
      if (!sibling) assert.equal(w.store.size, 0, 'nothing is left in the counter map');
      assert.ok(w.core.counts.staleLabelSets >= (sibling ? 0 : 1));
    });
  }

  it('a label set that went stale and comes back counts from zero, as a new series', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
    const first = w.addCgroup({ workload: 'web' });
    w.count(first, COUNTER, 100);
    run(w, TTL);
    first.removedAt = w.now;
    run(w, 3 * TTL);
    assert.equal(shown(w).get(web), undefined);
    const second = w.addCgroup({ workload: 'web' });
    w.count(second, COUNTER, 5);
    run(w, TTL);
    assert.equal(shown(w).get(web), 5);
  });

  it('a stale label set that had overflowed leaves its count in the overflow series', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 1, ttlMs: TTL, store: { capacity: 1000 } });
    const a = w.addCgroup({ workload: 'a' });
    const b = w.addCgroup({ workload: 'b' });
    w.count(a, COUNTER, 1);
    run(w, TTL);
    w.count(b, COUNTER, 10);
    run(w, TTL);
    const overflow = labelKey({ overflow: 'true' });
    assert.equal(shown(w).get(overflow), 10);
    b.removedAt = w.now;
    run(w, 3 * TTL);
    assert.deepEqual(Object.fromEntries(shown(w)), { [labelKey({ workload: 'a' })]: 1, [overflow]: 10 });
  });
});
