/** The series limit, table-driven: admission, folding, stickiness, conservation. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { labelKey, SeriesLimiter } from '../src/cardinality/series-limiter';
import { limitSamples } from '../src/cardinality/limit-samples';
import { Sample } from '../src/metrics/define';

function read(pairs: Array<[Record<string, string>, number]>): Map<string, Sample> {
  return new Map(pairs.map(([labels, value]) => [labelKey(labels), { labels, value }]));
}
const w = (name: string): Record<string, string> => ({ workload: name });
const total = (xs: Sample[]): number => xs.reduce((a, s) => a + s.value, 0);

describe('SeriesLimiter', () => {
  it('admits up to the limit and folds the rest into one overflow series', () => {
    const l = new SeriesLimiter('m', 2);
    const out = limitSamples(l, read([[w('a'), 1], [w('b'), 2], [w('c'), 4], [w('d'), 8]]));
    assert.deepEqual(out, [
      { labels: w('a'), value: 1 },
      { labels: w('b'), value: 2 },
      { labels: { overflow: 'true' }, value: 12 },
    ]);
    assert.equal(l.series, 2);
    assert.equal(l.overflowedLabelSets, 2);
  });

  it('adds the kernel overflow key into the same overflow series', () => {
    const l = new SeriesLimiter('m', 1);
    const out = limitSamples(l, read([[{ overflow: 'true' }, 100], [w('a'), 1], [w('b'), 2]]));
    assert.deepEqual(out, [{ labels: w('a'), value: 1 }, { labels: { overflow: 'true' }, value: 102 }]);
    assert.equal(l.overflowedLabelSets, 1, 'the kernel overflow key is not a label set');
  });

  it('no overflow series while under the limit', () => {
    const l = new SeriesLimiter('m', 5);
    assert.deepEqual(limitSamples(l, read([[w('a'), 1]])), [{ labels: w('a'), value: 1 }]);
  });

  it('a folded label set stays folded, so every series is monotonic and the total is conserved', () => {
    const l = new SeriesLimiter('m', 2);
    // b appears only later, after c already overflowed: c must not move out.
    const reads: Array<Array<[Record<string, string>, number]>> = [
      [[w('a'), 10], [w('c'), 5], [w('d'), 1]],
      [[w('a'), 11], [w('c'), 7], [w('d'), 2], [w('b'), 3]],
      [[w('a'), 12], [w('c'), 9], [w('d'), 3], [w('b'), 4]],
    ];
    let last = new Map<string, number>();
    for (const r of reads) {
      const out = limitSamples(l, read(r));
      assert.equal(total(out), r.reduce((a, [, v]) => a + v, 0), 'conservation');
      const now = new Map(out.map((s) => [labelKey(s.labels), s.value]));
      for (const [k, v] of last) assert.ok((now.get(k) ?? -1) >= v, `${k} went from ${v} to ${now.get(k)}`);
      last = now;
    }
    assert.deepEqual([...last.keys()].sort(), [labelKey(w('a')), labelKey(w('c')), labelKey({ overflow: 'true' })].sort());
  });

  it('forget says where a stale label set was, and frees its place', () => {
    const l = new SeriesLimiter('m', 1);
    limitSamples(l, read([[w('a'), 1], [w('b'), 2]]));
    assert.deepEqual(l.forget(labelKey(w('a'))), { at: 'own' });
    assert.deepEqual(l.forget(labelKey(w('b'))), { at: 'flat' });
    assert.deepEqual(l.forget(labelKey(w('c'))), { at: 'unknown' });
    assert.deepEqual(limitSamples(l, read([[w('c'), 3]])), [{ labels: w('c'), value: 3 }], 'the freed place is taken');
  });

  it('forgets label sets no read has shown for longer than forgetUnseenMs', () => {
    const l = new SeriesLimiter('m', 1, undefined, 1000);
    limitSamples(l, read([[w('a'), 1], [w('b'), 2]]), 0);
    limitSamples(l, read([[w('a'), 1]]), 900);
    assert.equal(l.overflowedLabelSets, 1, 'b unseen for 900 ms is still remembered');
    limitSamples(l, read([[w('a'), 1]]), 1500);
    assert.equal(l.overflowedLabelSets, 0, 'b unseen for 1500 ms is forgotten');
    assert.equal(l.series, 1, 'a, seen at every read, stays');
  });
});
