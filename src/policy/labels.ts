/**
 * Extra labels of a metric: values taken from an arg, capped either at the
 * first maxValues distinct values or at a list of prefixes, everything else
 * folded into overflowValue, so a label can never blow up cardinality.
 */
import { ExtraLabel, NetField, STRING_ARG_TYPES, TaskField } from './model';
import { Fields, Node } from './reader';
import { ArgDecl } from './args';
import { HookInfo } from './hook-context';
import { LIMITS } from './limits';
import { anArg, oneOf } from './problems';
import { FILTER_LABELS } from '../labels/label-filter';
import { parseString } from './values';
import { kernelLabels } from './kernel-labels';

/**
 * Labels tally puts on series: the label filter's (node may join them, as the
 * design notes plan), the overflow marker, and Prometheus's bucket label.
 */
const RESERVED_WHY: Readonly<Record<string, string>> = {
  ...Object.fromEntries([...FILTER_LABELS, 'node'].map((l) => [l, `tally puts ${l} on series through --metrics-label-filter`])),
  overflow: 'tally marks overflow series with it',
  le: 'Prometheus names histogram buckets with it',
};
export const RESERVED_LABELS: readonly string[] = Object.keys(RESERVED_WHY);

const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LABEL_KEYS = ['name', 'arg', 'field', 'maxValues', 'prefixes', 'peer', 'overflowValue'] as const;
const PEER_KINDS = ['class', 'namespace', 'service'] as const;
type PeerKind = (typeof PEER_KINDS)[number];
const NET_FIELDS: readonly NetField[] = ['saddr', 'daddr', 'sport', 'dport', 'protocol', 'family'];
const SOCKADDR_FIELDS: readonly NetField[] = ['saddr', 'sport', 'family'];
const TASK_FIELDS: readonly TaskField[] = ['exitStatus'];

const isString = (d: ArgDecl | undefined): boolean => (STRING_ARG_TYPES as readonly string[]).includes(d?.arg?.type ?? '');

/** A Prometheus metric or label name, with a corrected spelling as the hint when there is one. */
export function readName(node: Node, what: 'metric' | 'label'): string | undefined {
  const name = node.string();
  if (name === undefined) return undefined;
  if (!NAME.test(name) || name.startsWith('__') || name.length > LIMITS.nameLength) {
    const fixed = name.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^(\d)/, '_$1').replace(/^__+/, '');
    return node.error(`a Prometheus ${what} name (letters, digits and _, not starting with a digit or __, at most ${LIMITS.nameLength} characters)`,
      fixed && fixed !== name && NAME.test(fixed) ? `write "${fixed}"` : undefined);
  }
  return name;
}

/** The `labels` of a metric; undefined when any is invalid. */
export function readLabels(metric: Fields, info: HookInfo): ExtraLabel[] | undefined {
  // Peer labels of one arg share a value of the key, so a list with peer labels may be longer than the values the kernel keeps.
  const node = metric.get('labels');
  const raw = Array.isArray(node?.value) ? (node.value as unknown[]) : [];
  const hasPeer = raw.some((x) => typeof x === 'object' && x !== null && 'peer' in x);
  const items = node?.list(LIMITS.labelsPerMetric + (hasPeer ? PEER_KINDS.length - 1 : 0), 'labels') ?? [];
  const out: ExtraLabel[] = [];
  let ok = true;
  for (const item of items) {
    const l = readLabel(item, info);
    if (l && out.some((o) => o.name === l.name)) {
      item.child('name', l.name).error('each label name once per metric', undefined, `"${l.name}" again`);
      ok = false;
    } else if (l && l.peer && out.some((o) => o.peer === l.peer && o.arg === l.arg)) {
      item.child('peer', l.peer).error(`each part of a peer once per arg`, `"${out.find((o) => o.peer === l.peer && o.arg === l.arg)!.name}" is the peer's ${l.peer} already`, `${l.peer} again`);
      ok = false;
    } else if (l && kernelLabels([...out, l]).kernel.length > LIMITS.labelsPerMetric) {
      item.error(`at most ${LIMITS.labelsPerMetric} label values per metric (peer labels of one arg count once)`, 'drop a label, or fold two into one', `label ${l.name}`);
      ok = false;
    } else if (l) out.push(l);
    else ok = false;
  }
  return ok ? out : undefined;
}

function readLabel(node: Node, info: HookInfo): ExtraLabel | undefined {
  const f = node.mapping(LABEL_KEYS);
  if (!f) return undefined;
  const nameNode = f.require('name', 'a Prometheus label name');
  let name = nameNode && readName(nameNode, 'label');
  if (name !== undefined && RESERVED_LABELS.includes(name)) {
    name = nameNode?.error(`a label name other than ${RESERVED_LABELS.join(', ')}`, `${RESERVED_WHY[name]}; pick another name`);
  }
  const argNode = f.require('arg', 'the index of a declared arg');
  const index = argNode?.integer(0, Number.MAX_SAFE_INTEGER, 'an arg index');
  const decl = index === undefined ? undefined : info.args.find((d) => d.index === index);
  if (argNode && index !== undefined && !decl?.arg) {
    argNode.error(`the index of a declared arg (${info.args.map((d) => d.index).join(', ') || 'this hook declares none'})`, undefined, `${index}`);
  }
  const type = decl?.arg?.type;
  if (decl) decl.used = true;
  const field = readField(f, type);
  const overflowNode = f.get('overflowValue');
  const overflowValue = overflowNode ? readLabelValue(overflowNode) : 'other';
  const maxNode = f.get('maxValues');
  const prefixNode = f.get('prefixes');
  const peerNode = f.get('peer');
  let maxValues: number | undefined;
  let prefixes: string[] | undefined;
  let peer: PeerKind | undefined;
  if (peerNode) {
    peer = readPeer(peerNode, maxNode ?? prefixNode, type, field);
    if (peer === undefined) return undefined;
  } else if (maxNode && prefixNode) {
    prefixNode.error('either maxValues or prefixes', 'prefixes already cap the values at one per prefix', 'both');
  } else if (prefixNode) {
    if (type !== undefined && !isString(decl)) {
      prefixNode.report('error', 'prefixes only on a string, char_buf, file or path arg', 'use maxValues to cap other values', `prefixes on ${anArg(type)}`, true);
    } else {
      const items = prefixNode.list(LIMITS.prefixesPerLabel, 'prefixes', 1);
      const parsed = items?.map(readLabelValue);
      if (parsed && parsed.every((p) => p !== undefined)) prefixes = parsed as string[];
    }
  } else {
    maxValues = f.require('maxValues', `the number of distinct values kept, from ${LIMITS.minLabelValues} to ${LIMITS.maxLabelValues} (or prefixes)`)
      ?.integer(LIMITS.minLabelValues, LIMITS.maxLabelValues, 'a number of values');
  }
  if (name === undefined || decl?.arg === undefined || overflowValue === undefined || field === null) return undefined;
  if (maxValues === undefined && prefixes === undefined && peer === undefined) return undefined;
  const label: ExtraLabel = { name, arg: decl.index, overflowValue };
  if (peer !== undefined) label.peer = peer;
  if (field !== undefined) label.field = field;
  if (maxValues !== undefined) label.maxValues = maxValues;
  if (prefixes !== undefined) label.prefixes = prefixes;
  return label;
}

/** A field of a network arg; undefined when the arg has none; null when invalid. */
function readField(f: Fields, type: string | undefined): NetField | TaskField | undefined | null {
  const node = f.get('field');
  if (type === undefined) return node ? null : undefined;
  const fields: readonly (NetField | TaskField)[] | undefined =
    type === 'sock' || type === 'skb' || type === 'socket' || type === 'packet' ? NET_FIELDS : type === 'sockaddr' ? SOCKADDR_FIELDS : type === 'task' ? TASK_FIELDS : undefined;
  if (!fields) {
    if (!node) return undefined;
    node.report('error', `no field on ${anArg(type)}`, 'fields apply to sock, skb, socket, packet, sockaddr and task args', `field ${node.found}`, true);
    return null;
  }
  const n = f.require('field', `which part of the ${type} to use: ${oneOf(fields)}`);
  return n?.choice(fields) ?? null;
}

function readLabelValue(node: Node): string | undefined {
  const text = node.string();
  if (text === undefined) return undefined;
  const r = parseString(text);
  return r.ok ? r.value : node.error(r.expected, r.hint);
}

/**
 * `peer: class`: the label is the peer class of a socket's remote address,
 * which the peer table bounds; undefined when invalid (reported).
 */
function readPeer(node: Node, cap: Node | undefined, type: string | undefined, field: NetField | TaskField | undefined | null): PeerKind | undefined {
  const kind = node.choice(PEER_KINDS);
  if (kind === undefined) return undefined;
  if (cap) {
    cap.report('error', 'no maxValues or prefixes on a peer label', 'the peer table bounds its values: --metrics-peer-cidrs names them', cap.found, true);
    return undefined;
  }
  if (type !== undefined && type !== 'sock' && type !== 'skb' && type !== 'socket' && type !== 'packet') {
    node.report('error', 'peer on a sock, skb, socket or packet arg', 'the peer is the remote address of a socket or packet', `peer on ${anArg(type)}`, true);
    return undefined;
  }
  if (field !== undefined && field !== null && field !== 'daddr') {
    node.report('error', 'field daddr with peer', 'the peer is the remote address (daddr)', `field ${field}`, true);
    return undefined;
  }
  return field === null ? undefined : kind;
}
