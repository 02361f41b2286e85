/**
 * The linking of tracepoint chains (src/engine/tracepoint-chains.ts), over
 * maps held in memory: what an event would run, walked from each
 * dispatcher's slot as the kernel's tail calls would, after every join and
 * leave. test/tracepoint-chains-agent.test.ts runs the same on the kernel.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChainMaps, Dispatcher, TracepointChains } from '../src/engine/tracepoint-chains';

class MemoryChains {
  readonly progs = new Map<number, number>();
  readonly next = new Map<number, number>();
  readonly dispatchers: Array<{ point: string; head: number; closed: boolean }> = [];
  failAttach = false;
  readonly maps: ChainMaps = {
    setProgram: (slot, fd) => void this.progs.set(slot, fd),
    clearProgram: (slot) => void this.progs.delete(slot),
    setNext: (slot, n) => void this.next.set(slot, n),
  };

  chains(length: number, graceMs = 0, slots = 64, alone = 0): TracepointChains {
    return new TracepointChains(
      this.maps,
      (category, name, head): Dispatcher => {
        if (this.failAttach) throw new Error('E2BIG');
        const d = { point: `${category}/${name}`, head, closed: false };
        this.dispatchers.push(d);
        return { close: () => void (d.closed = true), linkFds: () => [], programInfo: () => null };
      },
      slots,
      length,
      graceMs,
      alone,
    );
  }

  /** The program fds an event at `point` runs, chain after chain, as the tail calls go (at most 33 per dispatcher). */
  run(point: string): number[][] {
    return this.dispatchers
      .filter((d) => d.point === point && !d.closed)
      .map((d) => {
        const ran: number[] = [];
        for (let s = this.next.get(d.head) ?? 0, calls = 0; s !== 0 && calls < 33; s = this.next.get(s) ?? 0, calls++) {
          const fd = this.progs.get(s);
          if (fd === undefined) break; // a tail call to an empty slot ends the run
          ran.push(fd);
        }
        return ran;
      });
  }
}

const settle = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('tracepoint chains', () => {
  const cases: Array<{ name: string; length: number; join: number[]; leave: number[]; runs: number[][]; attachments: number }> = [
    { name: 'one hook', length: 32, join: [100], leave: [], runs: [[100]], attachments: 1 },
    { name: 'hooks run in the order they joined', length: 32, join: [100, 101, 102], leave: [], runs: [[100, 101, 102]], attachments: 1 },
    { name: 'a full chain starts another', length: 2, join: [100, 101, 102, 103, 104], leave: [], runs: [[100, 101], [102, 103], [104]], attachments: 3 },
    { name: 'the first leaves', length: 32, join: [100, 101, 102], leave: [100], runs: [[101, 102]], attachments: 1 },
    { name: 'a middle one leaves', length: 32, join: [100, 101, 102], leave: [101], runs: [[100, 102]], attachments: 1 },
    { name: 'the last leaves', length: 32, join: [100, 101, 102], leave: [102], runs: [[100, 101]], attachments: 1 },
    { name: 'an emptied chain goes', length: 2, join: [100, 101, 102], leave: [100, 101], runs: [[102]], attachments: 1 },
    { name: 'all leave', length: 32, join: [100, 101], leave: [101, 100], runs: [], attachments: 0 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const m = new MemoryChains();
      const chains = m.chains(c.length);
      const slotOf = new Map<number, number>();
      for (const fd of c.join) {
        const s = chains.reserve('syscalls', 'sys_enter_getppid');
        slotOf.set(fd, s);
        chains.join('syscalls', 'sys_enter_getppid', s, fd);
      }
      for (const fd of c.leave) chains.leave(slotOf.get(fd)!);
      await settle();
      assert.deepEqual(m.run('syscalls/sys_enter_getppid'), c.runs);
      assert.equal(chains.attachments().get('tracepoint:syscalls:sys_enter_getppid') ?? 0, c.attachments);
      assert.equal(chains.hooks().get('tracepoint:syscalls:sys_enter_getppid') ?? 0, c.join.length - c.leave.length);
      // What left is cleared: no program lingers in the array.
      assert.deepEqual([...m.progs.values()].sort(), c.join.filter((fd) => !c.leave.includes(fd)).sort());
    });
  }

  it('attaches the first hooks at a tracepoint alone, and chains only those past them', () => {
    const m = new MemoryChains();
    const chains = m.chains(32, 0, 64, 2);
    const places = [100, 101, 102, 103].map((fd) => {
      const slot = chains.reserve('syscalls', 'sys_enter_getppid');
      if (slot !== 0) chains.join('syscalls', 'sys_enter_getppid', slot, fd);
      return slot;
    });
    assert.deepEqual(places.map((s) => s === 0), [true, true, false, false]);
    assert.deepEqual(m.run('syscalls/sys_enter_getppid'), [[102, 103]]);
    // Another tracepoint has places of its own.
    assert.equal(chains.reserve('syscalls', 'sys_enter_getpid'), 0);
    // A hook alone detached frees its place for the next.
    chains.release('syscalls', 'sys_enter_getppid', 0);
    assert.equal(chains.reserve('syscalls', 'sys_enter_getppid'), 0);
    assert.notEqual(chains.reserve('syscalls', 'sys_enter_getppid'), 0);
  });

  it('keeps tracepoints apart', () => {
    const m = new MemoryChains();
    const chains = m.chains(32);
    chains.join('syscalls', 'sys_enter_getppid', chains.reserve('syscalls', 'sys_enter_getppid'), 100);
    chains.join('syscalls', 'sys_enter_getpid', chains.reserve('syscalls', 'sys_enter_getpid'), 200);
    chains.join('syscalls', 'sys_enter_getppid', chains.reserve('syscalls', 'sys_enter_getppid'), 101);
    assert.deepEqual(m.run('syscalls/sys_enter_getppid'), [[100, 101]]);
    assert.deepEqual(m.run('syscalls/sys_enter_getpid'), [[200]]);
  });

  it('an event already past the link to a hook that left still runs it and the rest, until the grace period ends', async () => {
    const m = new MemoryChains();
    const chains = m.chains(32, 30);
    const slots = [100, 101, 102].map((fd) => {
      const s = chains.reserve('syscalls', 'sys_enter_getppid');
      chains.join('syscalls', 'sys_enter_getppid', s, fd);
      return s;
    });
    chains.leave(slots[1]);
    // New events skip it at once.
    assert.deepEqual(m.run('syscalls/sys_enter_getppid'), [[100, 102]]);
    // One that read the old link (head -> 100 -> 101) goes on through 101 to 102.
    assert.equal(m.progs.get(slots[1]), 101);
    assert.equal(m.next.get(slots[1]), slots[2]);
    assert.equal(chains.reserve('syscalls', 'sys_enter_getppid') === slots[1], false, 'not reused while an event may be in it');
    await settle(60);
    assert.equal(m.progs.has(slots[1]), false);
  });

  it('a slot is reused once free', async () => {
    const m = new MemoryChains();
    const chains = m.chains(32, 0, 4); // slots 1..3
    const a = chains.reserve('syscalls', 'sys_enter_getppid');
    chains.join('syscalls', 'sys_enter_getppid', a, 100); // takes a head too
    const b = chains.reserve('syscalls', 'sys_enter_getppid');
    assert.throws(() => chains.reserve('syscalls', 'sys_enter_getppid'), /every slot of the tracepoint chains is taken/);
    chains.release('syscalls', 'sys_enter_getppid', b);
    chains.leave(a);
    await settle();
    assert.deepEqual([chains.reserve('syscalls', 'sys_enter_getppid'), chains.reserve('syscalls', 'sys_enter_getppid'), chains.reserve('syscalls', 'sys_enter_getppid')].sort(), [1, 2, 3]);
  });

  it('a dispatcher that cannot attach changes nothing', () => {
    const m = new MemoryChains();
    const chains = m.chains(32);
    m.failAttach = true;
    const s = chains.reserve('syscalls', 'sys_enter_getppid');
    assert.throws(() => chains.join('syscalls', 'sys_enter_getppid', s, 100), /E2BIG/);
    assert.equal(m.progs.size, 0);
    assert.equal(chains.attachments().size, 0);
    chains.release('syscalls', 'sys_enter_getppid', s);
    m.failAttach = false;
    chains.join('syscalls', 'sys_enter_getppid', chains.reserve('syscalls', 'sys_enter_getppid'), 100);
    assert.deepEqual(m.run('syscalls/sys_enter_getppid'), [[100]]);
  });

  it('flush() clears what left at once; close() detaches every dispatcher', () => {
    const m = new MemoryChains();
    const chains = m.chains(32, 60000);
    const s = chains.reserve('syscalls', 'sys_enter_getppid');
    chains.join('syscalls', 'sys_enter_getppid', s, 100);
    chains.join('syscalls', 'sys_enter_getppid', chains.reserve('syscalls', 'sys_enter_getppid'), 101);
    chains.leave(s);
    chains.flush();
    assert.deepEqual([...m.progs.values()], [101]);
    chains.close();
    assert.ok(m.dispatchers.every((d) => d.closed));
  });
});
