/**
 * A validated policy hook (src/policy model) compiled into what the kernel
 * runs: for each way the hook can attach (fentry, kprobe, raw syscall
 * tracepoints, …, in order of preference and only those the kernel offers), the
 * programs to load and the configuration they read, plus the selector values
 * that go into the hook's maps.
 *
 * What the engine cannot do yet is a CompileError naming the feature: the
 * hook then fails with that reason rather than counting something else.
 */
import { CandidateProgram } from '../bpf/loader';
import { Arg, ArgFilter, EXIT_STATUSES, ExtraLabel, Hook, Metric, NamespaceFilter, Selector, TracepointHook } from '../policy/model';
import { namespaceId } from '../labels/namespace-id';
import { binaryIdOfPath } from './binary-id';
import {
  ArgConfig, ArgKind, binaryKey, encodeHookConfig, Field, FilterConfig, HookConfig, LabelConfig, LabelKind, lpmKey, MetricConfig, Op, POL,
  SelectorConfig, Source, ValueKind, WantFile,
} from './hook-config';
import { KernelFeatures } from './kernel-features';
import { FormatField } from './tracefs';
import { CompileError } from './compile-error';
import { ArgPlace, ArgPlaceIndex, AttachWay, attachWays, INT_SIZES } from './attach-ways';
import { compileTaskFilters } from './task-filters';
import { kernelLabels } from '../policy/kernel-labels';

export { CompileError };

/** One way to run the hook: its programs and the configuration they are loaded with. */
export interface PlannedCandidate {
  attach: string;
  programs: CandidateProgram[];
  config: Buffer;
}

export interface HookPlan {
  hook: string;
  candidates: PlannedCandidate[];
  /** Attach types skipped because the startup probe found the kernel refuses them. */
  unavailable: Array<{ attach: string; reason: string }>;
  lpm: Array<{ key: Buffer; value: number }>;
  binaries: Buffer[];
  /** Entries of tally_pol_seen: room for every capped label's values. */
  seenCapacity: number;
  /** Entries of tally_pol_groups_ended: some arg is derived as groupDead. */
  groupEndsCapacity: number;
  /**
   * Entries of tally_pol_inflight (an entry waiting for its return, per
   * task) and tally_pol_binary_paths (a binary's Prefix/Postfix verdict):
   * a hook without a return or without binaries by path never writes them,
   * and at full size they are 5 MB of kernel memory per hook.
   */
  inflightCapacity: number;
  binaryPathsCapacity: number;
}

export interface CompileContext {
  features: KernelFeatures;
  /** Where packet hooks attach: the cgroup v2 root; found in /proc/self/mounts when not given. */
  cgroupRoot?: string;
  /** Syscall name -> number on this architecture. */
  syscalls: Readonly<Record<string, number>>;
  /** The metric id each of the hook's metrics counts under. */
  metricId(metric: Metric): number;
  /**
   * Hooks with matchNamespaces: the id a metric's counts wait under while
   * their owner's namespace is not known, one per hook and metric (the
   * selectors it waits on are this hook's).
   */
  pendingMetricId?(metric: Metric): number;
  /** A counter read from a histogram's sum (derived-counters.ts): not counted in the kernel. */
  derived?(metric: Metric): boolean;
  /** For a metric with constant labels (tally_policy_events_total): the value that stands for them in the key. */
  constLabel?(metric: Metric): number | undefined;
  /** Tracepoint formats (tracefs); replaceable in tests. */
  format?: (subsystem: string, event: string) => FormatField[];
  /** Arguments a raw tracepoint passes on this kernel, -1 if BTF does not know it (kernel-btf.ts); replaceable in tests. */
  tracepointArity?: (event: string) => number;
  /** Arguments a kernel function takes, -1 if BTF does not know it (kernel-btf.ts); replaceable in tests. */
  functionArity?: (func: string) => number;
}

const POINTER_KINDS: Record<string, number> = {
  string: ArgKind.string, char_buf: ArgKind.string, file: ArgKind.file, path: ArgKind.path,
  sock: ArgKind.sock, skb: ArgKind.skb, sockaddr: ArgKind.sockaddr, task: ArgKind.task,
  linux_binprm: ArgKind.binprm, socket: ArgKind.socket, net_device: ArgKind.netdev, packet: ArgKind.packet,
};
const FIELDS: Record<string, number> = {
  saddr: Field.saddr, daddr: Field.daddr, sport: Field.sport, dport: Field.dport, protocol: Field.protocol, family: Field.family, exitStatus: Field.exitStatus,
};

/** Exits counted at once by threads of many groups, at most, before a claim is evicted: see tally_pol_groups_ended. */
const GROUP_ENDS_CAPACITY = 4096;
/** As bpf/policy.bpf.c declares them: tasks between an entry and its return, binaries judged by path. */
const INFLIGHT_CAPACITY = 16384;
const BINARY_PATHS_CAPACITY = 4096;

export function compileHook(hook: Hook, ctx: CompileContext): HookPlan {
  const b = new PlanBuilder(hook, ctx);
  return b.plan();
}

/** Which fields of net args filters and labels read, as the bitmask want_net. */
function netFields(filters: ArgFilter[], labels: ExtraLabel[]): number {
  let bits = 0;
  const bit = (f: number): void => void (bits |= 1 << f);
  for (const f of filters) {
    if (f.kind === 'addr') bit(f.operator === 'SAddr' || f.operator === 'NotSAddr' ? Field.saddr : Field.daddr);
    else if (f.kind === 'port') bit(f.operator === 'SPort' || f.operator === 'NotSPort' ? Field.sport : Field.dport);
    else if (f.kind === 'protocol') bit(Field.protocol);
    else if (f.kind === 'family') bit(Field.family);
  }
  for (const l of labels) if (l.field !== undefined && l.field !== 'exitStatus') bit(FIELDS[l.field]);
  return bits;
}

/** Some selector of the hook filters on the Kubernetes namespace: its counts may wait under pending ids. */
export function selectsByNamespace(hook: Hook): boolean {
  return hook.selectors.some((s) => s.matchNamespaces.length > 0);
}

/**
 * A selector's matchNamespaces entries, which AND, as one set the kernel
 * checks with one loop: In the namespaces every In entry names and no NotIn
 * entry does; or, with no In entry, NotIn all that NotIn entries name.
 */
export function namespaceSet(filters: readonly NamespaceFilter[]): { in: boolean; ids: bigint[] } | undefined {
  if (filters.length === 0) return undefined;
  const excluded = new Set(filters.filter((f) => f.operator === 'NotIn').flatMap((f) => f.values));
  const ins = filters.filter((f) => f.operator === 'In').map((f) => new Set(f.values));
  let names: string[];
  if (ins.length > 0) names = [...ins[0]].filter((n) => ins.every((set) => set.has(n)) && !excluded.has(n));
  else names = [...excluded];
  if (names.length > POL.values) {
    throw new CompileError(`matchNamespaces: a selector's entries name ${names.length} namespaces together (NotIn values add up); the engine checks at most ${POL.values}`);
  }
  return { in: ins.length > 0, ids: names.map(namespaceId) };
}

class PlanBuilder {
  private nextSlot = 0;
  private readonly lpm: Array<{ key: Buffer; value: number }> = [];
  private readonly binaries: Buffer[] = [];
  private seenCapacity = 0;
  private binariesByPath = false;
  private groupEnds = false;
  /** args that are read, in declaration order: the config's slots. */
  private readonly args: Arg[];

  constructor(
    private readonly hook: Hook,
    private readonly ctx: CompileContext,
  ) {
    this.args = hook.kind === 'packet' ? packetArgs(hook.args) : hook.args.filter((a) => a.type !== 'nop');
    if (hook.kind === 'packet') refuseTaskSelectors(hook);
  }

  plan(): HookPlan {
    const selectors = this.hook.selectors.map((s) => this.selector(s));
    const metrics = this.hook.metrics.filter((m) => !this.ctx.derived?.(m)).map((m, i) => this.metric(m, i));
    const ways = this.attachWays();
    const candidates: PlannedCandidate[] = [];
    const unavailable: Array<{ attach: string; reason: string }> = [];
    for (const w of ways) {
      const support = this.ctx.features.get(w.feature);
      if (support && !support.ok) {
        unavailable.push({ attach: w.attach, reason: `probed at startup: ${support.reason}` });
        continue;
      }
      const config: HookConfig = {
        ownerArg: this.ownerSlot(),
        hasReturn: this.hasReturn(),
        retSigned: this.returnSigned(),
        retSize: this.returnSize(),
        taskContext: this.hook.taskContext === true,
        matchBinaries: this.hook.selectors.some((s) => s.matchBinaries.length > 0),
        matchNamespaces: selectsByNamespace(this.hook),
        syscallNr: w.syscallNr ?? 0xffffffff,
        fexitRetSlot: w.fexitRetSlot,
        args: this.args.map((a, slot) => this.argConfig(a, slot, w.place)),
        selectors,
        metrics,
      };
      candidates.push({ attach: w.attach, programs: w.programs, config: encodeHookConfig(config) });
    }
    return {
      hook: this.hook.name,
      candidates,
      unavailable,
      lpm: this.lpm,
      binaries: this.binaries,
      seenCapacity: Math.max(1, this.seenCapacity),
      groupEndsCapacity: this.groupEnds ? GROUP_ENDS_CAPACITY : 1,
      inflightCapacity: this.hasReturn() ? INFLIGHT_CAPACITY : 1,
      binaryPathsCapacity: this.binariesByPath ? BINARY_PATHS_CAPACITY : 1,
    };
  }

  private slotOf(index: number, what: string): number {
    const slot = this.args.findIndex((a) => a.index === index);
    if (slot < 0) throw new CompileError(`${what} refers to arg ${index}, which is not read`);
    return slot;
  }

  private hasReturn(): boolean {
    const h = this.hook;
    return (h.kind === 'kprobe' || h.kind === 'uprobe') && h.return;
  }

  private returnSigned(): boolean {
    const h = this.hook;
    if (h.kind === 'tracepoint' || h.kind === 'packet') return false;
    if (h.kind === 'kprobe' && h.syscall) return true;
    const t = h.returnArg?.type;
    return t === undefined || !t.startsWith('uint') && t !== 'size_t';
  }

  /** Bytes of the return value: a syscall's is a long; a returnArg's its type's; undeclared, all 8. */
  private returnSize(): number {
    const h = this.hook;
    if (h.kind === 'tracepoint' || h.kind === 'packet' || (h.kind === 'kprobe' && h.syscall)) return 8;
    const t = h.returnArg?.type;
    return (t !== undefined && INT_SIZES[t]?.[1]) || 8;
  }

  /** A sock, skb or packet arg owns the event: its socket's cgroup, not the task on the CPU. */
  private ownerSlot(): number {
    const slot = this.args.findIndex((a) => a.type === 'sock' || a.type === 'skb' || a.type === 'packet');
    return slot < 0 ? POL.none : slot;
  }

  /** Whether an arg points to user memory: a syscall's own pointers. */
  private userPointers(): boolean {
    const h = this.hook;
    return (h.kind === 'kprobe' && h.syscall) || (h.kind === 'tracepoint' && h.subsystem === 'syscalls') || h.kind === 'uprobe';
  }

  private argConfig(a: Arg, slot: number, place: ArgPlace): ArgConfig {
    const int = INT_SIZES[a.type];
    const pointer = POINTER_KINDS[a.type];
    if (!int && pointer === undefined) throw new CompileError(`arg ${a.index}: type ${a.type} is not supported by the engine`);
    const where = place.index(a);
    const wants = this.uses(slot);
    return {
      source: where.source ?? place.source,
      konst: where.konst,
      type: int ? (where.signed === false && int[0] === ArgKind.int ? ArgKind.uint : int[0]) : pointer,
      size: where.size ?? (int ? int[1] : 8),
      user: this.userPointers(),
      wantStr: wants.str,
      wantNet: wants.net,
      wantFile: wants.file,
      index: where.index,
    };
  }

  /** What selectors and labels read of the arg in this slot. */
  private uses(slot: number): { str: boolean; net: number; file: number } {
    const index = this.args[slot].index;
    const filters = this.hook.selectors.flatMap((s) => s.matchArgs).filter((f) => f.index === index);
    const labels = this.hook.metrics.flatMap((m) => m.labels).filter((l) => l.arg === index);
    return {
      str: filters.some((f) => f.kind === 'string') || labels.some((l) => l.prefixes !== undefined),
      net: netFields(filters, labels),
      file: (filters.some((f) => f.kind === 'filetype') ? WantFile.fileType : 0) | (filters.some((f) => f.kind === 'filesystem') ? WantFile.fsMagic : 0),
    };
  }

  private selector(s: Selector): SelectorConfig {
    return {
      namespaces: namespaceSet(s.matchNamespaces),
      tasks: compileTaskFilters(s.matchTask),
      filters: s.matchArgs.map((f) => this.filter(f)),
      binaries: s.matchBinaries.map((m) => {
        const slot = this.nextSlot++;
        const postfix = m.operator === 'Postfix' || m.operator === 'NotPostfix';
        if (postfix || m.operator === 'Prefix' || m.operator === 'NotPrefix') {
          // By path: the kernel judges each binary once, from the path it walks, as a string arg.
          this.binariesByPath = true;
          this.lpmStrings(slot, m.values, false, postfix);
          return { in: !m.operator.startsWith('Not'), slot, field: postfix ? Field.stringEnd : Field.string };
        }
        const ids: bigint[] = [];
        for (const path of m.values) {
          try {
            ids.push(binaryIdOfPath(path));
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code;
            // Not installed (yet): match by the path the kernel walks, as written, rather than by file identity.
            if (code === 'ENOENT' || code === 'ENOTDIR') {
              this.lpmStrings(slot, m.values, true, false);
              return { in: m.operator === 'In', slot, field: Field.string };
            }
            throw new CompileError(`matchBinaries: cannot read ${path}: ${code ?? (e as Error).message}`);
          }
        }
        for (const id of ids) this.binaries.push(binaryKey(slot, id));
        return { in: m.operator === 'In', slot, field: 0 };
      }),
    };
  }

  /**
   * Strings a filter matches, under slot of the LPM trie: exact ones with
   * their NUL, so only the whole string matches; a Postfix reversed byte by
   * byte (as the kernel reverses the string), then looked up as a prefix.
   */
  private lpmStrings(slot: number, values: readonly string[], exact: boolean, postfix: boolean): void {
    for (const v of values) {
      const text = Buffer.from(v + (exact ? '\0' : ''), 'utf8');
      const bytes = postfix ? Buffer.from(text).reverse() : text;
      this.lpm.push({ key: lpmKey(slot, bytes, 8 * Math.min(bytes.length, POL.str)), value: 0 });
    }
  }

  private filter(f: ArgFilter): FilterConfig {
    const arg = this.slotOf(f.index, 'a matchArgs entry');
    switch (f.kind) {
      case 'int': {
        const op = { Equal: Op.eq, NotEqual: Op.neq, GT: Op.gt, LT: Op.lt, Mask: Op.mask, NotMask: Op.notMask }[f.operator];
        return { op, arg, field: Field.value, slot: 0, values: f.values };
      }
      case 'string': {
        if (POINTER_KINDS[this.args[arg].type] === undefined) throw new CompileError(`a string filter on arg ${f.index}, which is ${this.args[arg].type}`);
        const slot = this.nextSlot++;
        const postfix = f.operator === 'Postfix' || f.operator === 'NotPostfix';
        this.lpmStrings(slot, f.values, f.operator === 'Equal' || f.operator === 'NotEqual', postfix);
        const field = postfix ? Field.stringEnd : Field.string;
        return { op: f.operator.startsWith('Not') ? Op.notLpm : Op.lpm, arg, field, slot, values: [] };
      }
      case 'addr': {
        const slot = this.nextSlot++;
        for (const c of f.values) {
          const data = Buffer.alloc(16);
          Buffer.from(c.bytes).copy(data);
          this.lpm.push({ key: lpmKey(slot * 2 + (c.family === 6 ? 1 : 0), data, c.prefixLen), value: 0 });
        }
        const field = f.operator === 'SAddr' || f.operator === 'NotSAddr' ? Field.saddr : Field.daddr;
        return { op: f.operator.startsWith('Not') ? Op.notLpm : Op.lpm, arg, field, slot, values: [] };
      }
      case 'port': {
        const field = f.operator === 'SPort' || f.operator === 'NotSPort' ? Field.sport : Field.dport;
        const values = f.values.map((r) => BigInt(r.min) | (BigInt(r.max) << 32n));
        return { op: f.operator.startsWith('Not') ? Op.notRange : Op.range, arg, field, slot: 0, values };
      }
      case 'protocol':
        return { op: Op.eq, arg, field: Field.protocol, slot: 0, values: f.values.map(BigInt) };
      case 'family':
        return { op: Op.eq, arg, field: Field.family, slot: 0, values: f.values.map(BigInt) };
      case 'filetype':
        return { op: f.operator === 'FileType' ? Op.eq : Op.neq, arg, field: Field.fileType, slot: 0, values: f.values.map(BigInt) };
      case 'filesystem':
        return { op: f.operator === 'FileSystem' ? Op.eq : Op.neq, arg, field: Field.fsMagic, slot: 0, values: f.values.map(BigInt) };
    }
  }

  private metric(m: Metric, position: number): MetricConfig {
    const value = m.value;
    if ((value.kind === 'return' || value.kind === 'latency') && !this.hasReturn()) {
      throw new CompileError(`metric ${m.name}: value ${value.kind} needs a hook with return: true`);
    }
    let pendingId: number | undefined;
    if (selectsByNamespace(this.hook)) {
      if (!this.ctx.pendingMetricId) throw new CompileError('matchNamespaces needs a pending metric id (internal)');
      pendingId = this.ctx.pendingMetricId(m);
    }
    return {
      id: this.ctx.metricId(m),
      pendingId,
      histogram: m.type === 'histogram',
      value: { count: ValueKind.count, arg: ValueKind.arg, return: ValueKind.return, latency: ValueKind.latency }[value.kind],
      arg: value.kind === 'arg' ? this.slotOf(value.index, `metric ${m.name}`) : 0,
      labels:
        Object.keys(m.constLabels).length > 0
          ? [{ kind: LabelKind.constant, arg: 0, field: 0, slot: this.constLabel(m), cap: 0 }]
          : kernelLabels(m.labels).kernel.map((l, j) => this.label(l, position * POL.labels + j)),
    };
  }

  private constLabel(m: Metric): number {
    const v = this.ctx.constLabel?.(m);
    if (v === undefined) throw new CompileError(`metric ${m.name}: constant labels without a value for them`);
    return v;
  }

  private label(l: ExtraLabel, seenSlot: number): LabelConfig {
    const arg = this.slotOf(l.arg, `label ${l.name}`);
    if (l.prefixes) {
      const slot = this.nextSlot++;
      l.prefixes.forEach((p, i) => {
        const bytes = Buffer.from(p, 'utf8');
        this.lpm.push({ key: lpmKey(slot, bytes, 8 * Math.min(bytes.length, POL.str)), value: i });
      });
      return { kind: LabelKind.prefix, arg, field: Field.string, slot, cap: l.prefixes.length };
    }
    // The kernel resolves the remote address through the shared peer trie: bounded by user space's table, nothing to track.
    if (l.peer) return { kind: LabelKind.peer, arg, field: Field.daddr, slot: 0, cap: 0 };
    const field = l.field ? FIELDS[l.field] : Field.value;
    if (field === Field.saddr || field === Field.daddr) throw new CompileError(`label ${l.name}: address labels are not supported by the engine yet`);
    const cap = l.maxValues ?? 1;
    // A field that cannot take more values than the cap needs no map of values seen (a hash lookup per event).
    if (field === Field.exitStatus && cap >= EXIT_STATUSES.length) return { kind: LabelKind.bounded, arg, field, slot: 0, cap };
    this.seenCapacity += cap;
    return { kind: LabelKind.capped, arg, field, slot: seenSlot, cap };
  }

  /** The ways this hook can attach, most preferred first (attach-ways.ts). */
  private attachWays(): AttachWay[] {
    return attachWays(this.hook, this.ctx, (a, h, arity) => this.missingArg(a, h, arity));
  }

  /**
   * An arg past the last one this kernel's tracepoint passes: reading it
   * would be refused (tp_btf at load, raw_tp at attach), so the policy's
   * ifMissing says what it stands for here.
   */
  private missingArg(a: Arg, h: TracepointHook, arity: number): ArgPlaceIndex {
    const has = arity === 0 ? 'passes no args' : `passes ${arity} arg${arity === 1 ? '' : 's'} (0..${arity - 1})`;
    const m = a.ifMissing;
    if (!m) throw new CompileError(`arg ${a.index}: tracepoint ${h.subsystem}/${h.event} ${has} on this kernel; add ifMissing to the arg to say what it means here`);
    if (m.kind === 'constant') return { index: 0, source: Source.constant, konst: m.value };
    // The task arg is compiled too: if this kernel lacks it as well, that refuses the hook.
    const task = this.args.find((t) => t.index === m.arg);
    if (!task || task.type !== 'task') throw new CompileError(`arg ${a.index}: ifMissing groupDead reads arg ${m.arg}, which must be declared with type task`);
    this.groupEnds = true;
    return { index: m.arg, source: Source.groupDead };
  }
}

/**
 * A packet hook's two args in the slots the kernel fills (bpf/policy.bpf.c:
 * the packet in slot 0, its payload's bytes in slot 1), whatever the policy
 * declares: it names their types, not where they are.
 */
function packetArgs(declared: Arg[]): Arg[] {
  const payload = declared.find((a) => a.index === 1);
  return [{ index: 0, type: 'packet', returnCopy: false }, { index: 1, type: payload?.type ?? 'uint32', returnCopy: false }];
}

/** A packet runs in no task's name (often in softirq): what reads the task cannot apply. */
function refuseTaskSelectors(h: Hook): void {
  if (h.selectors.some((s) => s.matchBinaries.length > 0)) throw new CompileError('matchBinaries on a packet hook: a packet has no binary');
  if (h.selectors.some((s) => (s.matchTask?.length ?? 0) > 0)) throw new CompileError('matchNamespaces or matchCapabilities on a packet hook: a packet has no task');
}
