/**
 * Counts that wait for labels, over the in-memory store, table-driven: a
 * cgroup whose labels are not final is held back (not shown under labels it
 * would later leave) and shown whole once they are; a matchNamespaces
 * hook's counts join the metric once the namespace admits them, and are
 * dropped, and reported, when it does not. No root, no kernel.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { labelKey } from '../../src/cardinality/series-limiter';
import { COUNTER, World } from './helpers/world';

const TTL = 2000;

function shown(w: World): Record<string, number> {
  w.store.beginPass();
  const { series, pendingCgroups } = w.core.read(w.store.dump(), w.store.dumpOverflow(), w.now);
  const out: Record<string, number> = Object.fromEntries((series.get('test_events_total') ?? []).map((s) => [s.key!, s.value]));
  return pendingCgroups > 0 ? { ...out, pendingCgroups } : out;
}

function sweeps(w: World, n: number, ms = 250): void {
  for (let i = 0; i < n; i++) {
    w.now += ms;
    w.sweep();
  }
}

interface Case {
  name: string;
  namespace: string;
  /** Counted by a matchNamespaces hook admitting ns0. */
  pendingHook: boolean;
  /** When the labels become final, after the first event. */
  finalAfterMs: number;
  /** The cgroup is removed before its labels are final. */
  removedEarly?: boolean;
  before: Record<string, number>;
  after: Record<string, number>;
  unmatched?: number;
}

const web = labelKey({ workload: 'web' });
const overflow = labelKey({ overflow: 'true' });

const CASES: Case[] = [
  { name: 'labels final at once: shown at the first read', namespace: 'ns0', pendingHook: false, finalAfterMs: 0, before: { [web]: 30 }, after: { [web]: 30 } },
  { name: 'labels final later: held back, then shown whole', namespace: 'ns0', pendingHook: false, finalAfterMs: 3000, before: { pendingCgroups: 1 }, after: { [web]: 30 } },
  { name: 'a namespace the hook admits: joins the metric once known', namespace: 'ns0', pendingHook: true, finalAfterMs: 3000, before: { pendingCgroups: 1 }, after: { [web]: 30 } },
  { name: 'a namespace the hook does not admit: never shown, reported unmatched', namespace: 'ns1', pendingHook: true, finalAfterMs: 3000, before: { pendingCgroups: 1 }, after: {}, unmatched: 1 },
  {
    name: 'removed before its labels were final: labelled with what is known at the TTL, into the overflow series',
    namespace: 'ns0',
    pendingHook: false,
    finalAfterMs: 60_000,
    removedEarly: true,
    before: { pendingCgroups: 1 },
    after: { [overflow]: 30 },
  },
];

describe('counting core: pending labels', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 }, admitted: ['ns0'] });
      const cg = w.addCgroup({ namespace: c.namespace, workload: 'web', pod: 'web-1' }, c.finalAfterMs);
      w.count(cg, COUNTER, 10, { pendingHook: c.pendingHook });
      w.count(cg, COUNTER, 20, { pendingHook: c.pendingHook });
      if (c.removedEarly) cg.removedAt = w.now;
      sweeps(w, 2);
      assert.deepEqual(shown(w), c.before, 'before the labels are final');
      sweeps(w, 30);
      assert.deepEqual(shown(w), c.after, 'after');
      assert.equal(w.core.counts.unmatchedEntries, c.unmatched ?? 0);
      if (!c.removedEarly) assert.ok(w.store.mappingOf(cg.id) !== undefined, 'the cgroup is mapped, so the kernel decides its later events');
    });
  }

  it('a pending key that finds the map full counts as the metric\'s overflow, whatever its namespace', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 0 }, admitted: ['ns0'] });
    const cg = w.addCgroup({ namespace: 'ns1', workload: 'web' }, 3000);
    w.count(cg, COUNTER, 10, { pendingHook: true });
    assert.deepEqual(shown(w), { [overflow]: 10 });
  });
});
