/**
 * Turns a program's loads from its frozen .rodata into immediates, between
 * libbpf's relocation and the kernel's verifier.
 *
 * Why: a policy hook's configuration is `const volatile` data (bpf/policy.h),
 * so one compiled object serves every hook and the verifier prunes what a
 * hook does not use. But the JIT still emits each read of it as a load from
 * the map's memory, and on a hook that runs cache-cold (a retransmit timer,
 * an exec) every line of configuration an event reads is a cache miss. The
 * map is frozen before any program loads (libbpf freezes .rodata), so each
 * such load has one possible value forever: the one libbpf wrote. Writing
 * that value into the instruction changes nothing the program computes,
 * nothing the verifier concludes (it already treats frozen loads as these
 * constants), and takes the configuration out of the hot path entirely.
 *
 * The analysis is deliberately small and conservative: it follows, within
 * one straight-line block, registers that hold `.rodata + K` (set by a
 * 64-bit immediate load of the map's address, then moved or offset by a
 * constant), and rewrites `dst = *(size *)(reg + off)` to `dst = value`.
 * Any jump target, subprogram or callback entry starts a block with nothing
 * known; a call forgets r0-r5. Loads at a variable offset, or of 8 bytes
 * whose value does not fit a sign-extended 32-bit immediate, stay loads.
 * The instruction count never changes, so libbpf's line and function info,
 * and every jump offset, stay valid.
 */

/* Instruction encoding (include/uapi/linux/bpf.h, bpf_common.h). */
const INSN = 8;
const CLASS_MASK = 0x07;
const LD = 0x00;
const LDX = 0x01;
const STX = 0x03;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const OP_MASK = 0xf0;
const MODE_MASK = 0xe0;
const SIZE_MASK = 0x18;
const SRC_X = 0x08;
const MEM = 0x60;
const ATOMIC = 0xc0;
const IMM = 0x00;
const DW = 0x18;
const MOV = 0xb0;
const ADD = 0x00;
const CALL = 0x80;
const EXIT = 0x90;
const JA = 0x00;
const LD_IMM64 = LD | IMM | DW;
const PSEUDO_MAP_VALUE = 2;
const PSEUDO_CALL = 1;
const PSEUDO_FUNC = 4;
const SIZE_BYTES: Record<number, number> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };

export interface FrozenMap {
  /** The map's fd, as libbpf wrote it into relocated 64-bit immediate loads. */
  fd: number;
  /** Its contents, as frozen. */
  bytes: Buffer;
}

export interface InlineResult {
  insns: Buffer;
  /** Loads turned into immediates. */
  inlined: number;
}

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

function decode(b: Buffer, i: number): Insn {
  const at = i * INSN;
  const regs = b[at + 1];
  return { code: b[at], dst: regs & 0x0f, src: regs >> 4, off: b.readInt16LE(at + 2), imm: b.readInt32LE(at + 4) };
}

/** Indexes where control can arrive other than from the instruction before. */
function blockStarts(b: Buffer, n: number): Set<number> {
  const starts = new Set<number>();
  for (let i = 0; i < n; i++) {
    const x = decode(b, i);
    const cls = x.code & CLASS_MASK;
    if (x.code === LD_IMM64) {
      if (x.src === PSEUDO_FUNC) starts.add(i + x.imm + 1); // a callback (bpf_loop)
      i++; // the second half is not an instruction
      continue;
    }
    if (cls !== JMP && cls !== JMP32) continue;
    const op = x.code & OP_MASK;
    if (op === CALL) {
      if (x.src === PSEUDO_CALL) starts.add(i + x.imm + 1); // a subprogram
      continue;
    }
    if (op === EXIT) continue;
    // JMP32's JA ("gotol") keeps its offset in imm.
    starts.add(i + (cls === JMP32 && op === JA ? x.imm : x.off) + 1);
  }
  return starts;
}

/** Rewrites loads from `frozen` into immediates; see the file comment for exactly which. */
export function inlineFrozenLoads(insns: Buffer, frozen: FrozenMap): InlineResult {
  if (insns.length % INSN !== 0) throw new Error(`inlineFrozenLoads: ${insns.length} bytes is not a whole number of instructions`);
  const out = Buffer.from(insns);
  const n = out.length / INSN;
  const starts = blockStarts(out, n);
  /* Per register: the offset into the frozen map it points at, or undefined. */
  const at: (number | undefined)[] = new Array(11).fill(undefined);
  const forget = (from: number, to: number): void => {
    for (let r = from; r <= to; r++) at[r] = undefined;
  };
  let inlined = 0;

  for (let i = 0; i < n; i++) {
    if (starts.has(i)) forget(0, 10);
    const x = decode(out, i);
    const cls = x.code & CLASS_MASK;
    const op = x.code & OP_MASK;

    if (x.code === LD_IMM64) {
      at[x.dst] = x.src === PSEUDO_MAP_VALUE && x.imm === frozen.fd ? decode(out, i + 1).imm >>> 0 : undefined;
      i++;
      continue;
    }
    if (cls === LDX && (x.code & MODE_MASK) === MEM) {
      const base = at[x.src];
      const size = SIZE_BYTES[x.code & SIZE_MASK];
      at[x.dst] = undefined;
      if (base === undefined) continue;
      const addr = base + x.off;
      if (addr < 0 || addr + size > frozen.bytes.length) continue;
      const value = size === 8 ? frozen.bytes.readBigUInt64LE(addr) : BigInt(frozen.bytes.readUIntLE(addr, size));
      let code: number;
      if (size === 8) {
        // ALU64 MOV sign-extends its immediate: only values that survive that.
        if (BigInt.asIntN(64, value) !== BigInt.asIntN(32, value)) continue;
        code = ALU64 | MOV;
      } else {
        code = ALU | MOV; // a 32-bit move zero-extends, as the narrow load did
      }
      const p = i * INSN;
      out[p] = code;
      out[p + 1] = x.dst; // src 0: an immediate
      out.writeInt16LE(0, p + 2);
      out.writeInt32LE(Number(BigInt.asIntN(32, value)), p + 4);
      inlined++;
      continue;
    }
    if (cls === ALU64 && op === MOV && x.code & SRC_X && x.off === 0) {
      at[x.dst] = at[x.src];
      continue;
    }
    if (cls === ALU64 && op === ADD && !(x.code & SRC_X)) {
      const base = at[x.dst];
      at[x.dst] = base === undefined ? undefined : base + x.imm;
      continue;
    }
    if ((cls === JMP || cls === JMP32) && op === CALL) {
      forget(0, 5); // helpers, kfuncs and subprograms clobber the argument registers
      continue;
    }
    if (cls === ALU || cls === ALU64 || cls === LDX || cls === LD) {
      at[x.dst] = undefined;
      continue;
    }
    if (cls === STX && (x.code & MODE_MASK) === ATOMIC) {
      at[x.src] = undefined; // a fetching atomic writes its source register, cmpxchg r0
      at[0] = undefined;
    }
  }
  return { insns: out, inlined };
}
