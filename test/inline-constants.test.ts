/**
 * Frozen .rodata loads become immediates (src/bpf/inline-constants.ts): the
 * pass on hand-assembled instructions, then on a real program the kernel
 * verifies and runs, counting exactly what it counted with loads.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { inlineFrozenLoads } from '../src/bpf/inline-constants';
import { loadObject } from '../src/bpf/loader';
import { loadSyscalls } from '../src/engine/syscalls';
import { native } from '../src/native/addon';
import { FIXTURE_OBJECT } from './helpers/fixture';

/* A tiny assembler: enough of the encoding to state each case plainly. */
const FD = 7;
type Insn = [code: number, dst: number, src: number, off: number, imm: number];
const ldMap = (dst: number, off: number, fd = FD): Insn[] => [
  [0x18, dst, 2, 0, fd],
  [0x00, 0, 0, 0, off],
];
const ldx = (size: 'b' | 'h' | 'w' | 'dw', dst: number, src: number, off: number): Insn => [0x61 | { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 }[size], dst, src, off, 0];
const mov64 = (dst: number, src: number): Insn => [0xbf, dst, src, 0, 0];
const add64 = (dst: number, imm: number): Insn => [0x07, dst, 0, 0, imm];
const call = (imm: number): Insn => [0x85, 0, 0, 0, imm];
const ja = (off: number): Insn => [0x05, 0, 0, off, 0];
const exit: Insn = [0x95, 0, 0, 0, 0];

function assemble(insns: Insn[]): Buffer {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, dst, src, off, imm], i) => {
    b[i * 8] = code;
    b[i * 8 + 1] = dst | (src << 4);
    b.writeInt16LE(off, i * 8 + 2);
    b.writeInt32LE(imm, i * 8 + 4);
  });
  return b;
}

function disassemble(b: Buffer): Insn[] {
  const out: Insn[] = [];
  for (let i = 0; i < b.length; i += 8) out.push([b[i], b[i + 1] & 0xf, b[i + 1] >> 4, b.readInt16LE(i + 2), b.readInt32LE(i + 4)]);
  return out;
}

/* 32 bytes of frozen data: a byte, a u16, a u32 above 2^31, a small u64, a wide u64. */
const RODATA = Buffer.alloc(32);
RODATA[0] = 0xab;
RODATA.writeUInt16LE(0xbeef, 2);
RODATA.writeUInt32LE(0x80000001, 4);
RODATA.writeBigUInt64LE(42n, 8);
RODATA.writeBigUInt64LE(0x1_0000_0002n, 16);

const movImm32 = (dst: number, v: number): Insn => [0xb4, dst, 0, 0, v | 0];
const movImm64 = (dst: number, v: number): Insn => [0xb7, dst, 0, 0, v];

describe('inlineFrozenLoads', () => {
  it('turns each size of load into a move of the frozen value, zero-extended as the load was', () => {
    const prog = [...ldMap(1, 0), ldx('b', 2, 1, 0), ldx('h', 3, 1, 2), ldx('w', 4, 1, 4), ldx('dw', 5, 1, 8), exit];
    const r = inlineFrozenLoads(assemble(prog), { fd: FD, bytes: RODATA });
    assert.equal(r.inlined, 4);
    assert.deepEqual(disassemble(r.insns).slice(2, 6), [movImm32(2, 0xab), movImm32(3, 0xbeef), movImm32(4, 0x80000001), movImm64(5, 42)]);
  });

  it('follows a pointer through moves and constant offsets', () => {
    const prog = [...ldMap(1, 8), mov64(6, 1), add64(6, -4), ldx('w', 2, 6, 0), exit];
    const r = inlineFrozenLoads(assemble(prog), { fd: FD, bytes: RODATA });
    assert.deepEqual(disassemble(r.insns)[4], movImm32(2, 0x80000001));
  });

  it('leaves what it cannot be sure of as loads', () => {
    const cases: Array<[string, Insn[]]> = [
      ['an 8-byte value no sign-extended immediate holds', [...ldMap(1, 16), ldx('dw', 2, 1, 0), exit]],
      ['another map', [...ldMap(1, 0, FD + 1), ldx('b', 2, 1, 0), exit]],
      ['past the end of the data', [...ldMap(1, 30), ldx('w', 2, 1, 0), exit]],
      ['a register a call clobbered', [...ldMap(1, 0), call(5), ldx('b', 2, 1, 0), exit]],
      ['a jump target: another path may arrive with anything', [...ldMap(1, 0), ja(0), ldx('b', 2, 1, 0), exit]],
      ['a register overwritten since', [...ldMap(1, 0), movImm64(1, 0), ldx('b', 2, 1, 0), exit]],
    ];
    for (const [what, prog] of cases) {
      const r = inlineFrozenLoads(assemble(prog), { fd: FD, bytes: RODATA });
      assert.equal(r.inlined, 0, what);
      assert.deepEqual(r.insns, assemble(prog), what);
    }
  });

  it('keeps a callee-saved register across a call', () => {
    const prog = [...ldMap(6, 0), call(5), ldx('b', 2, 6, 0), exit];
    assert.deepEqual(disassemble(inlineFrozenLoads(assemble(prog), { fd: FD, bytes: RODATA }).insns)[3], movImm32(2, 0xab));
  });
});

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

describe('a program loaded with its constants inlined', () => {
  for (const inline of [true, false]) {
    it(`counts exactly what its configuration says (${inline ? 'inlined' : 'as loads'})`, () => {
      const step = 0x80000001;
      const wide = 0x1_0000_0002n;
      const loaded = loadObject({
        objectPath: FIXTURE_OBJECT,
        hooks: [{ hook: 'getppid', candidates: ['count_getppid'] }],
        constants: {
          inline_tgid: u32(process.pid),
          inline_nr: u32(loadSyscalls().getppid),
          inline_step: u32(step),
          inline_wide: u64(wide),
        },
        inlineConstants: inline,
      });
      try {
        assert.equal(loaded.hooks[0].program, 'count_getppid');
        // Its three 32-bit constants; the wide one stays a load.
        assert.deepEqual([...loaded.inlinedLoads], inline ? [['count_getppid', 3]] : []);
        const xlated = execFileSync('bpftool', ['prog', 'dump', 'xlated', 'id', String(loaded.object.programInfo('count_getppid')!.id)], { encoding: 'utf8' });
        assert.equal(/w\d = -2147483647/.test(xlated), inline, xlated);

        const hash = loaded.object.mapFd('test_hash');
        native().mapUpdate(hash, u32(1), u64(0n));
        const calls = 1000;
        for (let i = 0; i < calls; i++) void process.ppid; // one getppid(2) each
        const v = native().mapLookup(hash, u32(1));
        assert.ok(v);
        assert.equal(v.readBigUInt64LE(0), BigInt(calls) * (BigInt(step) + wide));
      } finally {
        loaded.object.close();
      }
    });
  }
});
