/**
 * Selectors: in-kernel filters of a hook. Selectors OR; within one, every
 * filter ANDs. This module reads the filters both formats share (matchArgs,
 * matchBinaries) and tally's Kubernetes matchNamespaces; Tetragon's other
 * selector fields are judged in tetragon-selectors.ts.
 */
import {
  AddrOperator, ArgFilter, ArgType, BinaryFilter, BinaryOperator, Cidr, IntArgType, IntOperator, NamespaceFilter,
  PortOperator, PortRange, Selector, StringOperator,
} from './model';
import { Fields, Node } from './reader';
import { ArgDecl } from './args';
import { HookCx } from './hook-context';
import { LIMITS } from './limits';
import { anArg, didYouMean, oneOf } from './problems';
import { formatCidr, parseCidr } from './ip';
import { Parsed, parseFamily, parseInteger, parsePort, parseProtocol, parseString } from './values';

const INT_OPS: readonly IntOperator[] = ['Equal', 'NotEqual', 'GT', 'LT', 'Mask'];
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

/** Every matchArgs operator tally implements, in the order messages list them. */
export const ARG_OPERATORS: readonly Operator[] = [...new Set<Operator>([...INT_OPS, ...STRING_OPS, ...SOCK_OPS])];

/** Tetragon's longer spellings. */
const OPERATOR_ALIASES: Readonly<Record<string, Operator>> = { GreaterThan: 'GT', LessThan: 'LT' };

/** Operators of Tetragon's CRD that tally does not implement. */
const TETRAGON_OTHER_OPERATORS: readonly string[] = [
  'SPortPriv', 'NotSportPriv', 'DPortPriv', 'NotDPortPriv', 'State', 'InMap', 'NotInMap', 'CapabilitiesGained',
  'InRange', 'NotInRange', 'SubString', 'SubStringIgnCase', 'CelExpr', 'FileType', 'NotFileType',
];

function operatorsFor(type: ArgType): readonly Operator[] {
  switch (type) {
    case 'string': case 'char_buf': case 'file': case 'path': return STRING_OPS;
    case 'sock': case 'skb': return SOCK_OPS;
    case 'sockaddr': return SOCKADDR_OPS;
    case 'nop': return [];
    default: return INT_OPS;
  }
}

/** "sock, skb and sockaddr args" for a hint on where an operator does apply. */
function typesFor(op: Operator): string {
  const groups: Array<[readonly Operator[], string]> = [
    [INT_OPS, 'integer args (int, uint64, size_t, …)'],
    [STRING_OPS, 'string, char_buf, file and path args'],
    [SOCKADDR_OPS, 'sock, skb and sockaddr args'],
    [SOCK_OPS, 'sock and skb args'],
  ];
  return groups.filter(([ops]) => ops.includes(op)).map(([, t]) => t).join(' and ');
}

const TALLY_SELECTOR_KEYS = ['matchArgs', 'matchBinaries', 'matchNamespaces'] as const;
/** Every field of Tetragon's KProbeSelector. */
export const TETRAGON_SELECTOR_KEYS = [
  'label', 'matchPIDs', 'matchArgs', 'matchData', 'matchActions', 'matchReturnArgs', 'matchReturnActions',
  'matchBinaries', 'matchParentBinaries', 'matchNamespaces', 'matchNamespaceChanges', 'matchCapabilities',
  'matchCapabilityChanges', 'matchWorkloads', 'macros',
] as const;

/** The selectors of a hook, and each one's fields for the format-specific checks. */
export function readSelectors(hook: Fields, args: ArgDecl[], cx: HookCx): { selectors: Selector[]; fields: Fields[] } {
  const selectors: Selector[] = [];
  const all: Fields[] = [];
  for (const item of hook.get('selectors')?.list(LIMITS.selectorsPerHook, 'selectors') ?? []) {
    const f = item.mapping(cx.format === 'tetragon' ? TETRAGON_SELECTOR_KEYS : TALLY_SELECTOR_KEYS);
    if (!f) continue;
    all.push(f);
    const s: Selector = { matchArgs: [], matchBinaries: [], matchNamespaces: [] };
    for (const n of filters(f, 'matchArgs', LIMITS.matchArgsPerSelector)) {
      const a = readArgFilter(n, args, cx);
      if (a) s.matchArgs.push(a);
    }
    for (const n of filters(f, 'matchBinaries', LIMITS.matchBinariesPerSelector)) {
      const b = readBinaryFilter(n, cx);
      if (b) s.matchBinaries.push(b);
    }
    if (cx.format === 'tally') {
      for (const n of filters(f, 'matchNamespaces', LIMITS.matchNamespacesPerSelector)) {
        const ns = readNamespaceFilter(n);
        if (ns) s.matchNamespaces.push(ns);
      }
    }
    selectors.push(s);
  }
  return { selectors, fields: all };
}

/** The entries of a filter list; a field written with nothing (`matchPIDs:`) filters nothing, as in Tetragon. */
export function filters(f: Fields, key: string, max: number): Node[] {
  const n = f.get(key);
  if (!n || n.value === null) return [];
  return n.list(max, `${key} entries`) ?? [];
}

function readOperator(node: Node, cx: HookCx): Operator | undefined {
  const text = node.string();
  if (text === undefined) return undefined;
  const op = OPERATOR_ALIASES[text] ?? text;
  if ((ARG_OPERATORS as readonly string[]).includes(op)) return op as Operator;
  if (cx.format === 'tetragon' && TETRAGON_OTHER_OPERATORS.includes(op)) {
    cx.unsupported(node, `an operator tally implements (${ARG_OPERATORS.join(', ')})`,
      'without this filter the hook would count calls the policy does not select', 'drop');
    return undefined;
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

const TALLY_MATCHARG_KEYS = ['index', 'operator', 'values'] as const;
const TETRAGON_MATCHARG_KEYS = ['index', 'args', 'operator', 'values'] as const;

function readArgFilter(node: Node, args: ArgDecl[], cx: HookCx): ArgFilter | undefined {
  const f = node.mapping(cx.format === 'tetragon' ? TETRAGON_MATCHARG_KEYS : TALLY_MATCHARG_KEYS);
  if (!f) return undefined;
  const opNode = f.require('operator', oneOf(ARG_OPERATORS));
  const op = opNode && readOperator(opNode, cx);
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
  if (type === 'fd' && cx.format === 'tetragon') {
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
  if (op === 'Protocol' || op === 'Family') {
    const values = parseAll(valueNodes, (_n, t) => (op === 'Protocol' ? parseProtocol(t) : parseFamily(t)));
    return values && (op === 'Protocol' ? { kind: 'protocol', index, operator: op, values } : { kind: 'family', index, operator: op, values });
  }
  if (allowed === STRING_OPS) {
    const values = parseAll(valueNodes, (_n, t) => parseString(t));
    return values && { kind: 'string', index, operator: op as StringOperator, values };
  }
  const values = parseAll(valueNodes, (_n, t) => parseInteger(t, type as IntArgType));
  return values && { kind: 'int', index, operator: op as IntOperator, values };
}

/** Parses every value, reporting each bad one; undefined if any was bad. */
function parseAll<T>(nodes: Node[], parse: (n: Node, text: string) => Parsed<T>): T[] | undefined {
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

const BINARY_OPS: readonly BinaryOperator[] = ['In', 'NotIn', 'Prefix', 'NotPrefix', 'Postfix', 'NotPostfix'];

function readBinaryFilter(node: Node, cx: HookCx): BinaryFilter | undefined {
  const f = node.mapping(cx.format === 'tetragon' ? ['operator', 'values', 'followChildren'] : ['operator', 'values']);
  if (!f) return undefined;
  const operator = f.require('operator', oneOf(BINARY_OPS))?.choice(BINARY_OPS);
  const valueNodes = f.require('values', 'a list of executable paths')?.list(LIMITS.valuesPerFilter, 'values', 1);
  const follow = f.get('followChildren');
  if (follow?.boolean()) {
    cx.unsupported(follow, 'followChildren: false', 'tally matches the binary of the calling process only and does not follow its children', 'drop');
  }
  if (!operator || !valueNodes) return undefined;
  const values = parseAll(valueNodes, (_n, t) => parseString(t, 'a non-empty path'));
  if (!values) return undefined;
  if (operator !== 'Postfix' && operator !== 'NotPostfix') {
    valueNodes.forEach((n, i) => {
      if (!values[i].startsWith('/')) n.report('warning', 'an absolute path', 'binary paths are absolute, so this value never matches');
    });
  }
  return { operator, values };
}

/** DNS-1123 label: what Kubernetes allows as a namespace name. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_EXPECTED = 'a Kubernetes name (lowercase letters, digits and -, starting and ending with a letter or digit, at most 63 characters)';

function readNamespaceFilter(node: Node): NamespaceFilter | undefined {
  const f = node.mapping(['operator', 'values']);
  if (!f) return undefined;
  const operator = f.require('operator', 'one of In, NotIn')?.choice(['In', 'NotIn'] as const);
  const valueNodes = f.require('values', 'a list of Kubernetes namespaces')?.list(LIMITS.valuesPerFilter, 'values', 1);
  if (!operator || !valueNodes) return undefined;
  const values: string[] = [];
  for (const n of valueNodes) {
    const v = n.string(DNS_LABEL_EXPECTED);
    if (v !== undefined && !DNS_LABEL.test(v)) n.error(DNS_LABEL_EXPECTED);
    else if (v !== undefined) values.push(v);
  }
  return values.length === valueNodes.length ? { operator, values } : undefined;
}
