/**
 * The reclaim after policy changes runs once per burst, after the last
 * change, with two full collections (src/util/reclaim-memory.ts), and never
 * after close(). What it gives back is measured in memory-after-removal.test.ts.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { MemoryReclaimer } from '../src/util/reclaim-memory';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('MemoryReclaimer', () => {
  const table: Array<{ name: string; requestsEveryMs: number[]; close?: boolean; runs: number }> = [
    { name: 'one request: one reclaim', requestsEveryMs: [0], runs: 1 },
    { name: 'a burst of requests closer than the delay: one reclaim, after the last', requestsEveryMs: [0, 10, 10, 10], runs: 1 },
    { name: 'two bursts further apart than the delay: two reclaims', requestsEveryMs: [0, 120], runs: 2 },
    { name: 'closed before the delay: none', requestsEveryMs: [0], close: true, runs: 0 },
  ];
  for (const c of table) {
    it(c.name, async () => {
      let collections = 0;
      const r = new MemoryReclaimer(50, () => collections++);
      for (const wait of c.requestsEveryMs) {
        await sleep(wait);
        r.request();
      }
      if (c.close) r.close();
      assert.equal(r.runs, c.requestsEveryMs.length > 1 && c.requestsEveryMs[c.requestsEveryMs.length - 1] > 50 ? 1 : 0, 'nothing runs before the last request is 50 ms old');
      await sleep(150);
      assert.equal(r.runs, c.runs);
      assert.equal(collections, 2 * c.runs, 'two full collections per reclaim');
    });
  }
});
