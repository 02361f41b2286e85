/**
 * The native binding against the real kernel: load errors carry errno and the
 * verifier's words, constants reach the program, batch reads agree with
 * key-by-key reads, and the ring-buffer thread delivers every record.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { isNativeError, native, NativeBpfObject, BPF_NOEXIST } from '../src/native/addon';
import { FIXTURE_OBJECT } from './helpers/fixture';
import { forceTakeFallback, takeEntry, takesFallBack } from '../src/bpf/take-entry';
import { waitExit } from './helpers/agent-process';

function open(enabled: string[]): NativeBpfObject {
  const obj = new (native().BpfObject)(FIXTURE_OBJECT);
  for (const p of obj.programs()) obj.setAutoload(p.name, enabled.includes(p.name));
  return obj;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

describe('BpfObject', () => {
  it('lists programs and maps with their types', () => {
    const obj = open([]);
    try {
      const progs = new Map(obj.programs().map((p) => [p.name, p]));
      assert.equal(progs.get('exec_raw')?.section, 'raw_tp/sched_process_exec');
      assert.equal(progs.get('exec_btf')?.type, 'tracing');
      const maps = new Map(obj.maps().map((m) => [m.name, m]));
      assert.deepEqual(
        { type: maps.get('test_hash')?.type, keySize: maps.get('test_hash')?.keySize, valueSize: maps.get('test_hash')?.valueSize },
        { type: 'hash', keySize: 4, valueSize: 8 },
      );
    } finally {
      obj.close();
    }
  });

  it('a verifier rejection carries errno and the verifier log', () => {
    const obj = open(['bad_btf']);
    try {
      assert.throws(
        () => obj.load(),
        (e: unknown) => {
          assert.ok(isNativeError(e));
          assert.equal(e.errno, 13);
          assert.equal(e.code, 'EACCES');
          assert.ok(e.log.some((l) => l.includes('-- BEGIN PROG LOAD LOG --')), e.log.join('\n'));
          assert.ok(e.log.some((l) => /invalid access to map value/.test(l)), e.log.join('\n'));
          assert.ok(e.log.some((l) => l.includes("prog 'bad_btf': failed to load")));
          return true;
        },
      );
    } finally {
      obj.close();
    }
  });

  it('an attach failure carries errno', () => {
    const obj = open(['tp_missing']);
    try {
      obj.load();
      assert.throws(() => obj.attach('tp_missing'), (e: unknown) => isNativeError(e) && e.errno === 2 && e.code === 'ENOENT');
    } finally {
      obj.close();
    }
  });

  it('rejects a constant of the wrong size and an unknown name', () => {
    const obj = open([]);
    try {
      assert.throws(() => obj.setConstant('magic', Buffer.alloc(4)), /variable has 8 bytes, got 4/);
      assert.throws(() => obj.setConstant('nope', Buffer.alloc(4)), /no constant named 'nope'/);
      assert.throws(() => obj.mapFd('nope'), /no BPF map named 'nope'/);
    } finally {
      obj.close();
    }
  });

  it('close() is idempotent and later calls fail cleanly', () => {
    const obj = open([]);
    obj.close();
    obj.close();
    assert.throws(() => obj.programs(), /BpfObject is closed/);
  });
});

describe('map operations', () => {
  it('batch reads and key-by-key reads agree, for a hash and a per-CPU hash', () => {
    const obj = open([]);
    try {
      obj.setMaxEntries('test_hash', 100_000);
      obj.setMaxEntries('test_percpu', 5_000);
      obj.load();
      const a = native();
      const hash = obj.mapFd('test_hash');
      for (let i = 0; i < 100_000; i++) a.mapUpdate(hash, u32(i), u64(BigInt(i) * 3n), BPF_NOEXIST);
      const cpus = a.numPossibleCpus();
      const pc = obj.mapFd('test_percpu');
      for (let i = 0; i < 5_000; i++) {
        const v = Buffer.alloc(8 * cpus);
        for (let c = 0; c < cpus; c++) v.writeBigUInt64LE(BigInt(i + c), 8 * c);
        a.mapUpdate(pc, u32(i), v);
      }

      const batched = a.mapLookupAll(hash);
      const walked = a.mapLookupAll(hash, { batch: false });
      assert.equal(batched.batched, true);
      assert.equal(walked.batched, false);
      assert.equal(batched.count, 100_000);
      const asMap = (d: typeof batched): Map<number, bigint> => {
        const m = new Map<number, bigint>();
        for (let i = 0; i < d.count; i++) m.set(d.keys.readUInt32LE(i * 4), d.values.readBigUInt64LE(i * d.valueStride));
        return m;
      };
      const m = asMap(batched);
      assert.deepEqual(m, asMap(walked));
      for (let i = 0; i < 100_000; i += 9973) assert.equal(m.get(i), BigInt(i) * 3n);

      const pcd = a.mapLookupAll(pc);
      assert.equal(pcd.count, 5_000);
      assert.equal(pcd.valueStride, 8 * cpus);
      for (let i = 0; i < pcd.count; i++) {
        const k = pcd.keys.readUInt32LE(i * 4);
        for (let c = 0; c < cpus; c++) assert.equal(pcd.values.readBigUInt64LE(i * pcd.valueStride + 8 * c), BigInt(k + c));
      }

      assert.equal(a.mapDelete(hash, u32(7)), true);
      assert.equal(a.mapDelete(hash, u32(7)), false);
      assert.equal(a.mapLookup(hash, u32(7)), null);
      assert.equal(a.mapLookup(hash, u32(8))?.readBigUInt64LE(0), 24n);
      assert.throws(() => a.mapUpdate(hash, u32(8), u64(1n), BPF_NOEXIST), (e: unknown) => isNativeError(e) && e.code === 'EEXIST');
      assert.throws(() => a.mapUpdate(hash, Buffer.alloc(3), u64(1n)), /key has 3 bytes, map expects 4/);
    } finally {
      obj.close();
    }
  });

  // Before 5.14 the kernel has no lookup-and-delete for hash maps (ENOTSUPP): series retire by a lookup, then a delete.
  for (const fallback of [false, true]) {
    it(`takes a per-CPU hash entry with every CPU's value, then it is gone (${fallback ? 'lookup, then delete' : 'the kernel as it is'})`, () => {
      const obj = open([]);
      try {
        obj.setMaxEntries('test_percpu', 64);
        obj.load();
        const a = native();
        const cpus = a.numPossibleCpus();
        const pc = obj.mapFd('test_percpu');
        const value = (k: number): Buffer => {
          const v = Buffer.alloc(8 * cpus);
          for (let c = 0; c < cpus; c++) v.writeBigUInt64LE(BigInt(1000 * k + c), 8 * c);
          return v;
        };
        for (let k = 1; k <= 3; k++) a.mapUpdate(pc, u32(k), value(k));
        forceTakeFallback(fallback);
        assert.deepEqual(takeEntry(pc, u32(2)), value(2));
        assert.equal(takesFallBack(), fallback);
        assert.equal(a.mapLookup(pc, u32(2)), null);
        assert.equal(takeEntry(pc, u32(2)), null);
        assert.equal(takeEntry(pc, u32(9)), null);
        assert.deepEqual(a.mapLookupAll(pc, { batch: false }).count, 2);
        assert.deepEqual(a.mapLookup(pc, u32(3)), value(3));
      } finally {
        forceTakeFallback(undefined);
        obj.close();
      }
    });
  }
});

describe('RingBuffer', () => {
  it('delivers every record, in order, from its own thread', async () => {
    const obj = open(['exec_raw']);
    const received: Array<{ pid: number; ppid: number; magic: bigint }> = [];
    let ring: ReturnType<typeof native>['RingBuffer']['prototype'] | undefined;
    try {
      obj.setConstant('target_ppid', u32(process.pid));
      obj.setConstant('magic', u64(0xfeedfacecafen));
      obj.load();
      obj.attach('exec_raw');
      ring = new (native().RingBuffer)(obj.mapFd('test_events'), (records) => {
        for (const r of records) received.push({ pid: r.readUInt32LE(0), ppid: r.readUInt32LE(4), magic: r.readBigUInt64LE(8) });
      });
      const pids: number[] = [];
      for (let i = 0; i < 25; i++) {
        const child = spawn('/bin/true');
        pids.push(child.pid!);
        await waitExit(child);
      }
      const deadline = Date.now() + 5000;
      while (received.length < pids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(received.map((r) => r.pid), pids);
      assert.ok(received.every((r) => r.ppid === process.pid && r.magic === 0xfeedfacecafen));
      assert.deepEqual(ring.stats(), { delivered: 25, dropped: 0, failedErrno: 0 });
    } finally {
      ring?.close();
      ring?.close();
      obj.close();
    }
  });
});
