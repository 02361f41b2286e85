/** Series churn as the limiter counts it: series begun and ended, in total and in the last minute. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { LabelFilter } from '../../src/labels/label-filter';
import { RollupPlan } from '../../src/cardinality/rollup-plan';
import { labelKey, SeriesLimiter } from '../../src/cardinality/series-limiter';
import { SeriesChurn } from '../../src/cardinality/series-churn';

describe('series churn', () => {
  it('counts the last minute in ten-second buckets', () => {
    const c = new SeriesChurn();
    const t0 = 1_700_000_000_000;
    for (const [at, kind] of [[0, 'c'], [5_000, 'c'], [15_000, 'r'], [59_000, 'c'], [65_000, 'r']] as const) {
      if (kind === 'c') c.created(t0 + at);
      else c.retired(t0 + at);
    }
    assert.deepEqual(c.lastMinute(t0 + 65_000), { created: 1, retired: 2 }, 'the first ten seconds have left the window');
    assert.deepEqual(c.lastMinute(t0 + 200_000), { created: 0, retired: 0 });
    assert.deepEqual([c.createdTotal, c.retiredTotal], [3, 2]);
  });

  it('a limiter counts own and rolled-up series begun, and ended; label sets joining a series are no new series', () => {
    const l = new SeriesLimiter('m', 4, new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']), undefined, 50), Infinity, 1000);
    const pod = (p: string): Record<string, string> => ({ namespace: 'a', workload: 'w', pod: p });
    for (const p of ['p1', 'p2', 'p3', 'p4', 'p5']) l.place(labelKey(pod(p)), pod(p), 0);
    assert.equal(l.churn.createdTotal, 3, 'two own series and one rolled-up series, which p4 and p5 join');
    l.forget(labelKey(pod('p1')));
    for (const p of ['p3', 'p4', 'p5']) l.forget(labelKey(pod(p)));
    l.forgetUnseen(500);
    assert.equal(l.churn.retiredTotal, 1, 'the rolled-up series lives on a while with no member');
    l.forgetUnseen(1500);
    assert.equal(l.churn.retiredTotal, 2);
  });
});
