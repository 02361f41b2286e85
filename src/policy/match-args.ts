/**
 * matchArgs: filters on a declared arg's value. Which operators apply depends
 * on the arg's type (integers compare, strings match whole or in part,
 * sockets give addresses, ports, protocol and family); values are parsed here
 * so the compiler gets numbers and bytes.
 */
import {
  AddrOperator, ArgFilter, ArgType, Cidr, IntArgType, IntOperator, PortOperator, PortRange, STRING_ARG_TYPES, StringOperator,
} from './model';
import { Fields, Node } from './reader';
import { ArgDecl } from './args';
import { HookCx } from './hook-context';
import { LIMITS } from './limits';
import { anArg, didYouMean, oneOf } from './problems';
import { formatCidr, parseCidr } from './ip';
import { Parsed, parseFamily, parseInteger, parsePort, parseProtocol, parseString } from './values';

const INT_OPS: readonly IntOperator[] = ['Equal', 'NotEqual', 'GT', 'LT', 'Mask', 'NotMask'];
const STRING_OPS: readonly StringOperator[] = ['Equal', 'NotEqual', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix'];
const ADDR_OPS: readonly AddrOperator[] = ['SAddr', 'DAddr', 'NotSAddr', 'NotDAddr'];
const PORT_OPS: readonly PortOperator[] = ['SPort', 'DPort', 'NotSPort', 'NotDPort'];
/** sock and skb carry both ends of a connection. */
const SOCK_OPS = [...ADDR_OPS, ...PORT_OPS, 'Protocol', 'Family'] as const;
/**
 * A sockaddr carries one address, which Tetragon filters as the source
 * (SAddr, SPort); tally keeps that meaning so Tetragon's policies read the same.
 */
const SOCKADDR_OPS = ['SAddr', 'NotSAddr', 'SPort', 'NotSPort', 'Family'] as const;

type Operator = ArgFilter['operator'];

/** The type of a file, by the names FileType takes, as S_IFMT bits. */
export const FILE_TYPES: Readonly<Record<string, number>> = {
  regular: 0o100000, directory: 0o040000, symlink: 0o120000, block: 0o060000, char: 0o020000, fifo: 0o010000, socket: 0o140000,
};
/**
 * File systems by the names FileSystem takes, as the magic numbers of their
 * superblocks (linux/magic.h). The first nine are the pseudo-file systems a
 * count of bytes written to files leaves out.
 */
export const FILE_SYSTEMS: Readonly<Record<string, number>> = {
  proc: 0x9fa0, sysfs: 0x62656572, cgroup: 0x27e0eb, cgroup2: 0x63677270, debugfs: 0x64626720, tracefs: 0x74726163,
  bpf: 0xcafe4a11, securityfs: 0x73636673, configfs: 0x62656570,
  tmpfs: 0x01021994, devpts: 0x1cd1, nsfs: 0x6e736673, hugetlbfs: 0x958458f6, pstore: 0x6165676c, efivarfs: 0xde5e81e4,
  ext4: 0xef53, xfs: 0x58465342, btrfs: 0x9123683e, overlay: 0x794c7630,
};
const FILE_OPS = ['FileType', 'NotFileType', 'FileSystem', 'NotFileSystem'] as const;

/** Every matchArgs operator tally implements, in the order messages list them. */
export const ARG_OPERATORS: readonly Operator[] = [...new Set<Operator>([...INT_OPS, ...STRING_OPS, ...SOCK_OPS, ...FILE_OPS])];

/** Tetragon's longer spellings. */
const OPERATOR_ALIASES: Readonly<Record<string, Operator>> = { GreaterThan: 'GT', LessThan: 'LT' };

/** Operators of Tetragon's CRD that tally does not implement. */
const TETRAGON_OTHER_OPERATORS: readonly string[] = [
  'SPortPriv', 'NotSportPriv', 'DPortPriv', 'NotDPortPriv', 'State', 'InMap', 'NotInMap', 'CapabilitiesGained',
  'InRange', 'NotInRange', 'SubString', 'SubStringIgnCase', 'CelExpr',
];


function operatorsFor(type: ArgType): readonly Operator[] {
  switch (type) {
    case 'string': case 'char_buf': return STRING_OPS;
    case 'file': case 'path': case 'linux_binprm': return [...STRING_OPS, ...FILE_OPS];
    case 'net_device': return STRING_OPS;
    case 'sock': case 'skb': case 'socket': case 'packet': return SOCK_OPS;
    case 'sockaddr': return SOCKADDR_OPS;
    case 'nop': case 'task': return [];
    // An fd also stands for its file: tally reads the file's type.
    case 'fd': return [...INT_OPS, ...FILE_OPS];
    default: return INT_OPS;
  }
}

/** "sock, skb and sockaddr args" for a hint on where an operator does apply. */
function typesFor(op: Operator): string {
  const groups: Array<[readonly Operator[], string]> = [
    [INT_OPS, 'integer args (int, uint64, size_t, …)'],
    [STRING_OPS, 'string, char_buf, file and path args'],
    [SOCKADDR_OPS, 'sock, skb and sockaddr args'],
    [SOCK_OPS, 'sock, skb and packet args'],
    [FILE_OPS, 'file, path and fd args'],
  ];
  return groups.filter(([ops]) => ops.includes(op)).map(([, t]) => t).join(' and ');
}

const TALLY_MATCHARG_KEYS = ['index', 'operator', 'values'] as const;
const TETRAGON_MATCHARG_KEYS = ['index', 'args', 'operator', 'values'] as const;

/** The operator; 'dropped' for a Tetragon operator tally does not implement (the hook is then left out). */
function readOperator(node: Node, cx: HookCx): Operator | 'dropped' | undefined {
  const text = node.string();
  if (text === undefined) return undefined;
  const op = OPERATOR_ALIASES[text] ?? text;
  if ((ARG_OPERATORS as readonly string[]).includes(op)) return op as Operator;
  if (cx.format === 'tetragon' && TETRAGON_OTHER_OPERATORS.includes(op)) {
    cx.unsupported(node, `an operator tally implements (${ARG_OPERATORS.join(', ')})`,
      'without this filter the hook would count calls the policy does not select', 'drop');
    return 'dropped';
  }
  const hint = TETRAGON_OTHER_OPERATORS.includes(op) ? `${op} is a Tetragon operator that tally does not implement` : didYouMean(text, ARG_OPERATORS);
  return node.error(oneOf(ARG_OPERATORS), hint);
}

/** Which declared arg a matchArgs entry filters: `index`, or Tetragon's `args: [position in args]`. */
function filteredArg(f: Fields, args: ArgDecl[], cx: HookCx): { decl: ArgDecl; node: Node } | undefined {
  const argsNode = f.get('args');
  if (argsNode) {
    if (!args.length) return argsNode.error('a position in this hook\'s args', 'the hook declares no args');
    const list = argsNode.list(args.length, 'positions in this hook\'s args', 1);
    const pos = list?.[0].integer(0, Math.max(0, args.length - 1), 'a position in this hook\'s args');
    return pos === undefined ? undefined : { decl: args[pos], node: argsNode };
  }
  // Tetragon's index is optional, defaulting to 0; tally asks for it.
  const node = cx.format === 'tetragon' ? f.get('index') : f.require('index', 'the index of a declared arg');
  const index = node ? node.integer(0, Number.MAX_SAFE_INTEGER, 'an arg index') : 0;
  if (index === undefined) return undefined;
  const decl = args.find((d) => d.index === index);
  if (decl) return { decl, node: node ?? f.node };
  const declared = args.map((d) => d.index);
  const at = node ?? f.node;
  return at.error(
    declared.length ? `the index of a declared arg (${declared.join(', ')})` : 'the index of a declared arg (this hook declares none)',
    `declare it under args with its type`,
    `${index}`,
  );
}

export function readArgFilter(node: Node, args: ArgDecl[], cx: HookCx): ArgFilter | undefined {
  const f = node.mapping(cx.format === 'tetragon' ? TETRAGON_MATCHARG_KEYS : TALLY_MATCHARG_KEYS);
  if (!f) return undefined;
  const opNode = f.require('operator', oneOf(ARG_OPERATORS));
  const op = opNode && readOperator(opNode, cx);
  // The rest of an entry whose operator tally does not know follows that operator's rules (some take no values, CelExpr no index).
  if (op === 'dropped') return undefined;
  const target = filteredArg(f, args, cx);
  const valueNodes = f.require('values', 'a list of values')?.list(LIMITS.valuesPerFilter, 'values', 1,
    'split them across several selectors, which OR');
  if (!target || !opNode || op === undefined) return undefined;
  const { decl } = target;
  decl.used = true;
  if (decl.undecoded) {
    cx.unsupported(target.node, 'the index of an arg tally can read', `the filter needs arg ${decl.index}, and ${decl.undecoded.reason}`, 'drop', false, `${decl.index}`);
    return undefined;
  }
  const type = decl.arg?.type;
  if (!type) return undefined;
  if (type === 'fd' && cx.format === 'tetragon' && !(FILE_OPS as readonly string[]).includes(op)) {
    cx.unsupported(target.node, 'a filter tally can evaluate',
      'Tetragon matches the path of the file an fd arg refers to, and tally reads only the number', 'drop', false, `a filter on fd arg ${decl.index}`);
    return undefined;
  }
  const allowed = operatorsFor(type);
  if (!allowed.includes(op)) {
    const hint = type === 'nop' ? 'a nop arg is not read; declare its real type to filter on it' : `${op} applies to ${typesFor(op)}`;
    return opNode.error(allowed.length ? `an operator for ${anArg(type)} (${allowed.join(', ')})` : 'no operator on a nop arg', hint);
  }
  if (!valueNodes) return undefined;
  const index = decl.index;
  if ((ADDR_OPS as readonly string[]).includes(op)) {
    const values = parseAll(valueNodes, (n, t) => readCidr(n, t, cx));
    return values && { kind: 'addr', index, operator: op as AddrOperator, values };
  }
  if ((PORT_OPS as readonly string[]).includes(op)) {
    const values = parseAll<PortRange>(valueNodes, (_n, t) => parsePort(t));
    return values && { kind: 'port', index, operator: op as PortOperator, values };
  }
  if (op === 'FileType' || op === 'NotFileType') {
    const values = parseAll<number>(valueNodes, (_n, t) =>
      FILE_TYPES[t] !== undefined ? { ok: true, value: FILE_TYPES[t] } : { ok: false, expected: oneOf(Object.keys(FILE_TYPES)), hint: didYouMean(t, Object.keys(FILE_TYPES)) });
    return values && { kind: 'filetype', index, operator: op, values };
  }
  if (op === 'FileSystem' || op === 'NotFileSystem') {
    const names = Object.keys(FILE_SYSTEMS);
    const values = parseAll<number>(valueNodes, (_n, t) =>
      FILE_SYSTEMS[t] !== undefined ? { ok: true, value: FILE_SYSTEMS[t] } : { ok: false, expected: oneOf(names), hint: didYouMean(t, names) });
    return values && { kind: 'filesystem', index, operator: op, values };
  }
  if (op === 'Protocol' || op === 'Family') {
    const values = parseAll(valueNodes, (_n, t) => (op === 'Protocol' ? parseProtocol(t) : parseFamily(t)));
    return values && (op === 'Protocol' ? { kind: 'protocol', index, operator: op, values } : { kind: 'family', index, operator: op, values });
  }
  if ((STRING_ARG_TYPES as readonly string[]).includes(type)) {
    const values = parseAll(valueNodes, (_n, t) => parseString(t));
    return values && { kind: 'string', index, operator: op as StringOperator, values };
  }
  const values = parseAll(valueNodes, (_n, t) => parseInteger(t, type as IntArgType));
  return values && { kind: 'int', index, operator: op as IntOperator, values };
}

/** Parses every value, reporting each bad one; undefined if any was bad. */
export function parseAll<T>(nodes: Node[], parse: (n: Node, text: string) => Parsed<T>): T[] | undefined {
  const out: T[] = [];
  let bad = false;
  for (const n of nodes) {
    const text = n.scalarText('a string value');
    if (text === undefined) {
      bad = true;
      continue;
    }
    const r = parse(n, text);
    if (r.ok) out.push(r.value);
    else {
      n.error(r.expected, r.hint);
      bad = true;
    }
  }
  return bad ? undefined : out;
}

/**
 * A CIDR with host bits set (10.0.0.1/8) is an error in a MetricsPolicy. In a
 * Tetragon policy it is a warning: Tetragon's own examples write 127.0.0.1/8
 * and its LPM lookup only compares the prefix, so masking keeps their meaning.
 */
function readCidr(n: Node, text: string, cx: HookCx): Parsed<Cidr> {
  const r = parseCidr(text);
  if (!r.ok) return { ok: false, expected: r.expected };
  if (r.hostBitsSet) {
    const fixed = formatCidr(r.cidr);
    if (cx.format === 'tally') return { ok: false, expected: 'a network address with its host bits zero', hint: `write "${fixed}"` };
    n.report('warning', 'a network address with its host bits zero', `it is read as "${fixed}", as Tetragon reads it`);
  }
  return { ok: true, value: r.cidr };
}
