/**
 * --metrics-pod-labels over the in-memory store, table-driven: pod labels
 * joined onto a cgroup's series, and what a change of them does. The old
 * series stops at the change and stays until the TTL; the new labels count
 * from the change on; a change back continues the old series. Every read
 * checks that no series decreased and that, until a series retires, the
 * sum over the series is what the store counted. No root, no kernel.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { labelKey } from '../../src/cardinality/series-limiter';
import { FilterLabel } from '../../src/labels/label-filter';
import { PodLabels } from '../../src/labels/pod-labels';
import { metricCardinality } from '../../src/cardinality/cardinality-report';
import { Cgroup, COUNTER, World } from './helpers/world';

const TTL = 2000;

type Step =
  | { count: string; n: number }
  | { labels: Record<string, string>; pods: string[] }
  /** Sweeps (and reads, as scrapes would) for this long. */
  | { run: number }
  /** Exactly these series: label set -> value. */
  | { expect: Array<[Record<string, string>, number]> };

interface Case {
  name: string;
  filter: FilterLabel[];
  /** Pod name -> its labels at the start. */
  pods: Record<string, Record<string, string>>;
  steps: Step[];
}

const WEB = { namespace: 'shop', workload: 'web' };
const web1 = (extra: Record<string, string>): Record<string, string> => ({ ...WEB, pod: 'web-1', ...extra });
const APP = 'app.kubernetes.io/name';

const CASES: Case[] = [
  {
    name: 'a label changes after fold-in: the old series stays until the TTL, the new one counts from the change',
    filter: ['namespace', 'workload', 'pod'],
    pods: { 'web-1': { team: 'a', [APP]: 'web' } },
    steps: [
      { count: 'web-1', n: 100 },
      { run: TTL },
      { expect: [[web1({ team: 'a', app_kubernetes_io_name: 'web' }), 100]] },
      { labels: { team: 'b', [APP]: 'web' }, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 30 },
      { expect: [[web1({ team: 'a', app_kubernetes_io_name: 'web' }), 100], [web1({ team: 'b', app_kubernetes_io_name: 'web' }), 30]] },
      { run: TTL / 2 },
      { expect: [[web1({ team: 'a', app_kubernetes_io_name: 'web' }), 100], [web1({ team: 'b', app_kubernetes_io_name: 'web' }), 30]] },
      { run: TTL },
      { count: 'web-1', n: 5 },
      { expect: [[web1({ team: 'b', app_kubernetes_io_name: 'web' }), 35]] },
    ],
  },
  {
    name: 'a label changes while the cgroup is still counted raw: what it counted stays with the old labels',
    filter: ['namespace', 'workload', 'pod'],
    pods: { 'web-1': { team: 'a' } },
    steps: [
      { count: 'web-1', n: 100 },
      { expect: [[web1({ team: 'a' }), 100]] },
      { labels: { team: 'b' }, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 30 },
      { run: TTL / 2 },
      { expect: [[web1({ team: 'a' }), 100], [web1({ team: 'b' }), 30]] },
    ],
  },
  {
    name: 'a change back within the TTL continues the old series',
    filter: ['namespace', 'workload', 'pod'],
    pods: { 'web-1': { team: 'a' } },
    steps: [
      { count: 'web-1', n: 100 },
      { run: TTL },
      { labels: { team: 'b' }, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 30 },
      { labels: { team: 'a' }, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 20 },
      { expect: [[web1({ team: 'a' }), 120], [web1({ team: 'b' }), 30]] },
      { run: 2 * TTL },
      { expect: [[web1({ team: 'a' }), 120]] },
    ],
  },
  {
    name: 'a label outside the allowlist changes: nothing moves',
    filter: ['namespace', 'workload', 'pod'],
    pods: { 'web-1': { team: 'a', 'pod-template-hash': '1' } },
    steps: [
      { count: 'web-1', n: 100 },
      { run: TTL },
      { labels: { team: 'a', 'pod-template-hash': '2' }, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 30 },
      { run: 2 * TTL },
      { expect: [[web1({ team: 'a' }), 130]] },
    ],
  },
  {
    name: 'a label is removed: the new series has no such label (not an empty one)',
    filter: ['namespace', 'workload', 'pod'],
    pods: { 'web-1': { team: 'a' } },
    steps: [
      { count: 'web-1', n: 100 },
      { run: TTL },
      { labels: {}, pods: ['web-1'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 30 },
      { expect: [[web1({ team: 'a' }), 100], [web1({}), 30]] },
    ],
  },
  {
    name: 'without pod in the filter, pods share a series while their labels agree, and part when one changes',
    filter: ['namespace', 'workload'],
    pods: { 'web-1': { team: 'a' }, 'web-2': { team: 'a' } },
    steps: [
      { count: 'web-1', n: 100 },
      { count: 'web-2', n: 10 },
      { run: TTL },
      { expect: [[{ ...WEB, team: 'a' }, 110]] },
      { labels: { team: 'b' }, pods: ['web-2'] },
      { run: TTL / 4 },
      { count: 'web-1', n: 1 },
      { count: 'web-2', n: 2 },
      // team=a lives on in web-1: it is not retired after the TTL.
      { run: 2 * TTL },
      { expect: [[{ ...WEB, team: 'a' }, 111], [{ ...WEB, team: 'b' }, 2]] },
    ],
  },
];

/** Reads as a scrape would: series key -> value of test_events_total. */
function shown(w: World): Map<string, number> {
  return new Map([...(w.read().get('test_events_total') ?? new Map())].map(([k, b]) => [k, b.get(0) ?? 0]));
}

describe('counting core: pod labels', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const w = new World({ filter: c.filter, seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 }, podLabels: PodLabels.parse(`team,${APP}`) });
      const cgroups = new Map<string, Cgroup>();
      for (const [pod, labels] of Object.entries(c.pods)) {
        const cg = w.addCgroup({ ...WEB, pod });
        cg.podLabels = labels;
        cgroups.set(pod, cg);
      }
      const last = new Map<string, number>();
      let retired = false;
      const check = (): Map<string, number> => {
        const s = shown(w);
        for (const [key, v] of s) assert.ok(v >= (last.get(key) ?? 0), `${key} decreased from ${last.get(key)} to ${v}`);
        for (const key of last.keys()) if (!s.has(key)) retired = true;
        last.clear();
        for (const [key, v] of s) last.set(key, v);
        if (!retired) assert.equal([...s.values()].reduce((a, b) => a + b, 0), w.truth.get(`${COUNTER}:0`) ?? 0, 'the sum over series is what was counted');
        return s;
      };
      for (const step of c.steps) {
        if ('count' in step) w.count(cgroups.get(step.count)!, COUNTER, step.n);
        else if ('labels' in step) w.setPodLabels(step.labels, ...step.pods.map((p) => cgroups.get(p)!));
        else if ('run' in step) {
          for (let t = 0; t < step.run; t += TTL / 8) {
            w.now += TTL / 8;
            w.sweep();
            check();
          }
        } else {
          assert.deepEqual(check(), new Map(step.expect.map(([labels, v]) => [labelKey(labels), v])));
        }
      }
    });
  }
});

describe('counting core: pod labels past the series limit', () => {
  it('count in the limit, roll up with pod, keep namespace and workload sums exact, and show in the accounting', () => {
    // 6 series, 3 of them own: 3 places for roll-ups.
    const w = new World({ filter: ['namespace', 'workload', 'pod'], seriesLimit: 6, ttlMs: TTL, store: { capacity: 1000 }, rollupReserve: 50, podLabels: PodLabels.parse('team') });
    const pods = ['web-1', 'web-2', 'web-3', 'web-4', 'web-5'].map((pod, i) => {
      const cg = w.addCgroup({ ...WEB, pod });
      cg.podLabels = { team: i % 2 === 0 ? 'a' : 'b' };
      return cg;
    });
    pods.forEach((cg, i) => w.count(cg, COUNTER, 1000 * (i + 1)));
    w.now += TTL / 4;
    w.sweep();
    const s = w.core.read(w.store.dump(), w.store.dumpOverflow(), w.now).series.get('test_events_total')!;
    const shown = new Map(s.map((x) => [labelKey(x.labels), x.value]));
    // The first three have series of their own, pod labels included; the others fold
    // into their workload, with neither pod nor team (team goes with pod).
    assert.deepEqual(shown, new Map([
      [labelKey(web1({ team: 'a' })), 1000],
      [labelKey({ ...WEB, pod: 'web-2', team: 'b' }), 2000],
      [labelKey({ ...WEB, pod: 'web-3', team: 'a' }), 3000],
      [labelKey({ ...WEB, overflow: 'true' }), 9000],
    ]));
    const f = w.core.families.family('test_events_total')!;
    const report = metricCardinality(f, s, 0, 5, w.now);
    assert.equal(report.series, 3);
    assert.deepEqual(report.rolledUp.map((l) => [l.level, l.series, l.labelSets]), [['workload', 1, 2], ['namespace', 0, 0], ['flat', 0, 0]]);
    assert.deepEqual(report.topValues.team, [{ value: 'a', series: 2 }, { value: 'b', series: 1 }]);
    assert.equal([...shown.values()].reduce((a, b) => a + b, 0), w.truth.get(`${COUNTER}:0`), 'the total is exact');
  });
});
