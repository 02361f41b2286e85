/** The counting core's side of a takeover (src/cardinality/adoption.ts): carry, held series, adopted entries. Pure, no root. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Adoption, Carried } from '../../src/cardinality/adoption';
import { bucketsOf, HeldCounts } from '../../src/cardinality/held-counts';
import { KeyLabels } from '../../src/cardinality/key-labels';
import { labelKey, OVERFLOW_KEY, OVERFLOW_LABELS } from '../../src/cardinality/series-limiter';
import { KEY_RAW_CGROUP } from '../../src/bpf/layout';

const WEB = { workload: 'web', binary: '/bin/web' };
const DB = { workload: 'db' };
const ROLLED = { namespace: 'shop', overflow: 'true' };

/** Labels as a KeyLabels would give them, for cgroup ids the test declares resolved. */
function labelsFor(resolved: Map<bigint, Record<string, string>>): KeyLabels {
  return {
    labelsOf: (key: { cgroupId: bigint }) => {
      const l = resolved.get(key.cgroupId);
      return l && { labels: l, key: labelKey(l), setKey: labelKey({ workload: l.workload }) };
    },
  } as unknown as KeyLabels;
}

function carry(series: [Record<string, string>, number][]): Map<string, Map<string, Carried>> {
  return new Map([['m_total', new Map(series.map(([labels, value]) => [labelKey(labels), { labels, value }]))]]);
}

describe('adoption', () => {
  it('adds the carry to the series of the same key; shows a key the read lacks until the TTL, then ends it', () => {
    const a = new Adoption(labelsFor(new Map()), new HeldCounts());
    a.setCarry(carry([[WEB, 100], [DB, 7]]), 1000);
    const read = [{ labels: WEB, key: labelKey(WEB), value: 5 }];
    assert.deepEqual(a.merge('m_total', read, 500).map((s) => [s.key, s.value]), [[labelKey(WEB), 105], [labelKey(DB), 7]]);
    assert.deepEqual(a.merge('m_total', read, 1001).map((s) => [s.key, s.value]), [[labelKey(WEB), 105]], 'db ended: no read continued it');
    assert.deepEqual(a.merge('m_total', read, 500).map((s) => [s.key, s.value]), [[labelKey(WEB), 105]], 'and stays ended');
    assert.equal(read[0].value, 5, 'the read itself is not changed');
  });

  it('holds own and flat series under the family id, keeps rolled-up ones after the limit, drops families it is not given an id for', () => {
    const held = new HeldCounts();
    const a = new Adoption(labelsFor(new Map()), held);
    const c = carry([[WEB, 100], [OVERFLOW_LABELS, 3], [ROLLED, 40]]);
    c.set('derived_total', new Map([[labelKey(WEB), { labels: WEB, value: 100 }]]));
    a.setCarry(c, 0);
    const n = a.holdCarried((name) => (name === 'm_total' ? 9 : undefined), (l) => labelKey({ workload: l.workload }));
    assert.equal(n, 2);
    assert.deepEqual([...held.series.get(9)!].map(([k, h]) => [k, h.setKey, bucketsOf(h)]), [[labelKey(WEB), labelKey({ workload: 'web' }), [[0, 100]]]]);
    assert.deepEqual([...held.overflow.get(9)!], [[0, 3]]);
    assert.deepEqual(a.merge('m_total', [], 10_000).map((s) => [s.key, s.value]), [], 'the rolled-up carry ended: past the TTL, no read shows it');
    assert.deepEqual(a.merge('derived_total', [], 0), [], 'a family without an id is dropped');
    assert.notEqual(OVERFLOW_KEY, labelKey(ROLLED));
  });

  it('holds adopted entries once their labels are known, and keeps the others waiting', () => {
    const resolved = new Map<bigint, Record<string, string>>([[1n, DB]]);
    const held = new HeldCounts();
    const a = new Adoption(labelsFor(resolved), held);
    const key = (cgroupId: bigint) => ({ cgroupId, binaryId: 0n, metric: 9, flags: KEY_RAW_CGROUP, bucket: 0 });
    a.adopt([{ key: key(1n), value: 11 }, { key: key(2n), value: 22 }, { key: key(3n), value: 0 }]);
    assert.equal(a.waitingEntries, 1, 'cgroup 2 waits; an empty entry is not kept');
    resolved.set(2n, DB);
    a.settle();
    assert.equal(a.waitingEntries, 0);
    assert.deepEqual(bucketsOf(held.series.get(9)!.get(labelKey(DB))!), [[0, 33]]);
  });
});
