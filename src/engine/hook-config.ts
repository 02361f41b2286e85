/**
 * Encodes a compiled hook into struct tally_pol_config (bpf/policy.h), the
 * `const volatile` configuration of one policy hook's object. Offsets are
 * written out here and checked against the addon's view of the header
 * (checkHookConfigLayout), so neither side can drift unseen.
 */
import { native } from '../native/addon';

export const POL = {
  args: 6,
  selectors: 5,
  filters: 5,
  binaries: 4,
  values: 16,
  tasks: 2,
  taskValues: 4,
  metrics: 8,
  labels: 2,
  str: 128,
  none: 0xff,
} as const;

/** enum tally_pol_source */
export const Source = { none: 0, regs: 1, ctx: 2, record: 3, syscall: 4, constant: 5, groupDead: 6, usdt: 7, packet: 8 } as const;
/** enum tally_pol_type */
export const ArgKind = { int: 1, uint: 2, string: 3, file: 4, path: 5, fd: 6, sock: 7, skb: 8, sockaddr: 9, task: 10, binprm: 11, socket: 12, netdev: 13, packet: 14 } as const;
/** enum tally_pol_field */
export const Field = { value: 0, saddr: 1, daddr: 2, sport: 3, dport: 4, protocol: 5, family: 6, fileType: 7, string: 8, exitStatus: 9, stringEnd: 10, fsMagic: 11 } as const;
/** enum tally_pol_op */
export const Op = { eq: 1, neq: 2, gt: 3, lt: 4, mask: 5, range: 6, notRange: 7, lpm: 8, notLpm: 9, notMask: 10 } as const;
/** enum tally_pol_label_kind */
export const LabelKind = { none: 0, capped: 1, prefix: 2, constant: 3, bounded: 4, peer: 5 } as const;
/** enum tally_pol_value */
export const ValueKind = { count: 0, arg: 1, return: 2, latency: 3 } as const;
/** enum tally_pol_task_field: what a task filter reads of the calling task. */
export const TaskField = {
  nsUts: 1, nsIpc: 2, nsMnt: 3, nsPid: 4, nsPidForChildren: 5, nsNet: 6, nsTime: 7, nsTimeForChildren: 8, nsCgroup: 9, nsUser: 10,
  capEffective: 16, capPermitted: 17, capInheritable: 18,
} as const;
/** want_file bits (TALLY_WANT_*): what of a file the program reads. */
export const WantFile = { fileType: 1, fsMagic: 2 } as const;

export interface ArgConfig {
  source: number;
  type: number;
  size: number;
  user: boolean;
  wantStr: boolean;
  /** Bit 1 << Field.* for each net field read. */
  wantNet: number;
  /** Bit 1: the file's type; bit 2: its file system's magic number (TALLY_WANT_*). */
  wantFile: number;
  index: number;
  /** Source.constant: the value. */
  konst?: number;
}

export interface FilterConfig {
  op: number;
  arg: number;
  field: number;
  slot: number;
  values: bigint[];
}

export interface SelectorConfig {
  filters: FilterConfig[];
  /** field 0: a set of binary ids; Field.string or Field.stringEnd: the path's prefix or postfix (LPM). */
  binaries: Array<{ in: boolean; slot: number; field: number }>;
  /** matchNamespaces, combined: the owner's namespace id is one of `ids` (in), or none of them. */
  namespaces?: { in: boolean; ids: bigint[] };
  /** Tetragon's matchNamespaces and matchCapabilities: a TaskField, Op.eq/neq with inode numbers, or Op.mask/notMask with one mask. */
  tasks?: Array<{ field: number; op: number; values: bigint[] }>;
}

export interface LabelConfig {
  kind: number;
  arg: number;
  field: number;
  slot: number;
  cap: number;
}

export interface MetricConfig {
  id: number;
  /** Hooks with matchNamespaces: the id counts of owners whose namespace is not known yet wait under. */
  pendingId?: number;
  histogram: boolean;
  value: number;
  arg: number;
  labels: LabelConfig[];
}

export interface HookConfig {
  ownerArg: number;
  hasReturn: boolean;
  retSigned: boolean;
  taskContext: boolean;
  /** Some selector filters on the binary. */
  matchBinaries: boolean;
  /** Some selector filters on the Kubernetes namespace. */
  matchNamespaces: boolean;
  /** fexit in the compat build: the context slot of the return value (the function's argument count); 0 otherwise. */
  fexitRetSlot?: number;
  /** Bytes of the return value as declared (1, 2, 4 or 8): the kernel extends a narrower one from its low bytes. */
  retSize: number;
  syscallNr: number;
  args: ArgConfig[];
  selectors: SelectorConfig[];
  metrics: MetricConfig[];
}

const L = {
  config: 5176,
  configSyscallNr: 8,
  configMatchNamespaces: 12,
  configFexitRetSlot: 13,
  configRetSize: 14,
  configArgs: 16,
  configMetrics: 112,
  configSelectors: 496,
  arg: 16,
  argIndex: 8,
  argKonst: 12,
  filter: 136,
  filterSlot: 4,
  filterValues: 8,
  selector: 936,
  selectorFilters: 8,
  selectorBinaries: 688,
  selectorNamespaces: 720,
  namespaces: 136,
  namespacesValues: 8,
  selectorTasks: 856,
  taskFilter: 40,
  taskFilterValues: 8,
  binaries: 8,
  label: 16,
  labelSlot: 4,
  labelCap: 8,
  metric: 48,
  metricLabels: 8,
  metricPendingId: 40,
  lpmKey: 8 + 128,
  binaryKey: 16,
  seenKey: 16,
};

function over(what: string, n: number, cap: number): void {
  if (n > cap) throw new Error(`${what}: ${n} exceeds the engine's ${cap}`);
}

export function encodeHookConfig(c: HookConfig): Buffer {
  over('args', c.args.length, POL.args);
  over('selectors', c.selectors.length, POL.selectors);
  over('metrics', c.metrics.length, POL.metrics);
  const b = Buffer.alloc(L.config);
  b.writeUInt8(c.args.length, 0);
  b.writeUInt8(c.selectors.length, 1);
  b.writeUInt8(c.metrics.length, 2);
  b.writeUInt8(c.ownerArg, 3);
  b.writeUInt8(c.hasReturn ? 1 : 0, 4);
  b.writeUInt8(c.retSigned ? 1 : 0, 5);
  b.writeUInt8(c.taskContext ? 1 : 0, 6);
  b.writeUInt8(c.matchBinaries ? 1 : 0, 7);
  b.writeUInt32LE(c.syscallNr >>> 0, L.configSyscallNr);
  b.writeUInt8(c.matchNamespaces ? 1 : 0, L.configMatchNamespaces);
  b.writeUInt8(c.fexitRetSlot ?? 0, L.configFexitRetSlot);
  b.writeUInt8(c.retSize, L.configRetSize);
  c.args.forEach((a, i) => {
    const o = L.configArgs + i * L.arg;
    b.writeUInt8(a.source, o);
    b.writeUInt8(a.type, o + 1);
    b.writeUInt8(a.size, o + 2);
    b.writeUInt8(a.user ? 1 : 0, o + 3);
    b.writeUInt8(a.wantStr ? 1 : 0, o + 4);
    b.writeUInt8(a.wantNet, o + 5);
    b.writeUInt8(a.wantFile, o + 6);
    b.writeUInt16LE(a.index, o + L.argIndex);
    b.writeInt32LE(a.konst ?? 0, o + L.argKonst);
  });
  c.selectors.forEach((s, i) => {
    const o = L.configSelectors + i * L.selector;
    over('matchArgs of a selector', s.filters.length, POL.filters);
    over('matchBinaries of a selector', s.binaries.length, POL.binaries);
    b.writeUInt8(s.filters.length, o);
    b.writeUInt8(s.binaries.length, o + 1);
    over('task filters of a selector', s.tasks?.length ?? 0, POL.tasks);
    b.writeUInt8(s.tasks?.length ?? 0, o + 2);
    s.tasks?.forEach((t, j) => {
      const to = o + L.selectorTasks + j * L.taskFilter;
      over('values of a task filter', t.values.length, POL.taskValues);
      b.writeUInt8(t.field, to);
      b.writeUInt8(t.op, to + 1);
      b.writeUInt8(t.values.length, to + 2);
      t.values.forEach((v, k) => b.writeBigUInt64LE(BigInt.asUintN(64, v), to + L.taskFilterValues + 8 * k));
    });
    s.filters.forEach((f, j) => {
      const fo = o + L.selectorFilters + j * L.filter;
      over('values of a filter', f.values.length, POL.values);
      b.writeUInt8(f.op, fo);
      b.writeUInt8(f.arg, fo + 1);
      b.writeUInt8(f.field, fo + 2);
      b.writeUInt8(f.values.length, fo + 3);
      b.writeUInt32LE(f.slot, fo + L.filterSlot);
      f.values.forEach((v, k) => b.writeBigUInt64LE(BigInt.asUintN(64, v), fo + L.filterValues + 8 * k));
    });
    s.binaries.forEach((bin, j) => {
      const bo = o + L.selectorBinaries + j * L.binaries;
      b.writeUInt8(bin.in ? 1 : 0, bo);
      b.writeUInt8(bin.field, bo + 1);
      b.writeUInt32LE(bin.slot, bo + 4);
    });
    if (s.namespaces) {
      const no = o + L.selectorNamespaces;
      over('namespaces of a selector', s.namespaces.ids.length, POL.values);
      b.writeUInt8(s.namespaces.in ? Op.eq : Op.neq, no);
      b.writeUInt8(s.namespaces.ids.length, no + 1);
      s.namespaces.ids.forEach((id, k) => b.writeBigUInt64LE(id, no + L.namespacesValues + 8 * k));
    }
  });
  c.metrics.forEach((m, i) => {
    const o = L.configMetrics + i * L.metric;
    over('labels of a metric', m.labels.length, POL.labels);
    b.writeUInt32LE(m.id, o);
    b.writeUInt8(m.histogram ? 1 : 0, o + 4);
    b.writeUInt8(m.value, o + 5);
    b.writeUInt8(m.arg, o + 6);
    b.writeUInt8(m.labels.length, o + 7);
    b.writeUInt32LE(m.pendingId ?? 0, o + L.metricPendingId);
    m.labels.forEach((l, j) => {
      const lo = o + L.metricLabels + j * L.label;
      b.writeUInt8(l.kind, lo);
      b.writeUInt8(l.arg, lo + 1);
      b.writeUInt8(l.field, lo + 2);
      b.writeUInt32LE(l.slot, lo + L.labelSlot);
      b.writeUInt32LE(l.cap, lo + L.labelCap);
    });
  });
  return b;
}

/** Key of tally_pol_lpm: prefix length in bits (32 for the slot, then the data's), slot big-endian, data. */
export function lpmKey(slot: number, data: Buffer, dataBits: number): Buffer {
  const k = Buffer.alloc(L.lpmKey);
  k.writeUInt32LE(32 + dataBits, 0);
  k.writeUInt32BE(slot, 4);
  data.copy(k, 8, 0, Math.min(data.length, POL.str));
  return k;
}

export function binaryKey(slot: number, binaryId: bigint): Buffer {
  const k = Buffer.alloc(L.binaryKey);
  k.writeUInt32LE(slot, 0);
  k.writeBigUInt64LE(binaryId, 8);
  return k;
}

/** Throws if the addon's view of bpf/policy.h differs from this file's. */
export function checkHookConfigLayout(): void {
  const p = native().layout.policy;
  const want: Array<[string, number]> = [
    ['config', L.config],
    ['config_syscall_nr', L.configSyscallNr],
    ['config_args', L.configArgs],
    ['config_selectors', L.configSelectors],
    ['config_metrics', L.configMetrics],
    ['config_match_namespaces', L.configMatchNamespaces],
    ['config_fexit_ret_slot', L.configFexitRetSlot],
    ['config_ret_size', L.configRetSize],
    ['arg', L.arg],
    ['arg_index', L.argIndex],
    ['arg_konst', L.argKonst],
    ['filter', L.filter],
    ['filter_slot', L.filterSlot],
    ['filter_values', L.filterValues],
    ['selector', L.selector],
    ['selector_filters', L.selectorFilters],
    ['selector_binaries', L.selectorBinaries],
    ['selector_namespaces', L.selectorNamespaces],
    ['namespaces', L.namespaces],
    ['namespaces_values', L.namespacesValues],
    ['selector_tasks', L.selectorTasks],
    ['task_filter', L.taskFilter],
    ['task_filter_values', L.taskFilterValues],
    ['binaries', L.binaries],
    ['label', L.label],
    ['label_slot', L.labelSlot],
    ['label_cap', L.labelCap],
    ['metric', L.metric],
    ['metric_labels', L.metricLabels],
    ['metric_pending_id', L.metricPendingId],
    ['lpm_key', L.lpmKey],
    ['binary_key', L.binaryKey],
    ['seen_key', L.seenKey],
  ];
  const c = native().layout.policyConstants;
  const constants = hookConstants();
  const known = new Set(constants.map(([k]) => k));
  const bad = [
    ...want.filter(([k, v]) => p[k] !== v).map(([k, v]) => `${k} is ${p[k]} in C, ${v} in TypeScript`),
    ...constants.filter(([k, v]) => c[k] !== v).map(([k, v]) => `${k} is ${c[k]} in C, ${v} in TypeScript`),
    ...Object.keys(c).filter((k) => !known.has(k)).map((k) => `${k} is ${c[k]} in C, unknown in TypeScript`),
  ];
  if (bad.length) throw new Error(`bpf/policy.h and src/engine/hook-config.ts disagree: ${bad.join('; ')}`);
}

/**
 * Every cap and enum value above under its name in bpf/policy.h, so that a
 * value added or renumbered on one side only fails at startup: the C names
 * are the TypeScript ones in upper snake case under each enum's prefix.
 */
export function hookConstants(): Array<[string, number]> {
  const upper = (name: string): string => name.replace(/[A-Z]/g, (ch) => `_${ch}`).toUpperCase();
  const named = (prefix: string, values: Record<string, number>, rename: Record<string, string> = {}): Array<[string, number]> =>
    Object.entries(values).map(([k, v]) => [`${prefix}${rename[k] ?? upper(k)}`, v]);
  return [
    ...named('TALLY_POL_', POL),
    ...named('TALLY_SRC_', Source, { constant: 'CONST' }),
    ...named('TALLY_T_', ArgKind),
    ...named('TALLY_F_', Field),
    ...named('TALLY_OP_', Op),
    ...named('TALLY_LABEL_', LabelKind, { constant: 'CONST' }),
    ...named('TALLY_VAL_', ValueKind),
    ...named('TALLY_WANT_', WantFile),
    ...named('TALLY_TASK_', TaskField),
  ];
}
