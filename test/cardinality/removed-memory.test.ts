/**
 * What the counting core remembers of removed cgroups (their labels, for
 * late events of sockets that outlive them) is forgotten once no read has
 * needed it for REMOVED_MEMORY_TTLS series TTLs, so a churn of cgroups
 * leaves nothing behind; a late event keeps it while it comes. No root, no
 * kernel.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { REMOVED_MEMORY_TTLS } from '../../src/cardinality/staleness';
import { labelKey } from '../../src/cardinality/series-limiter';
import { COUNTER, World } from './helpers/world';

const TTL = 2000;

function run(w: World, ms: number): void {
  for (let t = 0; t < ms; t += TTL / 4) {
    w.now += TTL / 4;
    w.sweep();
    w.read();
  }
}

const removedLabels = (w: World): number => w.core.caches.find((c) => c.name === 'removed_cgroup_labels')!.entries;

describe('counting core: memory of removed cgroups', () => {
  it('forgets the labels of 1,000 removed cgroups once idle, and only then', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 2000, ttlMs: TTL, store: { capacity: 4000 } });
    const cgroups = Array.from({ length: 1000 }, (_, i) => w.addCgroup({ workload: `w${i}` }));
    for (const c of cgroups) w.count(c, COUNTER, 1);
    run(w, TTL);
    for (const c of cgroups) c.removedAt = w.now;
    run(w, 2 * TTL);
    assert.equal(removedLabels(w), 1000, 'remembered once their mappings are retired');
    run(w, REMOVED_MEMORY_TTLS * TTL);
    assert.equal(removedLabels(w), 0, 'forgotten after the horizon');
  });

  it('keeps a removed cgroup whose socket keeps counting, under its own labels', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
    const gone = w.addCgroup({ workload: 'web' });
    const sibling = w.addCgroup({ workload: 'web' }); // keeps the label set live
    w.count(gone, COUNTER, 100);
    w.count(sibling, COUNTER, 1);
    run(w, TTL);
    gone.removedAt = w.now;
    for (let i = 0; i < 3 * REMOVED_MEMORY_TTLS; i++) {
      w.count(gone, COUNTER, 1); // a late event every TTL: each read needs the labels
      run(w, TTL);
    }
    assert.equal(removedLabels(w), 1);
    const series = w.read().get('test_events_total')!;
    assert.equal(series.get(labelKey({ workload: 'web' }))!.get(0), 101 + 3 * REMOVED_MEMORY_TTLS);
  });
});
