/**
 * Conservation and monotonicity of the counting core (design.md, invariants
 * 1 and 2), over thousands of generated event histories on the in-memory
 * store: pods come and go, labels resolve late, maps fill up, limits are 1.
 * Every read is checked (no series decreases, nothing is shown that was not
 * counted); once everything has resolved and been swept, the sum over all
 * series, overflow included, equals what was counted. No root, no kernel.
 *
 * A failure names its seed: `history(SHAPES[i], seed)` replays it.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { FilterLabel } from '../../src/labels/label-filter';
import { Prng } from './helpers/prng';
import { Ledger } from './helpers/ledger';
import { Cgroup, COUNTER, HISTOGRAM, World } from './helpers/world';

interface Shape {
  name: string;
  filter: FilterLabel[];
  seriesLimit: number;
  ttlMs: number;
  capacity: number;
  mappingCapacity?: number;
  /** Chance per step that a pod starts, and that one goes. */
  churn: number;
  /** Share of pods whose labels are final only some seconds after their first event. */
  lateLabels: number;
  /** Share of events counted by a matchNamespaces hook. */
  pendingHook: number;
  histories: number;
  /** What the shape is for: each must happen in some of its histories. */
  reaches: Reached[];
  /** Percent of the limit kept for rolled-up series. */
  rollupReserve?: number;
  /**
   * Once settled, sums by namespace, and by workload where a workload has a
   * rolled-up series, equal what each counted (histories where no series ends).
   */
  exactByGroup?: boolean;
}

type Reached = 'fold-in' | 'staleness' | 'full counter map' | 'full mapping table' | 'overflow series' | 'unmatched namespace' | 'promotion' | 'rolled-up series';

export interface Outcome {
  problem?: string;
  reached: Set<Reached>;
}

const ROOMY = { seriesLimit: 1000, ttlMs: 2000, capacity: 100_000, churn: 0.1, lateLabels: 0.3, pendingHook: 0, histories: 250 };

export const SHAPES: Shape[] = [
  { name: 'pods with room everywhere', filter: ['namespace', 'workload', 'pod'], ...ROOMY, reaches: ['fold-in', 'staleness', 'promotion'] },
  { name: 'churn: pods come and go well past the TTL', filter: ['namespace', 'workload', 'pod'], ...ROOMY, churn: 0.6, ttlMs: 400, reaches: ['fold-in', 'staleness'] },
  { name: 'a full counter map: updates land in the overflow entries', filter: ['workload', 'pod'], ...ROOMY, capacity: 4, churn: 0.3, reaches: ['full counter map', 'overflow series'] },
  { name: 'a full mapping table: cgroups stay raw', filter: ['workload'], ...ROOMY, mappingCapacity: 1, churn: 0.3, reaches: ['full mapping table', 'fold-in'] },
  { name: 'a series limit of 1', filter: ['workload', 'binary'], ...ROOMY, seriesLimit: 1, churn: 0.3, reaches: ['overflow series', 'staleness'] },
  { name: 'a matchNamespaces hook: counts wait for the namespace', filter: ['workload'], ...ROOMY, lateLabels: 0.6, pendingHook: 0.4, churn: 0.3, reaches: ['unmatched namespace', 'fold-in'] },
  { name: 'not keyed by cgroup', filter: ['binary'], ...ROOMY, reaches: ['promotion'] },
  {
    name: 'roll-up under churn: pods past the limit fold into their workload or namespace',
    filter: ['namespace', 'workload', 'pod'],
    ...ROOMY,
    ...{ seriesLimit: 6, rollupReserve: 50, churn: 0.5, ttlMs: 400 },
    reaches: ['rolled-up series', 'staleness', 'fold-in'],
  },
  {
    name: 'roll-up without churn: sums by namespace exact, and by workload where it has a rolled-up series',
    filter: ['namespace', 'workload', 'pod', 'binary'],
    ...ROOMY,
    ...{ seriesLimit: 8, rollupReserve: 50, churn: 0 },
    exactByGroup: true,
    reaches: ['rolled-up series', 'fold-in'],
  },
  { name: 'roll-up with limits of 1', filter: ['namespace', 'workload', 'pod', 'binary'], ...ROOMY, ...{ seriesLimit: 1, churn: 0.4, ttlMs: 300 }, reaches: ['overflow series', 'staleness'] },
  {
    name: 'everything at once, limits of 1',
    filter: ['namespace', 'workload', 'binary'],
    ...ROOMY,
    ...{ seriesLimit: 1, capacity: 6, mappingCapacity: 1, churn: 0.6, ttlMs: 300, pendingHook: 0.3, lateLabels: 0.5 },
    reaches: ['full counter map', 'full mapping table', 'overflow series', 'staleness'],
  },
];

/** Plays one generated history; returns what went wrong, or undefined. */
export function history(shape: Shape, seed: number): Outcome {
  const r = new Prng(seed);
  const w = new World({
    filter: shape.filter,
    seriesLimit: shape.seriesLimit,
    ttlMs: shape.ttlMs,
    store: { capacity: shape.capacity, mappingCapacity: shape.mappingCapacity },
    admitted: ['ns0'],
    rollupReserve: shape.rollupReserve,
  });
  const ledger = new Ledger(w);
  const reached = new Set<Reached>();
  const sweep = (): void => {
    w.sweep();
    const { counts } = w.core;
    if (counts.foldedEntries > 0) reached.add('fold-in');
    if (counts.staleLabelSets > 0) reached.add('staleness');
    if (counts.unmappedMapFull > 0) reached.add('full mapping table');
    if (counts.unmatchedEntries > 0) reached.add('unmatched namespace');
    if (w.store.promotedCount > 0) reached.add('promotion');
    if (w.store.stats()[0] > 0n) reached.add('full counter map');
  };
  const live: Cgroup[] = [];
  const gone: Cgroup[] = [];
  const start = (): void => {
    const workload = `w${r.int(0, 3)}`;
    const values = { namespace: `ns${r.int(0, 2)}`, workload, pod: `${workload}-${r.int(0, 5)}`, container: 'app' };
    live.push(w.addCgroup(values, r.chance(shape.lateLabels) ? r.int(100, 4000) : 0));
  };
  const stop = (): void => {
    const c = live.splice(r.int(0, live.length - 1), 1)[0];
    const how = r.int(0, 2); // the container restarted, the pod was deleted, or deleted with its cgroup lingering
    if (how !== 2) c.removedAt = w.now;
    if (how !== 0) c.deletedAt = w.now - r.int(0, 500);
    gone.push(c);
  };
  for (let i = r.int(1, 6); i > 0; i--) start();
  const steps = r.int(10, 40);
  for (let step = 0; step < steps; step++) {
    w.now += r.int(50, 700);
    if (r.chance(shape.churn)) start();
    if (r.chance(shape.churn) && live.length > 1) stop();
    for (let n = r.int(0, 5); n > 0; n--) {
      // Now and then a socket that outlived its cgroup.
      const c = gone.length > 0 && r.chance(0.15) ? r.pick(gone) : r.pick(live);
      const binary = r.pick([2n, 3n]);
      if (r.chance(shape.pendingHook)) w.count(c, COUNTER, r.int(1, 100), { pendingHook: true, binary });
      else if (r.chance(0.3)) w.count(c, HISTOGRAM, r.int(1, 1000), { bucket: r.int(0, 5), binary });
      else w.count(c, COUNTER, r.int(1, 100), { binary });
    }
    // A scrape follows every sweep, as Prometheus does at least as often as the TTL.
    let problem: string | undefined;
    if (r.chance(0.6)) {
      sweep();
      problem = ledger.observe();
    } else if (r.chance(0.5)) {
      problem = ledger.observe();
    }
    if (ledger.showsOverflow()) reached.add('overflow series');
    const [hist, sum] = ['test_bytes', 'test_bytes_total'].map((n) => w.core.families.family(n)!.limiter);
    if (JSON.stringify([hist.series, hist.levels()]) !== JSON.stringify([sum.series, sum.levels()])) problem ??= `the sum's limiter placed otherwise than its histogram's: ${JSON.stringify(sum.levels())} vs ${JSON.stringify(hist.levels())}`;
    if (ledger.rolledUp() > 0) reached.add('rolled-up series');
    if (problem) return { problem: `step ${step}: ${problem}`, reached };
  }
  // Quiet from here: every label final, every removal past its TTL, everything swept.
  w.now += 10_000;
  for (let i = 0; i < 6; i++) {
    w.now += 200;
    sweep();
    const problem = ledger.observe();
    if (problem) return { problem: `settling: ${problem}`, reached };
  }
  return { problem: ledger.conserved() ?? (shape.exactByGroup ? ledger.exactByGroup() : undefined), reached };
}

describe('counting core: generated histories', () => {
  for (const [i, shape] of SHAPES.entries()) {
    it(`${shape.name}: ${shape.histories} histories, no series decreases, every count shown once`, () => {
      const reached = new Set<Reached>();
      for (let seed = 1; seed <= shape.histories; seed++) {
        const o = history(shape, seed);
        assert.equal(o.problem, undefined, `history(SHAPES[${i}], ${seed}): ${o.problem}`);
        for (const x of o.reached) reached.add(x);
      }
      for (const x of shape.reaches) assert.ok(reached.has(x), `no history reached ${x}`);
    });
  }
});
