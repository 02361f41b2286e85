/**
 * Hook args: which function arguments (or tracepoint fields) are read, and as
 * what type. Selectors and metrics refer to them by index.
 */
import { Arg, ArgType, IfMissing, INT_ARG_TYPES, NET_ARG_TYPES, PACKET_ARG_TYPES, ReturnArg, STRING_ARG_TYPES, TASK_ARG_TYPES } from './model';
import { Fields, Node } from './reader';
import { HookCx } from './hook-context';
import { LIMITS } from './limits';
import { anArg, didYouMean, oneOf } from './problems';

/** The arg types tally reads, in the order messages list them. */
export const ARG_TYPES: readonly ArgType[] = [...INT_ARG_TYPES, ...STRING_ARG_TYPES, ...NET_ARG_TYPES, ...TASK_ARG_TYPES, ...PACKET_ARG_TYPES];

/** Tetragon's other names for the same types. */
const ARG_TYPE_ALIASES: Readonly<Record<string, ArgType>> = {
  sint8: 'int8', sint16: 'int16', sint32: 'int32', sint64: 'int64', ulong: 'uint64',
};

/** Types valid in a Tetragon policy (its CRD's enum) that tally does not decode. */
const TETRAGON_UNDECODED_TYPES: readonly string[] = [
  'auto', 'char_iovec', 'sockaddr_un', 'filename', 'bpf_attr', 'perf_event', 'bpf_map',
  'user_namespace', 'capability', 'kiocb', 'iov_iter', 'cred', 'const_buf', 'load_info', 'module',
  'syscall64', 'kernel_cap_t', 'cap_inheritable', 'cap_permitted', 'cap_effective',
  'data_loc', 'bpf_cmd', 'dentry', 'bpf_prog',
];

const TALLY_ARG_KEYS = ['index', 'type', 'sizeArgIndex', 'returnCopy', 'ifMissing'] as const;
/** Every field of Tetragon's KProbeArg. */
const TETRAGON_ARG_KEYS = [...TALLY_ARG_KEYS, 'maxData', 'label', 'resolve', 'source', 'btfType', 'btfTypeModule'] as const;

/** A declared arg as selectors and metrics see it. */
export interface ArgDecl {
  node: Node;
  index: number;
  /** The model arg; undefined when tally cannot read it (see `undecoded`). */
  arg?: Arg;
  /**
   * Tetragon only: why tally cannot read this arg, and where that is said.
   * Harmless unless a selector filters on the arg, which then drops the hook.
   */
  undecoded?: { node: Node; reason: string };
  /** A selector or metric refers to it. */
  used: boolean;
}

type TypeRead = { type: ArgType } | { undecoded: string } | undefined;

/** The `type` field; Tetragon's CRD defaults a missing one to auto (the type from BTF), which tally cannot do. */
function readTypeField(f: Fields, cx: HookCx): TypeRead {
  const node = f.get('type');
  if (node) return readType(node, cx);
  if (cx.format === 'tetragon') return { undecoded: 'a missing type means auto (the type from BTF), which tally does not resolve' };
  f.require('type', oneOf(ARG_TYPES));
  return undefined;
}

function readType(node: Node, cx: HookCx): TypeRead {
  const name = node.string();
  if (name === undefined) return undefined;
  const type = ARG_TYPE_ALIASES[name] ?? name;
  if ((ARG_TYPES as readonly string[]).includes(type)) return { type: type as ArgType };
  if (cx.format === 'tetragon') {
    if (type === 'nop') return { type: 'nop' };
    if (TETRAGON_UNDECODED_TYPES.includes(type)) return { undecoded: `tally does not decode type ${type}` };
  }
  const valid = cx.format === 'tetragon' ? [...ARG_TYPES, 'nop', ...TETRAGON_UNDECODED_TYPES] : ARG_TYPES;
  return node.error(oneOf(ARG_TYPES), didYouMean(name, valid));
}

/** `args`: at most LIMITS.argsPerHook, each index at most `maxIndex` and declared once. */
export function readArgs(fields: Fields, maxIndex: number, cx: HookCx): ArgDecl[] {
  const items = fields.get('args')?.list(LIMITS.argsPerHook, 'args') ?? [];
  const decls: ArgDecl[] = [];
  for (const item of items) {
    const f = item.mapping(cx.format === 'tetragon' ? TETRAGON_ARG_KEYS : TALLY_ARG_KEYS);
    if (!f) continue;
    const index = f.require('index', `the argument's position, from 0 to ${maxIndex}`)?.integer(0, maxIndex, 'an arg index');
    const typeNode = f.get('type');
    const t = readTypeField(f, cx);
    if (index === undefined) continue;
    const first = decls.find((d) => d.index === index);
    if (first) {
      f.get('index')?.error('each index declared once', `it is already declared at ${first.node.ref}`, `index ${index} again`);
      continue;
    }
    const decl: ArgDecl = { node: item, index, used: false };
    decls.push(decl);
    if (t === undefined) continue;
    if ('undecoded' in t) {
      decl.undecoded = { node: typeNode ?? item, reason: t.undecoded };
      continue;
    }
    const arg: Arg = { index, type: t.type, returnCopy: false };
    readCharBufFields(f, arg, maxIndex, cx);
    const missing = f.get('ifMissing');
    if (missing) arg.ifMissing = readIfMissing(missing, t.type, maxIndex);
    if (cx.format === 'tetragon') {
      for (const key of ['resolve', 'source', 'btfType', 'btfTypeModule']) {
        const n = f.get(key);
        // An empty resolve is what Tetragon's CRD defaults it to: nothing to resolve.
        if (n && n.value !== '') decl.undecoded = { node: n, reason: `tally does not read struct fields through ${key}` };
      }
      for (const key of ['maxData', 'label']) {
        const n = f.get(key);
        if (n) cx.ignored(n, key === 'label' ? 'it names the arg in events, and tally exports no events' : 'it sizes the data events carry, and tally exports no events');
      }
    }
    if (!decl.undecoded) decl.arg = arg;
  }
  return decls;
}

const IF_MISSING = 'an integer, or {arg: N, field: groupDead} naming a task arg';

/**
 * `ifMissing`: what an integer arg of a raw tracepoint means on kernels whose
 * tracepoint does not pass it. Checked against the other args when the hook
 * compiles, since those are read after this one.
 */
function readIfMissing(node: Node, type: ArgType, maxIndex: number): IfMissing | undefined {
  if (!(INT_ARG_TYPES as readonly string[]).includes(type)) {
    node.report('error', `ifMissing only on an integer arg`, undefined, `ifMissing on ${anArg(type)}`, true);
    return undefined;
  }
  if (node.value !== null && typeof node.value === 'object') {
    const f = node.mapping(['arg', 'field'], IF_MISSING);
    if (!f) return undefined;
    const arg = f.require('arg', 'the index of a task arg')?.integer(0, maxIndex, 'an arg index');
    const field = f.require('field', 'groupDead')?.choice(['groupDead'] as const);
    return arg === undefined || field === undefined ? undefined : { kind: 'groupDead', arg };
  }
  const value = node.integer(-2147483648, 2147483647, IF_MISSING);
  return value === undefined ? undefined : { kind: 'constant', value };
}

function readCharBufFields(f: Fields, arg: Arg, maxIndex: number, cx: HookCx): void {
  const size = f.get('sizeArgIndex');
  const copy = f.get('returnCopy');
  const notCharBuf = (n: Node): void => {
    const key = String(n.key);
    const found = `${key} on ${anArg(arg.type)}`;
    if (cx.format === 'tetragon') n.report('warning', `${key} only on a char_buf arg`, 'it has no effect on other types, so it is ignored', found, true);
    else n.report('error', `${key} only on a char_buf arg`, undefined, found, true);
  };
  if (size) {
    // As in Tetragon: 1-based, 0 meaning "no size argument".
    const n = size.integer(0, maxIndex + 1, 'a 1-based argument position (0: none)');
    if (n !== undefined && n > 0) {
      if (arg.type === 'char_buf') arg.sizeArg = n - 1;
      else notCharBuf(size);
    }
  }
  if (copy) {
    const b = copy.boolean();
    if (b) {
      if (arg.type === 'char_buf') arg.returnCopy = true;
      else notCharBuf(copy);
    }
  }
}

/** `returnArg`: the type of the return value. Tetragon writes an index (always 0), tally accepts it too. */
export function readReturnArg(node: Node, cx: HookCx): { returnArg?: ReturnArg; undecoded?: string } {
  const f = node.mapping(cx.format === 'tetragon' ? TETRAGON_ARG_KEYS : TALLY_ARG_KEYS);
  if (!f) return {};
  f.get('index')?.integer(0, LIMITS.maxProbeArgIndex, 'an index');
  const t = readTypeField(f, cx);
  if (cx.format === 'tetragon') {
    for (const key of ['label', 'maxData']) {
      const n = f.get(key);
      if (n) cx.ignored(n, 'it only shapes events, and tally exports no events');
    }
  }
  if (t === undefined) return {};
  return 'undecoded' in t ? { undecoded: t.undecoded } : { returnArg: { type: t.type } };
}
