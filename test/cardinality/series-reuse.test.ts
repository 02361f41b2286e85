/**
 * The reader keeps its series from read to read (series-read.ts) and resets
 * each as a read meets it: every read must still show exactly what was
 * counted, never a sum over reads, whatever came and went in between. Over
 * the in-memory store, table-driven; ground truth is what the case counted.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { labelKey } from '../../src/cardinality/series-limiter';
import { BUCKET_SUM } from '../../src/bpf/layout';
import { COUNTER, HISTOGRAM, World } from './helpers/world';

const TTL = 2000;
const key = (workload: string): string => labelKey({ workload });

/** Per series key: the counter's value, or the histogram's buckets. */
function shown(w: World, family: string): Record<string, number | Record<number, number>> {
  const out: Record<string, number | Record<number, number>> = {};
  for (const [k, b] of w.read().get(family) ?? new Map()) out[k] = family === 'test_bytes' ? Object.fromEntries(b) : b.get(0) ?? 0;
  return out;
}

interface Step {
  /** What happens before the read: counts by workload, a removal, time passing with sweeps. */
  count?: Record<string, number>;
  remove?: string;
  sweepMs?: number;
  /** The read's series: workload -> value. */
  want: Record<string, number>;
}

const cases: Array<{ name: string; steps: Step[] }> = [
  {
    name: 'reads with nothing new show the same values, not their sum',
    steps: [{ count: { web: 5, db: 7 }, want: { web: 5, db: 7 } }, { want: { web: 5, db: 7 } }, { want: { web: 5, db: 7 } }],
  },
  {
    name: 'counts between reads add once',
    steps: [{ count: { web: 5 }, want: { web: 5 } }, { count: { web: 3, db: 1 }, want: { web: 8, db: 1 } }, { count: { db: 1 }, want: { web: 8, db: 2 } }],
  },
  {
    name: 'a series that ended, then began again with the same labels, starts from what its new cgroup counts',
    steps: [
      { count: { web: 5, db: 7 }, want: { web: 5, db: 7 } },
      { remove: 'web', sweepMs: 3 * TTL, want: { db: 7 } },
      { count: { web: 2 }, want: { web: 2, db: 7 } },
      { want: { web: 2, db: 7 } },
    ],
  },
];

describe('series kept from read to read', () => {
  for (const c of cases) {
    it(c.name, () => {
      const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
      const cgroups = new Map<string, ReturnType<World['addCgroup']>>();
      for (const [i, step] of c.steps.entries()) {
        for (const [workload, n] of Object.entries(step.count ?? {})) {
          let cg = cgroups.get(workload);
          if (!cg || cg.removedAt !== undefined) cgroups.set(workload, (cg = w.addCgroup({ workload })));
          w.count(cg, COUNTER, n);
        }
        if (step.remove) cgroups.get(step.remove)!.removedAt = w.now;
        for (let t = 0; t < (step.sweepMs ?? 0); t += TTL / 4) {
          w.now += TTL / 4;
          w.sweep();
          w.read();
        }
        const want = Object.fromEntries(Object.entries(step.want).map(([wl, n]) => [key(wl), n]));
        assert.deepEqual(shown(w, 'test_events_total'), want, `read after step ${i + 1}`);
      }
    });
  }

  it('a histogram\'s buckets are reset at each read, not added to the last read\'s', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
    const web = w.addCgroup({ workload: 'web' });
    const observe = (value: number, bucket: number): void => w.count(web, HISTOGRAM, value, { bucket });
    observe(10, 3);
    observe(20, 3);
    observe(100, 5);
    assert.deepEqual(shown(w, 'test_bytes')[key('web')], { 3: 2, 5: 1, [BUCKET_SUM]: 130 });
    observe(40, 3);
    assert.deepEqual(shown(w, 'test_bytes')[key('web')], { 3: 3, 5: 1, [BUCKET_SUM]: 170 });
    assert.deepEqual(shown(w, 'test_bytes')[key('web')], { 3: 3, 5: 1, [BUCKET_SUM]: 170 }, 'a read with nothing new shows the same');
  });

  it('a family undefined and defined again under its name begins with new series', () => {
    const w = new World({ filter: ['workload'], seriesLimit: 100, ttlMs: TTL, store: { capacity: 1000 } });
    const web = w.addCgroup({ workload: 'web' });
    w.count(web, COUNTER, 5);
    assert.deepEqual(shown(w, 'test_events_total'), { [key('web')]: 5 });
    w.core.undefine([COUNTER]);
    w.core.define({ id: 99, name: 'test_events_total', help: 'Events.', type: 'counter' });
    w.count(web, 99, 3);
    assert.deepEqual(shown(w, 'test_events_total'), { [key('web')]: 3 });
  });
});
