/**
 * The validated policy model: what src/policy hands to the compiler that turns
 * policies into BPF configuration. Everything here is checked: indexes refer
 * to declared args, operators suit their arg's type, values are parsed (ports
 * are numbers, CIDRs are bytes plus a prefix length), caps from limits.ts hold.
 *
 * Both policy formats end up here: tally's own MetricsPolicy and Tetragon's
 * TracingPolicy / TracingPolicyNamespaced. What a Tetragon policy asks for and
 * tally cannot do is never silently dropped: it is listed in `problems`.
 */

/** How bad a problem is. */
export type Severity =
  /** The policy is invalid: nothing of it loads. */
  | 'error'
  /** A valid Tetragon feature tally does not implement: the feature, or the hook using it, is left out. */
  | 'unsupported'
  /** Noted, with no effect on what is counted (e.g. a Tetragon `message`, which only decorates events). */
  | 'warning';

/**
 * One finding about a policy file, anchored where it applies. `message` is the
 * full text after the path, as `tally policy check` prints it:
 * `FILE:LINE:COLUMN: PATH: MESSAGE`.
 */
export interface Problem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  /** Field path such as `spec.kprobes[0].args[1].type`; `(document)` for the document itself. */
  path: string;
  /** What would have been valid, e.g. `one of int, uint8, …` or `Post`. */
  expected: string;
  /** What the file holds, e.g. `"u128"`, `the number 70000`, `a list`. */
  found: string;
  severity: Severity;
  /** `expected …, found …`, prefixed with `unsupported: ` or `warning: ` for those severities, plus how to fix it. */
  message: string;
}

/**
 * ok: everything in the policy loads as written. partial: some Tetragon
 * features or hooks are left out (see problems); the rest loads. error:
 * nothing loads.
 */
export const POLICY_STATES = ['ok', 'partial', 'error'] as const;
export type PolicyState = (typeof POLICY_STATES)[number];

/** Where in the file a hook was declared: for errors found later (attach, verifier). */
export interface Origin {
  /** e.g. `spec.kprobes[0]`, or `spec.uprobes[0].symbols[1]` for one symbol of an uprobe. */
  path: string;
  line: number;
  column: number;
}

// ---------------------------------------------------------------------------
// Args

/** Integer arg types: the value itself is read (and sign- or zero-extended to 64 bits). */
export const INT_ARG_TYPES = [
  'int', 'int8', 'int16', 'int32', 'int64', 'long',
  'uint8', 'uint16', 'uint32', 'uint64', 'size_t', 'fd',
] as const;
/**
 * String-like arg types: a string is read (a path for file and path, and for
 * linux_binprm its file's; the buffer for char_buf; a net_device's name).
 */
export const STRING_ARG_TYPES = ['string', 'char_buf', 'file', 'path', 'linux_binprm', 'net_device'] as const;
/** Network arg types: fields (addresses, ports, protocol, family) are read from the object (a socket's from its sock). */
export const NET_ARG_TYPES = ['sock', 'skb', 'sockaddr', 'socket'] as const;

export type IntArgType = (typeof INT_ARG_TYPES)[number];
export type StringArgType = (typeof STRING_ARG_TYPES)[number];
export type NetArgType = (typeof NET_ARG_TYPES)[number];
/**
 * tally's own: a struct task_struct * (raw tracepoints such as
 * sched/sched_process_exit). Not read as a value; labels take fields of it.
 */
export const TASK_ARG_TYPES = ['task'] as const;
export type TaskArgType = (typeof TASK_ARG_TYPES)[number];
/**
 * tally's own: the packet of a packet hook (spec.packets), its addresses,
 * ports, protocol and family read from its headers as its socket sees them
 * (saddr local, daddr remote). Only a packet hook's arg 0.
 */
export const PACKET_ARG_TYPES = ['packet'] as const;
/** `nop` is Tetragon's "do not read this argument": accepted, never decoded, usable by no operator. */
export type ArgType = IntArgType | StringArgType | NetArgType | TaskArgType | 'packet' | 'nop';

export interface Arg {
  /** The function argument's position (kprobe, uprobe, raw tracepoint) or the tracepoint format field's. */
  index: number;
  type: ArgType;
  /**
   * char_buf only: the 0-based index of the function argument holding the
   * buffer's length. The YAML field sizeArgIndex is 1-based as in Tetragon
   * (0 there means none), so `sizeArgIndex: 3` gives sizeArg 2.
   */
  sizeArg?: number;
  /** char_buf only: read the buffer when the function returns (it is filled by the call, as for read(2)). */
  returnCopy: boolean;
  /**
   * Raw tracepoints only: what the arg means on a kernel whose tracepoint
   * does not pass it (prototypes grow between kernels): a constant, or a
   * value derived from a task arg. Without it such a kernel refuses the hook.
   */
  ifMissing?: IfMissing;
}

/**
 * `ifMissing: 0`, or `ifMissing: {arg: N, field: groupDead}`: whether the
 * exiting task (arg N) is the last of its thread group, as sched_process_exit's
 * group_dead says on newer kernels (6.18, not 6.12); counted once per group.
 */
export type IfMissing = { kind: 'constant'; value: number } | { kind: 'groupDead'; arg: number };

/** The type of a hook's return value, declared by `returnArg`. */
export interface ReturnArg {
  type: ArgType;
}

// ---------------------------------------------------------------------------
// Selectors

/** An IPv4 or IPv6 network: `bytes` are the address with host bits zero. */
export interface Cidr {
  family: 4 | 6;
  /** 4 or 16 bytes, network byte order. */
  bytes: number[];
  /** 0..32 or 0..128; a plain address is a /32 or /128. */
  prefixLen: number;
}

/** An inclusive port range; a single port has min === max. */
export interface PortRange {
  min: number;
  max: number;
}

export type IntOperator = 'Equal' | 'NotEqual' | 'GT' | 'LT' | 'Mask' | 'NotMask';
export type StringOperator = 'Equal' | 'NotEqual' | 'Prefix' | 'NotPrefix' | 'Postfix' | 'NotPostfix';
export type AddrOperator = 'SAddr' | 'DAddr' | 'NotSAddr' | 'NotDAddr';
export type PortOperator = 'SPort' | 'DPort' | 'NotSPort' | 'NotDPort';

/**
 * One matchArgs entry, on the arg declared with `index`. Values are ORed
 * (any of them matches; for Not* operators: none of them matches).
 */
export type ArgFilter =
  /** Integers as bigint so uint64 and int64 keep every bit. Mask: (arg & value) != 0; NotMask (tally's): no value's bits set. */
  | { kind: 'int'; index: number; operator: IntOperator; values: bigint[] }
  | { kind: 'string'; index: number; operator: StringOperator; values: string[] }
  | { kind: 'addr'; index: number; operator: AddrOperator; values: Cidr[] }
  | { kind: 'port'; index: number; operator: PortOperator; values: PortRange[] }
  /** IP protocol numbers (IPPROTO_TCP = 6, …). */
  | { kind: 'protocol'; index: number; operator: 'Protocol'; values: number[] }
  /** Address family numbers (AF_INET = 2, AF_INET6 = 10, …). */
  | { kind: 'family'; index: number; operator: 'Family'; values: number[] }
  /** The type of the file (file, path, fd args): S_IFREG, S_IFDIR, … as numbers. */
  | { kind: 'filetype'; index: number; operator: 'FileType' | 'NotFileType'; values: number[] }
  | { kind: 'filesystem'; index: number; operator: 'FileSystem' | 'NotFileSystem'; values: number[] };

export type BinaryOperator = 'In' | 'NotIn' | 'Prefix' | 'NotPrefix' | 'Postfix' | 'NotPostfix';

/** The executable path of the process (for scripts: the interpreter's). */
export interface BinaryFilter {
  operator: BinaryOperator;
  values: string[];
}

/** Kubernetes namespaces of the pod the event is attributed to. */
export interface NamespaceFilter {
  operator: 'In' | 'NotIn';
  values: string[];
}

/** Linux namespaces a task can be in, by Tetragon's names. */
export const LINUX_NAMESPACES = ['Uts', 'Ipc', 'Mnt', 'Pid', 'PidForChildren', 'Net', 'Time', 'TimeForChildren', 'Cgroup', 'User'] as const;
export type LinuxNamespace = (typeof LINUX_NAMESPACES)[number];

/** Capability sets of a task's credentials. */
export const CAPABILITY_SETS = ['Effective', 'Permitted', 'Inheritable'] as const;
export type CapabilitySet = (typeof CAPABILITY_SETS)[number];

/**
 * A filter on the calling task (Tetragon's matchNamespaces and
 * matchCapabilities): which Linux namespace it is in, by inode number
 * ('host_ns': the namespace of PID 1), or which capabilities it holds
 * (In: at least one of them; NotIn: none).
 */
export type TaskFilter =
  | { kind: 'namespace'; namespace: LinuxNamespace; operator: 'In' | 'NotIn'; values: Array<number | 'host_ns'> }
  | { kind: 'capability'; set: CapabilitySet; operator: 'In' | 'NotIn'; values: string[] };

/** Everything in one selector ANDs; an empty selector matches everything. */
export interface Selector {
  matchArgs: ArgFilter[];
  matchBinaries: BinaryFilter[];
  matchNamespaces: NamespaceFilter[];
  /** Tetragon's filters on the calling task; absent when there are none. */
  matchTask?: TaskFilter[];
}

// ---------------------------------------------------------------------------
// Metrics

export type MetricType = 'counter' | 'histogram';

/**
 * What a metric adds (counter) or observes (histogram) per matching event:
 * 1, an integer arg, the return value, or the time from entry to return in
 * seconds.
 */
export type MetricValue =
  | { kind: 'count' }
  | { kind: 'arg'; index: number }
  | { kind: 'return' }
  | { kind: 'latency' };

/** Which part of a sock, skb or sockaddr arg a label takes. */
export type NetField = 'saddr' | 'daddr' | 'sport' | 'dport' | 'protocol' | 'family';
/** Which part of a task arg a label takes: how it ended, as ok, error or signal. */
export type TaskField = 'exitStatus';
/** The values a label with field exitStatus takes. */
export const EXIT_STATUSES = ['ok', 'error', 'signal'] as const;

/**
 * A label whose value comes from an arg. Its values are capped: either the
 * first `maxValues` distinct values seen, or one of `prefixes` (the matching
 * prefix is the value), or the peer classes of the peer table. Everything
 * else becomes `overflowValue`. Exactly one of maxValues, prefixes and peer
 * is set.
 */
export interface ExtraLabel {
  name: string;
  /** Index of a declared arg of the hook. */
  arg: number;
  /** For sock, skb and sockaddr args; exitStatus for task args. */
  field?: NetField | TaskField;
  maxValues?: number;
  prefixes?: string[];
  /**
   * `peer: class | namespace | service`: the value is that part of the
   * peer of the socket's remote address (field daddr) in the peer table
   * (--metrics-peer-cidrs and EndpointSlices, src/peers), resolved in the
   * kernel. Bounded by the table, so no maxValues. Peer labels of one arg
   * share one value of the key (policy/kernel-labels.ts).
   */
  peer?: 'class' | 'namespace' | 'service';
  overflowValue: string;
}

export interface Metric {
  /** A Prometheus metric name; counters end in `_total`. */
  name: string;
  help: string;
  /** e.g. bytes, seconds; the name carries it as a suffix. */
  unit?: string;
  type: MetricType;
  value: MetricValue;
  labels: ExtraLabel[];
  /**
   * Labels with one fixed value, added by tally. Empty for MetricsPolicy
   * metrics; `{policy, hook}` for the implicit metric of a Tetragon policy.
   */
  constLabels: Record<string, string>;
}

/** The implicit metric of every hook of a Tetragon policy. */
export const TETRAGON_EVENTS_METRIC = 'tally_policy_events_total';

// ---------------------------------------------------------------------------
// Hooks

interface HookBase {
  /**
   * Stable and unique within the policy: `kprobe:tcp_connect`,
   * `tracepoint:sock/inet_sock_set_state`, `uprobe:/usr/lib/libc.so.6:malloc`.
   * A name that repeats gets `#2`, `#3`, … in declaration order.
   */
  name: string;
  origin: Origin;
  args: Arg[];
  /** ORed; none means every call counts. */
  selectors: Selector[];
  metrics: Metric[];
  /**
   * MetricsPolicy only: the hook fires only in the context of the task that
   * owns its sock or skb arg, so that task's binary may label the events.
   * Absent: a hook with such an arg leaves `binary` out (a timer or softirq
   * may be running it on behalf of nobody in particular).
   */
  taskContext?: true;
  /**
   * MetricsPolicy only: the name of another hook of the policy that this one
   * stands in for. It is loaded only when that hook cannot attach (a
   * tracepoint older kernels lack), and then that hook's failure is no error.
   */
  fallbackFor?: string;
}

export interface KprobeHook extends HookBase {
  kind: 'kprobe';
  /** A kernel function, or with `syscall` a syscall name such as `sys_write` (no arch prefix). */
  call: string;
  syscall: boolean;
  /** Also hook the return (kretprobe/fexit): needed for return values and latency. */
  return: boolean;
  returnArg?: ReturnArg;
  /** Skip this hook, instead of failing, when the kernel has no such function. */
  ignoreCallNotFound: boolean;
}

export interface TracepointHook extends HookBase {
  kind: 'tracepoint';
  subsystem: string;
  event: string;
  /** A raw tracepoint: arg indexes are TP_PROTO argument positions, not format fields. */
  raw: boolean;
}

export interface UprobeHook extends HookBase {
  kind: 'uprobe';
  /** The binary or library. */
  path: string;
  /** The function; for a USDT probe, PROVIDER:NAME. */
  symbol: string;
  return: boolean;
  returnArg?: ReturnArg;
  /**
   * A USDT probe (`usdts:`) rather than a function: attached at every site of
   * the probe in the binary, its args the probe's own arguments (index 0 is
   * the first), wherever its note says they are. Never has a return.
   */
  usdt?: { provider: string; name: string };
}

/**
 * MetricsPolicy only: every packet a socket sends (egress) or receives
 * (ingress), from a cgroup_skb program on the cgroup v2 root. Its args are
 * fixed: 0 the packet (type packet), 1 the bytes of transport payload it
 * carries (an integer type). Owned by its socket's cgroup; no task, so no
 * binary, matchBinaries or task filters.
 */
export interface PacketHook extends HookBase {
  kind: 'packet';
  direction: 'egress' | 'ingress';
}

export type Hook = KprobeHook | TracepointHook | UprobeHook | PacketHook;

// ---------------------------------------------------------------------------
// Policies

export type PolicyKind = 'MetricsPolicy' | 'TracingPolicy' | 'TracingPolicyNamespaced';

/** One YAML document of a policy file. */
export interface Policy {
  file: string;
  /** 0-based position among the file's non-empty documents. */
  document: number;
  /** Undefined when the document does not say a known kind. */
  kind?: PolicyKind;
  /** Undefined when metadata.name is missing or invalid (then state is error). */
  name?: string;
  /**
   * TracingPolicyNamespaced: only events attributed to pods of this
   * Kubernetes namespace count.
   */
  namespace?: string;
  state: PolicyState;
  /** In file order. */
  problems: Problem[];
  /** The hooks that load; empty when state is error. */
  hooks: Hook[];
}

/** The outcome for one file. */
export interface PolicyFileResult {
  file: string;
  /**
   * error: the file cannot be read or parsed, holds no policy, or every
   * policy in it is in error. partial: some policy is partial or in error.
   * ok: every policy is ok.
   */
  state: PolicyState;
  /** Every problem of the file, its policies' included, in file order. */
  problems: Problem[];
  policies: Policy[];
}
