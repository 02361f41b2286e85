/**
 * Peer labels in the series limit and roll-up (docs/peers.md, docs/rollup.md):
 * each (label set, peer) is a series of its own and counts against the
 * limit. A metric by peer rolls up peer_service before workload and
 * peer_namespace before namespace; peer_class is kept at every level, the
 * last label dropped (only at flat), so sum by (namespace, peer_class) stays
 * exact as long as nothing reaches flat.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { FilterLabel, LabelFilter } from '../../src/labels/label-filter';
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

describe('peer_namespace and peer_service under the series limit', () => {
  const base = new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod', 'binary']));
  const plan = base.withPeerLabels({ namespace: 'peer_namespace', service: 'peer_service' });
  const labels = { namespace: 'shop', workload: 'web', pod: 'web-a', binary: '/bin/web', peer_class: 'cross-zone', peer_namespace: 'data', peer_service: 'db' };

  it('drop peer_service before workload and peer_namespace before namespace; peer_class stays until flat', () => {
    assert.deepEqual(plan.order, ['pod', 'binary', 'peer_service', 'workload', 'peer_namespace', 'namespace']);
    assert.deepEqual(plan.levels, ['binary', 'peer_service', 'workload', 'peer_namespace', 'namespace']);
    const at = (level: number): Labels | undefined => plan.rolledLabels(labels, level);
    assert.deepEqual(at(0), { namespace: 'shop', workload: 'web', binary: '/bin/web', peer_class: 'cross-zone', peer_namespace: 'data', peer_service: 'db', overflow: 'true' });
    assert.deepEqual(at(1), { namespace: 'shop', workload: 'web', peer_class: 'cross-zone', peer_namespace: 'data', peer_service: 'db', overflow: 'true' });
    assert.deepEqual(at(2), { namespace: 'shop', workload: 'web', peer_class: 'cross-zone', peer_namespace: 'data', overflow: 'true' });
    assert.deepEqual(at(3), { namespace: 'shop', peer_class: 'cross-zone', peer_namespace: 'data', overflow: 'true' });
    assert.deepEqual(at(4), { namespace: 'shop', peer_class: 'cross-zone', overflow: 'true' });
    assert.equal(at(5), undefined, 'flat');
  });

  it('are left alone by metrics without peers, and one plan is made per set of names', () => {
    assert.equal(base.withPeerLabels({}), base);
    assert.equal(base.withPeerLabels({ namespace: 'peer_namespace', service: 'peer_service' }), plan);
    assert.deepEqual(base.levels, ['binary', 'workload', 'namespace']);
  });

  const cases: Array<[filter: FilterLabel[], order: string[]]> = [
    [['workload'], ['peer_service', 'peer_namespace', 'workload']],
    [['namespace'], ['peer_service', 'peer_namespace', 'namespace']],
    [['namespace', 'pod'], ['pod', 'peer_service', 'peer_namespace', 'namespace']],
    [[], []], // no roll-up at all: everything past the limit is flat
  ];
  for (const [filter, order] of cases) {
    it(`with the filter ${filter.join(',') || '(none)'} the order is ${order.join(', ') || 'empty'}`, () => {
      assert.deepEqual(new RollupPlan(new LabelFilter(filter)).withPeerLabels({ namespace: 'peer_namespace', service: 'peer_service' }).order, order);
    });
  }

  it("under a full limit, a namespace's peers by class stay exact: services fold before classes do", () => {
    // Limit 6, reserve 50%: 3 own series, 3 places for rolled-up ones.
    const l = new SeriesLimiter('tally_tcp_peer_sent_bytes_total', 6, new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']), undefined, 50).withPeerLabels({ namespace: 'peer_namespace', service: 'peer_service' }));
    const bytes = new Map<string, number>();
    let n = 0;
    for (const pod of ['a', 'b', 'c', 'd']) {
      for (const [cls, svc] of [['same-zone', 's1'], ['same-zone', 's2'], ['cross-zone', 's3'], ['cross-zone', 's4']]) {
        const labels = { namespace: 'shop', workload: 'web', pod, peer_class: cls, peer_namespace: 'data', peer_service: svc };
        const dest = where(l.place(labelKey(labels), labels, 0), labels);
        const amount = 1000 + n++;
        bytes.set(dest, (bytes.get(dest) ?? 0) + amount);
        bytes.set(`truth ${cls}`, (bytes.get(`truth ${cls}`) ?? 0) + amount);
      }
    }
    assert.equal(bytes.get('flat'), undefined, 'nothing reached flat');
    // Sum by peer_class over every series (own and rolled up) is the truth.
    const byClass = (cls: string): number => [...bytes].filter(([k]) => k !== 'flat' && !k.startsWith('truth') && (JSON.parse(k) as Labels).peer_class === cls).reduce((a, [, v]) => a + v, 0);
    assert.equal(byClass('same-zone'), bytes.get('truth same-zone'));
    assert.equal(byClass('cross-zone'), bytes.get('truth cross-zone'));
    assert.ok(l.series <= 6, `at most the limit: ${l.series}`);
  });

  it('keeps a place per (namespace, peer class): a class first seen once the limit is full still gets its series', () => {
    // Limit 8, reserve 50%: 4 own series, 4 places for rolled-up ones. Two namespaces; each read knows every label set
    // before placing any, as SeriesReader does. The busy class of "shop" comes first and would take every place.
    const l = new SeriesLimiter('tally_tcp_peer_sent_bytes_total', 8, new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']), undefined, 50));
    const arrive: Labels[] = [];
    for (const w of ['a', 'b', 'c', 'd', 'e', 'f']) arrive.push({ namespace: 'shop', workload: w, pod: `${w}-1`, peer_class: 'vpc' });
    arrive.push({ namespace: 'shop', workload: 'g', pod: 'g-1', peer_class: 'internet' });
    arrive.push({ namespace: 'shop', workload: 'h', pod: 'h-1', peer_class: 'dns' });
    arrive.push({ namespace: 'bank', workload: 'i', pod: 'i-1', peer_class: 'internet' });
    const known = arrive.map((labels) => l.know(labelKey(labels), labels, 0));
    const got = arrive.map((labels, i) => where(l.placeKnown(known[i], labels, 0), labels));
    assert.ok(!got.includes('flat'), `nothing reached flat: ${got.join(' ')}`);
    for (const [i, labels] of arrive.entries()) {
      const series = JSON.parse(got[i]) as Labels;
      assert.deepEqual([series.namespace, series.peer_class], [labels.namespace, labels.peer_class], `${JSON.stringify(labels)} went to ${got[i]}`);
    }
    assert.ok(l.series + l.rolledUpSeries <= 8, `within the limit: ${l.series} own, ${l.rolledUpSeries} rolled up`);
  });
});
