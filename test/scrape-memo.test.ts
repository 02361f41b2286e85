/**
 * ScrapeMemo: one read per scrape, at most one read running and one waiting
 * behind it, and every caller after invalidate() gets a read that started
 * after its call. Reads are promises this test resolves by hand, so the
 * order of events is the test's, not a timer's.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { ScrapeMemo } from '../src/util/memo';

/** A read the test finishes: each call is numbered from 1 and resolves to its number. */
function manualReads() {
  const started: Array<{ n: number; finish: () => void; fail: () => void }> = [];
  const read = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const n = started.length + 1;
      started.push({ n, finish: () => resolve(n), fail: () => reject(new Error(`read ${n} failed`)) });
    });
  return { started, read };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ScrapeMemo', () => {
  it('shares one read among the callers of a scrape', async () => {
    const { started, read } = manualReads();
    const memo = new ScrapeMemo(read, 60_000);
    memo.invalidate();
    const a = memo.get();
    const b = memo.get();
    assert.equal(started.length, 1);
    started[0].finish();
    assert.deepEqual(await Promise.all([a, b]), [1, 1]);
    // Still fresh: no new read without invalidate().
    assert.equal(await memo.get(), 1);
    assert.equal(started.length, 1);
  });

  // Each row: scrapes that invalidate and get while read 1 runs; how many reads start in all; what each scrape gets.
  const rows: Array<{ name: string; scrapesDuringRead: number; reads: number; got: number[] }> = [
    { name: 'one scrape during a read waits for a read of its own, started after it', scrapesDuringRead: 1, reads: 2, got: [1, 2] },
    { name: 'twenty scrapes during a read share one follow-up read', scrapesDuringRead: 20, reads: 2, got: [1, ...Array(20).fill(2)] },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const { started, read } = manualReads();
      const memo = new ScrapeMemo(read, 60_000);
      memo.invalidate();
      const first = memo.get();
      const later: Array<Promise<number>> = [];
      for (let i = 0; i < row.scrapesDuringRead; i++) {
        memo.invalidate();
        later.push(memo.get());
      }
      // Nothing starts while read 1 runs: the follow-up waits.
      assert.equal(started.length, 1);
      assert.equal(memo.pending, 2);
      started[0].finish();
      await tick();
      assert.equal(started.length, row.reads);
      started[started.length - 1].finish();
      assert.deepEqual(await Promise.all([first, ...later]), row.got);
      assert.equal(memo.pending, 0);
    });
  }

  it('a running read serves a caller that did not invalidate, however long it takes', async () => {
    const { started, read } = manualReads();
    const memo = new ScrapeMemo(read, 0);
    const a = memo.get();
    await new Promise((r) => setTimeout(r, 5));
    const b = memo.get();
    assert.equal(started.length, 1);
    started[0].finish();
    assert.deepEqual(await Promise.all([a, b]), [1, 1]);
    // Done and older than maxAgeMs (0): the next caller reads again.
    await new Promise((r) => setTimeout(r, 2));
    const c = memo.get();
    assert.equal(started.length, 2);
    started[1].finish();
    assert.equal(await c, 2);
  });

  it('a failed read fails its callers, and the follow-up still runs', async () => {
    const { started, read } = manualReads();
    const memo = new ScrapeMemo(read, 60_000);
    const first = memo.get();
    memo.invalidate();
    const second = memo.get();
    started[0].fail();
    await assert.rejects(first, /read 1 failed/);
    await tick();
    assert.equal(started.length, 2);
    started[1].finish();
    assert.equal(await second, 2);
  });
});
