/**
 * Hooks in Tetragon's vocabulary (kprobes, tracepoints, uprobes), read the
 * same way for both formats. What a format adds to a hook (tally: metrics;
 * Tetragon: its event and enforcement fields) is read by its HookFormat.
 */
import { Hook, INT_ARG_TYPES, KprobeHook, Metric, Origin, PacketHook, ReturnArg, Selector, TracepointHook, UprobeHook } from './model';
import { Fields, Node } from './reader';
import { ArgDecl, readArgs, readReturnArg } from './args';
import { Format, HookCx, HookInfo } from './hook-context';
import { readSelectors } from './selectors';
import { LIMITS } from './limits';
import { formatPath } from './problems';
import { TetragonList, unexpandable } from './tetragon-lists';

export type HookListKey = 'kprobes' | 'tracepoints' | 'uprobes' | 'usdts' | 'lsmhooks' | 'packets';

/** How one format reads its part of a hook. */
export interface HookFormat {
  format: Format;
  /** The keys a hook mapping may have, per hook list. */
  keys: Readonly<Record<HookListKey, readonly string[]>>;
  /**
   * Reads the format's own fields of a hook and returns its metrics, or
   * undefined when they are invalid. `selectors` are the hook's selector
   * mappings, for the format's own selector fields.
   */
  finish(hook: Fields, cx: HookCx, info: HookInfo, selectors: Fields[]): Metric[] | undefined;
  /** Tetragon's spec.lists, for kprobe calls written "list:NAME". */
  lists?: ReadonlyMap<string, TetragonList>;
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const TRACE_NAME = /^[A-Za-z0-9_]+$/;

/** Reads every hook list of `spec`; hooks in error or dropped are left out, repeated names get #2, #3, … */
/** Where each hook's fallbackFor was written, to report a name that is not a hook. */
const fallbackNodes = new WeakMap<Hook, Node>();

export function readHooks(spec: Fields, fmt: HookFormat): Hook[] {
  const hooks: Hook[] = [];
  for (const item of list(spec, 'kprobes')) hooks.push(...readKprobe(item, fmt));
  for (const item of list(spec, 'tracepoints')) hooks.push(...readTracepoint(item, fmt));
  for (const item of list(spec, 'uprobes')) hooks.push(...readUprobe(item, fmt));
  if (fmt.keys.usdts.length) for (const item of list(spec, 'usdts')) hooks.push(...readUsdt(item, fmt));
  if (fmt.keys.lsmhooks.length) for (const item of list(spec, 'lsmhooks')) hooks.push(...readLsmHook(item, fmt));
  if (fmt.keys.packets.length) for (const item of list(spec, 'packets')) hooks.push(...readPacket(item, fmt));
  const seen = new Map<string, number>();
  for (const h of hooks) {
    const n = (seen.get(h.name) ?? 0) + 1;
    seen.set(h.name, n);
    if (n > 1) h.name = `${h.name}#${n}`;
  }
  const names = hooks.map((h) => h.name);
  for (const h of hooks) {
    if (h.fallbackFor === undefined) continue;
    if (h.fallbackFor === h.name || !names.includes(h.fallbackFor)) {
      fallbackNodes.get(h)?.error(`the name of another hook of this policy (${names.filter((x) => x !== h.name).join(', ') || 'it has no other'})`);
      delete h.fallbackFor;
    }
  }
  return hooks;
}

/** Hooks carry taskContext and fallbackFor when the file says so. */
function extras(h: Hook, c: Common): void {
  if (c.taskContext) h.taskContext = c.taskContext;
  if (c.fallbackFor) {
    h.fallbackFor = c.fallbackFor.name;
    fallbackNodes.set(h, c.fallbackFor.node);
  }
}

function list(spec: Fields, key: HookListKey): Node[] {
  const n = spec.get(key);
  return n && n.value !== null ? n.list(LIMITS.hooksPerPolicy, key) ?? [] : [];
}

function originOf(node: Node): Origin {
  const p = node.doc.positions.valueAt(node.path);
  return { path: formatPath(node.path), line: p.line, column: p.column };
}

function name(f: Fields, key: string, pattern: RegExp, expected: string): string | undefined {
  const n = f.require(key, expected);
  const v = n?.string(expected);
  return v !== undefined && !pattern.test(v) ? n?.error(expected) : v;
}

interface Common {
  args: ArgDecl[];
  returnArg?: ReturnArg;
  selectors: Selector[];
  metrics?: Metric[];
  taskContext?: true;
  fallbackFor?: { name: string; node: Node };
}

/** args, returnArg, selectors and the format's part: what every hook kind shares. */
function readCommon(f: Fields, cx: HookCx, fmt: HookFormat, kind: HookInfo['kind'], ret: boolean): Common {
  const maxIndex = kind === 'tracepoint' ? LIMITS.maxTracepointArgIndex : LIMITS.maxProbeArgIndex;
  const args = readArgs(f, maxIndex, cx);
  checkPacketArgs(args, kind);
  const retNode = f.get('returnArg');
  const r = retNode ? readReturnArg(retNode, cx) : {};
  if (r.undecoded && retNode) {
    retNode.report('warning', 'a returnArg tally can read', `${r.undecoded}; nothing but matchReturnArgs would use it`, retNode.found);
  }
  const { selectors, fields } = readSelectors(f, args, cx);
  const metrics = fmt.finish(f, cx, { kind, args, return: ret, returnArg: r.returnArg }, fields);
  for (const d of args) {
    if (d.undecoded && !d.used) {
      const n = d.undecoded.node;
      n.report('warning', 'an arg tally can read', `${d.undecoded.reason}; no selector filters on arg ${d.index}, so it is not read and counting is unaffected`,
        n === d.node ? 'no type' : n.found);
    }
  }
  const taskContext = f.get('taskContext')?.boolean() === true ? (true as const) : undefined;
  const fbNode = f.get('fallbackFor');
  const fb = fbNode?.string('the name of another hook of this policy, e.g. tracepoint:sock/sock_send_length');
  return {
    args, returnArg: r.returnArg, selectors, metrics,
    ...(taskContext ? { taskContext } : {}),
    ...(fbNode && fb !== undefined ? { fallbackFor: { name: fb, node: fbNode } } : {}),
  };
}

const decoded = (args: ArgDecl[]): Hook['args'] => args.flatMap((d) => (d.arg ? [d.arg] : []));

function readKprobe(node: Node, fmt: HookFormat): KprobeHook[] {
  const f = node.mapping(fmt.keys.kprobes);
  if (!f) return [];
  const callNode = f.require('call', 'a kernel function or syscall name');
  const callText = callNode?.string();
  const cx = new HookCx(fmt.format, `kprobe:${callText ?? '?'}`);
  // Tetragon's CRD defaults syscall to true; tally keeps that so a hook means the same in both formats.
  let syscall = f.get('syscall')?.boolean() ?? true;
  let calls: string[] | undefined = callText === undefined ? undefined : [callText];
  if (callNode && callText !== undefined && !SYMBOL.test(callText)) {
    calls = undefined;
    if (fmt.format === 'tetragon' && callText.startsWith('list:')) {
      const members = listMembers(callNode, callText.slice('list:'.length), fmt, cx);
      if (members) ({ calls, syscall } = { calls: members.calls, syscall: members.syscall ?? syscall });
    } else callNode.error('a kernel function or syscall name (letters, digits, _ and .)');
  }
  const ret = f.get('return')?.boolean() ?? false;
  const ignore = f.get('ignore')?.mapping(['callNotFound'])?.get('callNotFound')?.boolean() ?? false;
  const c = readCommon(f, cx, fmt, 'kprobe', ret);
  if (calls === undefined || !c.metrics || cx.dropped) return [];
  const metrics = c.metrics;
  return calls.map((call) => {
    const hook: KprobeHook = {
      kind: 'kprobe', name: `kprobe:${call}`, origin: originOf(node), call, syscall, return: ret,
      ignoreCallNotFound: ignore, args: decoded(c.args), selectors: c.selectors,
      metrics: metrics.map((m) => ({ ...m, constLabels: { ...m.constLabels } })),
    };
    extras(hook, c);
    if (c.returnArg) hook.returnArg = c.returnArg;
    return hook;
  });
}

/** The functions of `call: "list:NAME"`, and whether they are syscalls; undefined when reported. */
function listMembers(callNode: Node, name: string, fmt: HookFormat, cx: HookCx): { calls: string[]; syscall?: boolean } | undefined {
  const known = [...(fmt.lists?.keys() ?? [])];
  const l = fmt.lists?.get(name);
  if (!l) return callNode.error(`the name of a list in spec.lists (${known.join(', ') || 'it has none'})`);
  const why = unexpandable(l);
  if (why) {
    cx.unsupported(callNode, 'a function name, or a list tally expands', why, 'drop');
    return undefined;
  }
  const bad = l.values.find((v) => !SYMBOL.test(v));
  if (bad !== undefined) return callNode.error(`a list of kernel function or syscall names (letters, digits, _ and .)`, `list ${name} has "${bad}"`);
  if (l.values.length === 0) return callNode.error('a list with at least one function', `list ${name} is empty`);
  return { calls: l.values, ...(l.type === 'syscalls' ? { syscall: true } : {}) };
}

/**
 * An LSM hook, counted at the entry of the kernel's security_ function that
 * calls it (file_open: security_file_open; bprm_check_security:
 * security_bprm_check), which takes the same arguments. tally does not load
 * BPF LSM programs: most kernels do not enable the bpf LSM (lsm=...,bpf), and a
 * counter needs no verdict. The kernel refuses the hook when it has no such
 * function.
 */
function readLsmHook(node: Node, fmt: HookFormat): KprobeHook[] {
  const f = node.mapping(fmt.keys.lsmhooks);
  if (!f) return [];
  const hookNode = f.require('hook', 'an LSM hook name, e.g. file_open');
  let lsm = hookNode?.string();
  if (lsm !== undefined && !/^[a-z_][a-z0-9_]*$/.test(lsm)) lsm = hookNode?.error('an LSM hook name (lowercase letters, digits and _), e.g. file_open');
  const cx = new HookCx(fmt.format, `lsm:${lsm ?? '?'}`);
  const c = readCommon(f, cx, fmt, 'kprobe', false);
  if (lsm === undefined || !c.metrics || cx.dropped) return [];
  const hook: KprobeHook = {
    kind: 'kprobe', name: cx.hookName, origin: originOf(node), call: securityFunction(lsm), syscall: false, return: false,
    ignoreCallNotFound: false, args: decoded(c.args), selectors: c.selectors, metrics: c.metrics,
  };
  extras(hook, c);
  return [hook];
}

/** The security_ function that calls an LSM hook: the hook's name, less a trailing _security. */
export function securityFunction(lsmHook: string): string {
  return `security_${lsmHook.replace(/_security$/, '')}`;
}

function readTracepoint(node: Node, fmt: HookFormat): TracepointHook[] {
  const f = node.mapping(fmt.keys.tracepoints);
  if (!f) return [];
  const expected = 'a tracefs name (letters, digits and _)';
  const subsystem = name(f, 'subsystem', TRACE_NAME, expected);
  const event = name(f, 'event', TRACE_NAME, expected);
  const cx = new HookCx(fmt.format, `tracepoint:${subsystem ?? '?'}/${event ?? '?'}`);
  const raw = f.get('raw')?.boolean() ?? false;
  const c = readCommon(f, cx, fmt, 'tracepoint', false);
  if (subsystem === undefined || event === undefined || !c.metrics || cx.dropped) return [];
  const hook: TracepointHook = {
    kind: 'tracepoint', name: cx.hookName, origin: originOf(node), subsystem, event, raw,
    args: decoded(c.args), selectors: c.selectors, metrics: c.metrics,
  };
  extras(hook, c);
  return [hook];
}

/** A uprobe's or USDT probe's `path`: an absolute path, else an error at it. */
function readBinaryPath(f: Fields): string | undefined {
  const node = f.require('path', 'the absolute path of a binary or library');
  const path = node?.string();
  return path !== undefined && !path.startsWith('/') ? node?.error('the absolute path of a binary or library') : path;
}

/** A USDT provider or probe name, as sys/sdt.h takes it: a C identifier. */
const USDT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function readUsdt(node: Node, fmt: HookFormat): UprobeHook[] {
  const f = node.mapping(fmt.keys.usdts);
  if (!f) return [];
  const path = readBinaryPath(f);
  const ident = (key: string, what: string): string | undefined => {
    const n = f.require(key, what);
    const v = n?.string(what);
    return v !== undefined && !USDT_NAME.test(v) ? n?.error(`${what} (letters, digits and _, as in sys/sdt.h)`) : v;
  };
  const provider = ident('provider', 'the probe\'s provider, e.g. python');
  const name = ident('name', 'the probe\'s name, e.g. gc__start');
  const cx = new HookCx(fmt.format, `usdt:${path ?? '?'}:${provider ?? '?'}:${name ?? '?'}`);
  const c = readCommon(f, cx, fmt, 'uprobe', false);
  if (path === undefined || provider === undefined || name === undefined || !c.metrics || cx.dropped) return [];
  const hook: UprobeHook = {
    kind: 'uprobe', name: cx.hookName, origin: originOf(node), path, symbol: `${provider}:${name}`, return: false,
    usdt: { provider, name }, args: decoded(c.args), selectors: c.selectors, metrics: c.metrics,
  };
  extras(hook, c);
  return [hook];
}

function readUprobe(node: Node, fmt: HookFormat): UprobeHook[] {
  const f = node.mapping(fmt.keys.uprobes);
  if (!f) return [];
  const path = readBinaryPath(f);
  const cx = new HookCx(fmt.format, `uprobe:${path ?? '?'}`);
  // Tetragon can also attach at offsets or addresses instead of symbols; its part of the format judges those.
  const symbolsNode = fmt.format === 'tally' || !['offsets', 'addrs'].some((k) => f.has(k))
    ? f.require('symbols', 'a list of function names') : f.get('symbols');
  const symbolNodes = symbolsNode?.list(LIMITS.symbolsPerUprobe, 'symbols', 1) ?? [];
  const symbols = symbolNodes.map((n) => {
    const s = n.string('a symbol name');
    return s !== undefined && !SYMBOL.test(s) ? n.error('a symbol name (letters, digits, _ and .)') : s;
  });
  const ret = f.get('return')?.boolean() ?? false;
  const c = readCommon(f, cx, fmt, 'uprobe', ret);
  if (path === undefined || !c.metrics || cx.dropped || symbols.some((s) => s === undefined)) return [];
  const base = path;
  const metrics = c.metrics;
  return symbolNodes.map((n, i) => {
    const hook: UprobeHook = {
      kind: 'uprobe', name: `uprobe:${base}:${symbols[i]}`, origin: originOf(n), path: base, symbol: symbols[i] as string,
      return: ret, args: decoded(c.args), selectors: c.selectors, metrics: metrics.map((m) => ({ ...m, constLabels: { ...m.constLabels } })),
    };
    if (c.returnArg) hook.returnArg = c.returnArg;
    extras(hook, c);
    return hook;
  });
}

/** A packet hook's args, as the kernel hands them over: 0 the packet, 1 its payload's bytes. */
const PACKET_ARGS = '{index: 0, type: packet} or {index: 1, type: int} (the payload\'s bytes)';

/** Only a packet hook has a packet arg, and its args are the two it is given. */
function checkPacketArgs(args: ArgDecl[], kind: HookInfo['kind']): void {
  for (const d of args) {
    const type = d.arg?.type;
    if (kind !== 'packet') {
      if (type === 'packet') d.node.error('a type other than packet', 'packet is the arg of hooks under spec.packets', 'type packet');
      continue;
    }
    const ok = d.index === 0 ? type === 'packet' : d.index === 1 && type !== undefined && INT_ARG_TYPES.some((t) => t === type) && type !== 'fd';
    if (!ok && type !== undefined) {
      d.node.error(PACKET_ARGS, 'a packet hook has these two args',  `index ${d.index}, type ${type}`);
      delete d.arg;
    }
  }
}

/**
 * spec.packets: every packet any socket sends or receives, from a cgroup_skb
 * program on the cgroup v2 root. The UDP peer of a datagram is only sure
 * there: a socket need not be connected, and no tracepoint passes the
 * address a datagram went to or came from.
 */
function readPacket(node: Node, fmt: HookFormat): PacketHook[] {
  const f = node.mapping(fmt.keys.packets);
  if (!f) return [];
  const direction = f.require('direction', 'egress (packets sent) or ingress (packets received)')?.choice(['egress', 'ingress'] as const);
  const cx = new HookCx(fmt.format, `packet:${direction ?? '?'}`);
  const c = readCommon(f, cx, fmt, 'packet', false);
  if (direction === undefined || !c.metrics || cx.dropped) return [];
  const hook: PacketHook = {
    kind: 'packet', name: cx.hookName, origin: originOf(node), direction,
    args: decoded(c.args), selectors: c.selectors, metrics: c.metrics,
  };
  extras(hook, c);
  return [hook];
}
