/**
 * The ways a policy hook can attach, most preferred first, each with the
 * programs it loads and where those read the hook's args: a kprobe hook by
 * fentry(+fexit), kprobe(+kretprobe), and for a syscall its own tracepoints
 * and then the raw sys_enter/sys_exit; a tracepoint by tp_btf, raw_tp, or
 * its tracefs record; a uprobe by uprobe(+uretprobe). compile.ts keeps those
 * this kernel offers and builds each one's configuration.
 */
import * as os from 'node:os';
import { CandidateProgram } from '../bpf/loader';
import { Arg, Hook, KprobeHook, PacketHook, TracepointHook, UprobeHook } from '../policy/model';
import { findCgroup2Mount } from '../labels/cgroup-mount';
import { ArgKind, Source } from './hook-config';
import { ProbedAttach, policyObjectName } from './kernel-features';
import { readFormat } from './tracefs';
import { functionArity, tracepointArity } from './kernel-btf';
import { CompileError } from './compile-error';
import type { CompileContext } from './compile';

const ARCH_PREFIX: Record<string, string> = { x64: '__x64_sys_', arm64: '__arm64_sys_' };

/** The constants that hold a classic tracepoint program's slot in its chain (bpf/policy.bpf.c, bpf/chain.h). */
const CHAIN_SLOT = 'tally_chain_slot';
const CHAIN_SLOT_RET = 'tally_chain_slot_ret';

/** In a syscalls/sys_enter_NAME record, the arguments start here, 8 bytes each. */
const SYSCALL_RECORD_ARGS = 16;

/** A syscall's name without the arch prefix or sys_. */
function name(call: string): string {
  return call.replace(/^(__x64_|__arm64_|__ia32_)?sys_/, '');
}

export const INT_SIZES: Record<string, [kind: number, size: number]> = {
  int: [ArgKind.int, 4], int8: [ArgKind.int, 1], int16: [ArgKind.int, 2], int32: [ArgKind.int, 4], int64: [ArgKind.int, 8], long: [ArgKind.int, 8],
  uint8: [ArgKind.uint, 1], uint16: [ArgKind.uint, 2], uint32: [ArgKind.uint, 4], uint64: [ArgKind.uint, 8], size_t: [ArgKind.uint, 8],
  fd: [ArgKind.fd, 4],
};

/** Where an arg is read, for one attach type; an arg may name a source of its own (an ifMissing arg of a raw tracepoint). */
export type ArgPlaceIndex = { index: number; size?: number; signed?: boolean; source?: number; konst?: number };
export type ArgPlace = { source: number; index(arg: Arg): ArgPlaceIndex };

export interface AttachWay {
  attach: string;
  feature: ProbedAttach;
  programs: CandidateProgram[];
  place: ArgPlace;
  syscallNr?: number;
  fexitRetSlot?: number;
}

/** What an arg past a tracepoint's last stands for on this kernel (compile.ts, from the arg's ifMissing); throws if nothing. */
export type MissingArg = (a: Arg, h: TracepointHook, arity: number) => ArgPlaceIndex;

export function attachWays(h: Hook, ctx: CompileContext, missingArg: MissingArg): AttachWay[] {
  if (h.kind === 'kprobe') return kprobeWays(h, ctx, h.metrics.some((m) => m.value.kind === 'latency'));
  if (h.kind === 'tracepoint') return tracepointWays(h, ctx, missingArg);
  if (h.kind === 'packet') return [packetWay(h, ctx)];
  return [uprobeWay(h)];
}

function kprobeWays(h: KprobeHook, ctx: CompileContext, latency: boolean): AttachWay[] {
  const ctxPlace: ArgPlace = { source: h.syscall ? Source.syscall : Source.ctx, index: (a) => ({ index: a.index }) };
  const regsPlace: ArgPlace = { source: h.syscall ? Source.syscall : Source.regs, index: (a) => ({ index: a.index }) };
  let func = h.call;
  let nr: number | undefined;
  if (h.syscall) {
    const sys = name(h.call);
    nr = ctx.syscalls[sys];
    const prefix = ARCH_PREFIX[os.arch()];
    if (!prefix) throw new CompileError(`syscall hooks are not supported on ${os.arch()}`);
    func = prefix + sys;
    if (nr === undefined) throw new CompileError(`unknown syscall ${sys} on ${os.arch()}`);
  }
  const ret = h.return;
  const ways: AttachWay[] = [
    {
      attach: ret ? 'fentry+fexit' : 'fentry',
      feature: 'fentry',
      programs: [{ name: 'pol_fentry', attachTo: func }, ...(ret ? [{ name: 'pol_fexit', attachTo: func }] : [])],
      place: ctxPlace,
      fexitRetSlot: ret ? fexitRetSlot(func, ctx) : undefined,
    },
    {
      attach: ret ? 'kprobe+kretprobe' : 'kprobe',
      feature: 'kprobe',
      programs: [
        { name: 'pol_kprobe', target: { kind: 'kprobe', func, retprobe: false } },
        ...(ret ? [{ name: 'pol_kretprobe', target: { kind: 'kprobe' as const, func, retprobe: true } }] : []),
      ],
      place: regsPlace,
    },
  ];
  if (h.syscall) {
    // One syscall's own tracepoints: the kernel calls them for that syscall
    // only, where the raw ones below run for every syscall of every task.
    const record = (a: Arg): { index: number } => ({ index: SYSCALL_RECORD_ARGS + 8 * a.index });
    if (ret && !latency) {
      // Nothing to carry from entry to return: the exit tracepoint alone,
      // reading the args from the registers the task saved at entry.
      ways.push({
        attach: 'tracepoint syscalls/sys_exit',
        feature: 'tracepoint',
        programs: [{ name: 'pol_sys_exit_only', target: { kind: 'tracepoint', category: 'syscalls', name: `sys_exit_${name(h.call)}` }, chainSlot: CHAIN_SLOT }],
        place: ctxPlace,
      });
    }
    ways.push({
      attach: ret ? 'tracepoint syscalls/sys_enter+sys_exit' : 'tracepoint syscalls/sys_enter',
      feature: 'tracepoint',
      programs: [
        { name: 'pol_tracepoint', target: { kind: 'tracepoint', category: 'syscalls', name: `sys_enter_${name(h.call)}` }, chainSlot: CHAIN_SLOT },
        ...(ret ? [{ name: 'pol_sys_exit_tp', target: { kind: 'tracepoint' as const, category: 'syscalls', name: `sys_exit_${name(h.call)}` }, chainSlot: CHAIN_SLOT_RET }] : []),
      ],
      place: { source: Source.record, index: record },
    });
    ways.push({
      attach: ret ? 'raw_tp sys_enter+sys_exit' : 'raw_tp sys_enter',
      feature: 'raw_tp',
      programs: [{ name: 'pol_sys_enter' }, ...(ret ? [{ name: 'pol_sys_exit' }] : [])],
      place: ctxPlace,
      syscallNr: nr,
    });
  }
  return ways;
}

/**
 * The compat build's fexit reads the return value from the context slot
 * after the function's arguments (bpf/policy.h, fexit_ret_slot); the
 * default build asks bpf_get_func_ret() and needs no BTF lookup.
 */
function fexitRetSlot(func: string, ctx: CompileContext): number | undefined {
  if (policyObjectName(ctx.features) !== 'policy-compat') return undefined;
  const n = (ctx.functionArity ?? functionArity)(func);
  // Unknown to BTF: fentry cannot attach there either, and says so at load.
  return n < 0 ? undefined : n;
}

function tracepointWays(h: TracepointHook, ctx: CompileContext, missingArg: MissingArg): AttachWay[] {
  if (h.raw) {
    const arity = (ctx.tracepointArity ?? tracepointArity)(h.event);
    const place: ArgPlace = {
      source: Source.ctx,
      index: (a) => (arity < 0 || a.index < arity ? { index: a.index } : missingArg(a, h, arity)),
    };
    return [
      // tp_btf first: its arguments are typed, so socket fields are loaded
      // directly instead of through bpf_probe_read_kernel.
      { attach: 'tp_btf', feature: 'tp_btf', programs: [{ name: 'pol_tp_btf', attachTo: h.event }], place },
      { attach: 'raw_tp', feature: 'raw_tp', programs: [{ name: 'pol_raw_tp', target: { kind: 'raw_tp', name: h.event } }], place },
    ];
  }
  const fields = (ctx.format ?? readFormat)(h.subsystem, h.event);
  return [{
    attach: 'tracepoint',
    feature: 'tracepoint',
    programs: [{ name: 'pol_tracepoint', target: { kind: 'tracepoint', category: h.subsystem, name: h.event }, chainSlot: CHAIN_SLOT }],
    place: {
      source: Source.record,
      index: (a) => {
        const f = fields[a.index];
        if (!f) throw new CompileError(`arg ${a.index}: tracepoint ${h.subsystem}/${h.event} has ${fields.length} fields (0..${fields.length - 1})`);
        if (f.declaration.startsWith('__data_loc')) throw new CompileError(`arg ${a.index}: field ${f.name} is a __data_loc string, not supported by the engine yet`);
        if (![1, 2, 4, 8].includes(f.size) && INT_SIZES[a.type]) throw new CompileError(`arg ${a.index}: field ${f.name} has ${f.size} bytes, not an integer`);
        return { index: f.offset, size: Math.min(f.size, 8), signed: f.signed };
      },
    },
  }];
}

function uprobeWay(h: UprobeHook): AttachWay {
  if (h.usdt) {
    return {
      attach: 'usdt',
      feature: 'uprobe',
      programs: [{ name: 'pol_usdt', target: { kind: 'usdt', path: h.path, provider: h.usdt.provider, name: h.usdt.name } }],
      place: { source: Source.usdt, index: (a) => ({ index: a.index }) },
    };
  }
  return {
    attach: h.return ? 'uprobe+uretprobe' : 'uprobe',
    feature: 'uprobe',
    programs: [
      { name: 'pol_uprobe', target: { kind: 'uprobe', path: h.path, func: h.symbol, retprobe: false } },
      ...(h.return ? [{ name: 'pol_uretprobe', target: { kind: 'uprobe' as const, path: h.path, func: h.symbol, retprobe: true } }] : []),
    ],
    place: { source: Source.regs, index: (a) => ({ index: a.index }) },
  };
}

/**
 * A packet hook: its direction's cgroup_skb program on the cgroup v2 root
 * (/sys/fs/cgroup, or /sys/fs/cgroup/unified in hybrid mode), which runs for
 * the sockets of every cgroup below. Its args are the kernel's: the packet
 * and its payload's bytes (bpf/packets.bpf.h).
 */
function packetWay(h: PacketHook, ctx: CompileContext): AttachWay {
  const path = ctx.cgroupRoot ?? findCgroup2Mount();
  return {
    attach: `cgroup_skb/${h.direction}`,
    feature: 'cgroup_skb',
    programs: [{ name: h.direction === 'egress' ? 'pol_skb_egress' : 'pol_skb_ingress', target: { kind: 'cgroup', path } }],
    place: { source: Source.packet, index: (a) => ({ index: a.index }) },
  };
}
