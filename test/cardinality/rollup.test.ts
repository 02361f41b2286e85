/**
 * The roll-up rules of the series limiter (docs/rollup.md), table-driven:
 * where each new label set goes, at which level, and what stays exact.
 * Then generated sequences of label sets arriving and going stale, checked
 * against the rules' promises after every step.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { FilterLabel, LabelFilter } from '../../src/labels/label-filter';
import { parseRollupOrder, RollupPlan } from '../../src/cardinality/rollup-plan';
import { Destination, labelKey, SeriesLimiter } from '../../src/cardinality/series-limiter';
import { Prng } from './helpers/prng';

type Labels = Record<string, string>;

function limiter(filter: FilterLabel[], limit: number, reserve: number, order?: FilterLabel[]): SeriesLimiter {
  const f = new LabelFilter(filter);
  return new SeriesLimiter('m', limit, new RollupPlan(f, order, reserve));
}

/** Where a destination puts a label set, as the series it lands in prints. */
function where(d: Destination, labels: Labels): string {
  if (d.at === 'own') return labelKey(labels);
  if (d.at === 'flat') return 'flat';
  return labelKey(d.series.labels);
}

const pod = (namespace: string, workload: string, p: string): Labels => ({ namespace, workload, pod: p });

interface Case {
  name: string;
  filter: FilterLabel[];
  order?: FilterLabel[];
  limit: number;
  reserve: number;
  arrive: Labels[];
  /** Where each arrival goes: 'own', 'flat' or the rolled-up series' labels. */
  expect: Array<'own' | 'flat' | Labels>;
}

const CASES: Case[] = [
  {
    name: 'a pod past the limit folds into its workload, then its namespace once the workload level is full',
    filter: ['namespace', 'workload', 'pod'],
    limit: 8,
    reserve: 50,
    arrive: [pod('a', 'w1', 'p1'), pod('a', 'w1', 'p2'), pod('a', 'w1', 'p3'), pod('a', 'w1', 'p4'), pod('a', 'w1', 'p5'), pod('a', 'w2', 'p6'), pod('a', 'w3', 'p7'), pod('a', 'w1', 'p8'), pod('a', 'w4', 'p9')],
    expect: [
      'own',
      'own',
      'own',
      'own',
      { namespace: 'a', workload: 'w1', overflow: 'true' },
      { namespace: 'a', workload: 'w2', overflow: 'true' },
      // Two places left: one kept for namespace a's coarsest series, one for a namespace not seen yet. w3 goes to a's.
      { namespace: 'a', overflow: 'true' },
      { namespace: 'a', workload: 'w1', overflow: 'true' },
      { namespace: 'a', overflow: 'true' },
    ],
  },
  {
    name: 'a finer level leaves one place for every namespace known, own label sets included',
    filter: ['namespace', 'workload', 'pod'],
    limit: 6,
    reserve: 50,
    arrive: [pod('a', 'w', 'p1'), pod('b', 'w', 'p2'), pod('c', 'w', 'p3'), pod('a', 'x', 'p4'), pod('b', 'x', 'p5'), pod('c', 'x', 'p6'), pod('d', 'x', 'p7')],
    expect: ['own', 'own', 'own', { namespace: 'a', overflow: 'true' }, { namespace: 'b', overflow: 'true' }, { namespace: 'c', overflow: 'true' }, 'flat'],
  },
  {
    name: 'a limit of 1: no share is kept, the rest is flat',
    filter: ['namespace', 'workload', 'pod'],
    limit: 1,
    reserve: 25,
    arrive: [pod('a', 'w', 'p1'), pod('a', 'w', 'p2'), pod('b', 'v', 'p3')],
    expect: ['own', 'flat', 'flat'],
  },
  {
    name: 'one roll-up label in the filter: no level between own series and the flat one, and no share kept',
    filter: ['workload'],
    limit: 2,
    reserve: 50,
    arrive: [{ workload: 'a' }, { workload: 'b' }, { workload: 'c' }],
    expect: ['own', 'own', 'flat'],
  },
  {
    name: 'labels outside the filter take no part: binary is dropped first of the filter when container and pod are out',
    filter: ['namespace', 'workload', 'binary'],
    limit: 6,
    reserve: 50,
    arrive: [1, 2, 3, 4].map((i) => ({ namespace: 'a', workload: 'w', binary: `/bin/${i}` })),
    expect: ['own', 'own', 'own', { namespace: 'a', workload: 'w', overflow: 'true' }],
  },
  {
    name: 'the order is a flag: namespace dropped before workload',
    filter: ['namespace', 'workload', 'pod'],
    order: ['pod', 'namespace', 'workload'],
    limit: 3,
    reserve: 34,
    arrive: [pod('a', 'w', 'p1'), pod('a', 'w', 'p2'), pod('a', 'w', 'p3'), pod('b', 'w', 'p4')],
    expect: ['own', 'own', { workload: 'w', overflow: 'true' }, { workload: 'w', overflow: 'true' }],
  },
  {
    name: "a policy metric's own labels stay at every level but the flat one",
    filter: ['namespace', 'workload', 'pod'],
    limit: 2,
    reserve: 50,
    arrive: [
      { ...pod('a', 'w', 'p1'), syscall: 'read' },
      { ...pod('a', 'w', 'p2'), syscall: 'read' },
      { ...pod('a', 'w', 'p3'), syscall: 'write' },
    ],
    expect: ['own', { namespace: 'a', syscall: 'read', overflow: 'true' }, 'flat'],
  },
  {
    name: 'a host cgroup (no namespace) rolls up to its workload, never to an empty label set',
    filter: ['namespace', 'workload', 'pod'],
    limit: 4,
    reserve: 75,
    arrive: [{ workload: 'sshd.service' }, { workload: 'cron.service' }, { workload: 'nginx.service' }, { workload: 'nginx.service', pod: 'x' }],
    expect: ['own', { workload: 'cron.service', overflow: 'true' }, { workload: 'nginx.service', overflow: 'true' }, { workload: 'nginx.service', overflow: 'true' }],
  },
];

describe('roll-up: where a label set past the limit goes', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const l = limiter(c.filter, c.limit, c.reserve, c.order);
      const got = c.arrive.map((labels) => where(l.place(labelKey(labels), labels, 0), labels));
      const want = c.expect.map((e, i) => (e === 'own' ? labelKey(c.arrive[i]) : e === 'flat' ? 'flat' : labelKey(e)));
      assert.deepEqual(got, want);
      // A label set stays where it went.
      assert.deepEqual(c.arrive.map((labels) => where(l.place(labelKey(labels), labels, 1), labels)), want);
    });
  }

  it('a rolled-up series with no member left ends after a while, at the end of a read, and frees its place', () => {
    const l = new SeriesLimiter('m', 2, new RollupPlan(new LabelFilter(['namespace', 'workload', 'pod']), undefined, 50), Infinity, 1000);
    const [p1, p2, p3] = [pod('a', 'w', 'p1'), pod('a', 'w', 'p2'), pod('b', 'v', 'p3')];
    for (const p of [p1, p2]) l.place(labelKey(p), p);
    assert.deepEqual(l.levels(), [
      { level: 'workload', series: 0, labelSets: 0 },
      { level: 'namespace', series: 1, labelSets: 1 },
      { level: 'flat', series: 0, labelSets: 0 },
    ]);
    assert.equal(where(l.place(labelKey(p3), p3), p3), 'flat', 'no room for namespace b');
    assert.equal(l.forget(labelKey(p2)).at, 'rolled');
    const ns = labelKey({ namespace: 'a', overflow: 'true' });
    l.forgetUnseen(5000);
    l.forgetUnseen(5999);
    assert.ok(l.rolledSeries(ns), 'idle for less than 1000 ms: it lives on');
    l.forgetUnseen(6000);
    assert.equal(l.rolledSeries(ns), undefined);
    const p4 = pod('b', 'v', 'p4');
    assert.equal(where(l.place(labelKey(p4), p4), p4), labelKey({ namespace: 'b', overflow: 'true' }));
  });

  it('--metrics-rollup-order must name every label of the filter, once', () => {
    const f = new LabelFilter(['namespace', 'workload', 'pod']);
    assert.deepEqual(parseRollupOrder('pod,namespace,workload', f), ['pod', 'namespace', 'workload']);
    assert.throws(() => parseRollupOrder('pod,workload', f), /leaves out namespace/);
    assert.throws(() => parseRollupOrder('pod,pod,workload,namespace', f), /appears twice/);
    assert.throws(() => parseRollupOrder('pod,team,workload,namespace', f), /unknown label "team"/);
  });
});

const seriesOf = (l: SeriesLimiter): number => l.series + l.rolledUpSeries;

/** A folded label set's keys at the finer levels it passed (the coarsest level aside). */
function finerKeys(plan: RollupPlan, labels: Labels, w: string): string[] {
  const out: string[] = [];
  if (w === labelKey(labels)) return out;
  for (let level = 0; level < plan.levels.length - 1; level++) {
    const rolled = plan.rolledLabels(labels, level);
    if (!rolled || w === labelKey(rolled)) break;
    out.push(labelKey(rolled));
  }
  return out;
}

/** Generated arrivals and departures over 3 namespaces x 3 workloads x 6 pods x 2 binaries. */
function generated(seed: number, limit: number, reserve: number): string | undefined {
  const r = new Prng(seed);
  const filter: FilterLabel[] = ['namespace', 'workload', 'pod', 'binary'];
  const l = limiter(filter, limit, reserve);
  const plan = l.plan;
  const live = new Map<string, { where: string; finer: string[] }>();
  for (let step = 0; step < 120; step++) {
    if (live.size > 0 && r.chance(0.3)) {
      const key = r.pick([...live.keys()]);
      l.forget(key);
      live.delete(key);
      continue;
    }
    const labels: Labels = { namespace: `n${r.int(0, 2)}`, workload: `w${r.int(0, 2)}`, pod: `p${r.int(0, 5)}`, binary: `/b${r.int(0, 1)}` };
    const key = labelKey(labels);
    const full = seriesOf(l) >= limit;
    const w = where(l.place(key, labels, step), labels);
    const had = live.get(key);
    if (had && had.where !== w) return `step ${step}: ${key} moved from ${had.where} to ${w}`;
    if (!had) live.set(key, { where: w, finer: finerKeys(plan, labels, w) });
    // The limit holds, flat series aside.
    const total = seriesOf(l);
    if (total > limit) return `step ${step}: ${total} series over the limit of ${limit}`;
    // Flat only when every place was taken.
    if (!had && w === 'flat' && !full) return `step ${step}: ${key} went flat with places left`;
    // No key of a finer level is split: while a series exists for it, no label set under it is at a
    // coarser level. (The coarsest level may take a namespace whose label set went flat while all was full.)
    for (const [k, x] of live) {
      for (const f of x.finer) if (l.rolledSeries(f)) return `step ${step}: ${k} is at ${x.where}, coarser than the series ${f} that exists`;
    }
  }
  return undefined;
}

describe('roll-up: generated arrivals and departures', () => {
  for (const [limit, reserve] of [[1, 25], [2, 50], [6, 50], [12, 25], [20, 50], [40, 25]]) {
    it(`limit ${limit}, ${reserve}% kept: no label set moves, the limit holds, flat only when full, no key split across levels`, () => {
      for (let seed = 1; seed <= 150; seed++) {
        const problem = generated(seed, limit, reserve);
        assert.equal(problem, undefined, `generated(${seed}, ${limit}, ${reserve}): ${problem}`);
      }
    });
  }
});
