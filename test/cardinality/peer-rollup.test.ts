/**
 * peer_class in the series limit and roll-up (docs/peers.md, docs/rollup.md):
 * each (label set, peer class) is a series of its own and counts against the
 * limit; a rolled-up series keeps peer_class at every level, so it is the
 * last label dropped (only at flat), and sum by (peer_class) stays exact as
 * long as nothing reaches flat.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { LabelFilter } from '../../src/labels/label-filter';
import { RollupPlan } from '../../src/cardinality/rollup-plan';
import { Destination, labelKey, SeriesLimiter } from '../../src/cardinality/series-limiter';

type Labels = Record<string, string>;

const where = (d: Destination, labels: Labels): string => (d.at === 'own' ? labelKey(labels) : d.at === 'flat' ? 'flat' : labelKey(d.series.labels));

describe('peer_class under the series limit', () => {
  const plan = new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']));

  it('is kept at every roll-up level and dropped only at flat', () => {
    const labels = { namespace: 'shop', workload: 'web', pod: 'web-a', peer_class: 'internet' };
    assert.deepEqual(plan.levels, ['workload', 'namespace']);
    assert.deepEqual(plan.rolledLabels(labels, 0), { namespace: 'shop', workload: 'web', peer_class: 'internet', overflow: 'true' });
    assert.deepEqual(plan.rolledLabels(labels, 1), { namespace: 'shop', peer_class: 'internet', overflow: 'true' });
    assert.equal(plan.rolledLabels(labels, 2), undefined, 'flat: nothing but overflow="true"');
  });

  it('counts each (label set, peer class) as a series, and rolls them up by class', () => {
    // Limit 8, reserve 50%: 4 own series, 4 places for rolled-up ones.
    const l = new SeriesLimiter('tally_tcp_peer_sent_bytes_total', 8, new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']), undefined, 50));
    const arrive: Labels[] = [];
    for (const p of ['web-a', 'web-b', 'web-c']) for (const c of ['vpc', 'internet']) arrive.push({ namespace: 'shop', workload: 'web', pod: p, peer_class: c });
    const got = arrive.map((labels) => where(l.place(labelKey(labels), labels, 0), labels));
    // web-a and web-b take the 4 own places, one per class.
    assert.deepEqual(got.slice(0, 4), arrive.slice(0, 4).map((x) => labelKey(x)));
    assert.equal(l.series, 4);
    // web-c rolls up (to its workload or its namespace, as the reserve allows), each class into a series of that class.
    for (const [i, labels] of arrive.slice(4).entries()) {
      const series = JSON.parse(got[4 + i]) as Labels;
      assert.equal(series.overflow, 'true');
      assert.equal(series.namespace, 'shop');
      assert.equal(series.peer_class, labels.peer_class, `${got[4 + i]} keeps the class of ${JSON.stringify(labels)}`);
    }
    assert.equal(l.rolledUpSeries, 2);
  });
});
