/** The in-memory counter store behaves as the kernel's maps do where the counting core relies on it. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../src/bpf/memory-counter-store';
import { OverflowEntriesFull } from '../../src/bpf/counter-store';
import { CounterKey, KernelStat, KEY_RAW_CGROUP } from '../../src/bpf/layout';

const key = (cgroupId: bigint, metric = 16): CounterKey => ({ cgroupId, binaryId: 0n, metric, flags: KEY_RAW_CGROUP });
const values = (s: MemoryCounterStore): number[] => s.dump().map((e) => e.value);

describe('MemoryCounterStore', () => {
  it('an update that finds the map full lands in its metric\'s overflow entry, and is counted; without one it is lost', () => {
    const s = new MemoryCounterStore({ capacity: 1 });
    s.reserveOverflow(16, [0]);
    assert.equal(s.add(key(1n), 5), 'counted');
    assert.equal(s.add(key(2n), 7), 'overflow');
    assert.equal(s.add(key(2n, 99), 1), 'lost');
    assert.deepEqual(values(s), [5]);
    assert.deepEqual(s.dumpOverflow().map((e) => e.value), [7]);
    assert.equal(s.stats()[KernelStat.mapFull], 1n);
    assert.equal(s.stats()[KernelStat.lost], 1n);
  });

  it('CPUs see a mapping change only once it is published (remapped)', () => {
    const s = new MemoryCounterStore({ capacity: 10 });
    assert.equal(s.mapCgroup(1n, 3, 0n), true);
    assert.equal(s.mappingOf(1n), undefined);
    s.remapped();
    assert.deepEqual(s.mappingOf(1n), { labelSet: 3, namespaceId: 0n });
    s.unmapCgroup(1n);
    assert.ok(s.mappingOf(1n), 'still seen until published');
    s.remapped();
    assert.equal(s.mappingOf(1n), undefined);
  });

  it('a full mapping table refuses a new cgroup', () => {
    const s = new MemoryCounterStore({ capacity: 10, mappingCapacity: 1 });
    assert.equal(s.mapCgroup(1n, 1, 0n), true);
    assert.equal(s.mapCgroup(2n, 1, 0n), false);
    assert.equal(s.mapCgroup(1n, 2, 0n), true, 'rewriting a mapping needs no room');
  });

  it('a promoted key counts apart, reads and takes as one count', () => {
    const s = new MemoryCounterStore({ capacity: 10 });
    s.add(key(1n), 5);
    s.promote([key(1n)]);
    s.add(key(1n), 2);
    assert.equal(s.promotedCount, 1);
    assert.deepEqual(values(s), [7]);
    assert.equal(s.take(key(1n)), 7);
    assert.equal(s.take(key(1n)), undefined);
    assert.equal(s.promotedCount, 0);
  });

  it('overflow entries past their capacity: none created, OverflowEntriesFull', () => {
    const s = new MemoryCounterStore({ capacity: 10, overflowCapacity: 2 });
    assert.throws(() => s.reserveOverflow(16, [0, 1, 2]), OverflowEntriesFull);
    assert.equal(s.dumpOverflow().length, 0);
  });

  it('dropMetrics deletes a metric\'s entries, overflow included', () => {
    const s = new MemoryCounterStore({ capacity: 10 });
    s.reserveOverflow(16, [0]);
    s.reserveOverflow(17, [0]);
    s.add(key(1n, 16), 1);
    s.add(key(1n, 17), 1);
    s.dropMetrics(new Set([16]));
    assert.deepEqual(s.dump().map((e) => e.key.metric), [17]);
    assert.deepEqual(s.dumpOverflow().map((e) => e.key.metric), [17]);
  });
});
