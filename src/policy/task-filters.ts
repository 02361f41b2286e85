/**
 * Tetragon's filters on the calling task, evaluated in the kernel from the
 * task's nsproxy and credentials:
 *
 *   matchNamespaces:   [{namespace: Pid, operator: NotIn, values: [host_ns]}]
 *   matchCapabilities: [{type: Effective, operator: In, values: [CAP_SYS_ADMIN]}]
 *
 * A namespace value is an inode number (as `ls -Li /proc/PID/ns/*` shows) or
 * "host_ns", the namespace of PID 1 as the agent sees it (the chart runs it
 * with hostPID). Capabilities are CAP_ names; In matches a task holding at
 * least one of them, NotIn a task holding none.
 */
import { CAPABILITY_SETS, LINUX_NAMESPACES, TaskFilter } from './model';
import { Fields, Node } from './reader';
import { HookCx } from './hook-context';
import { filters } from './filter-list';
import { oneOf } from './problems';

/** Capability numbers (linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5, CAP_SETGID: 6,
  CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10, CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15, CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20, CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25, CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27, CAP_LEASE: 28, CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30, CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34, CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

/** Task filters per selector: the kernel's struct has room for this many. */
export const TASK_FILTERS_PER_SELECTOR = 2;
/** Namespace inode numbers per filter. */
export const NAMESPACE_VALUES = 4;

const OPS = ['In', 'NotIn'] as const;

/** Reads a Tetragon selector's matchNamespaces and matchCapabilities. */
export function readTaskFilters(f: Fields, cx: HookCx): TaskFilter[] {
  const out: TaskFilter[] = [];
  for (const n of filters(f, 'matchNamespaces', TASK_FILTERS_PER_SELECTOR)) {
    const t = readNamespace(n);
    if (t) out.push(t);
  }
  for (const n of filters(f, 'matchCapabilities', TASK_FILTERS_PER_SELECTOR)) {
    const t = readCapabilities(n, cx);
    if (t) out.push(t);
  }
  if (out.length > TASK_FILTERS_PER_SELECTOR) {
    f.node.error(`at most ${TASK_FILTERS_PER_SELECTOR} matchNamespaces and matchCapabilities entries in one selector (tally's limit)`, undefined, `${out.length}`);
    return [];
  }
  return out;
}

function readNamespace(node: Node): TaskFilter | undefined {
  const f = node.mapping(['namespace', 'operator', 'values']);
  if (!f) return undefined;
  const namespace = f.require('namespace', oneOf(LINUX_NAMESPACES))?.choice(LINUX_NAMESPACES);
  const operator = f.require('operator', oneOf(OPS))?.choice(OPS);
  const valueNodes = f.require('values', 'a list of namespace inode numbers or host_ns')?.list(NAMESPACE_VALUES, 'values', 1);
  if (!namespace || !operator || !valueNodes) return undefined;
  const values: Array<number | 'host_ns'> = [];
  for (const v of valueNodes) {
    const text = typeof v.value === 'number' ? String(v.value) : v.string('an inode number or host_ns');
    if (text === undefined) return undefined;
    if (text === 'host_ns') values.push('host_ns');
    else if (/^[0-9]{1,10}$/.test(text) && Number(text) <= 0xffffffff) values.push(Number(text));
    else return v.error('a namespace inode number (as ls -Li /proc/PID/ns/ shows) or host_ns');
  }
  return { kind: 'namespace', namespace, operator, values };
}

function readCapabilities(node: Node, cx: HookCx): TaskFilter | undefined {
  const f = node.mapping(['type', 'operator', 'values', 'isNamespaceCapability']);
  if (!f) return undefined;
  const set = f.require('type', oneOf(CAPABILITY_SETS))?.choice(CAPABILITY_SETS);
  const operator = f.require('operator', oneOf(OPS))?.choice(OPS);
  const valueNodes = f.require('values', 'a list of capabilities, e.g. CAP_SYS_ADMIN')?.list(Object.keys(CAPABILITIES).length, 'values', 1);
  const inNs = f.get('isNamespaceCapability');
  if (inNs?.boolean()) {
    cx.unsupported(inNs, 'isNamespaceCapability: false', 'tally checks capabilities against the task\'s own credentials, not relative to its user namespace', 'drop');
  }
  if (!set || !operator || !valueNodes) return undefined;
  const values: string[] = [];
  for (const v of valueNodes) {
    const name = v.string('a capability name');
    if (name === undefined) return undefined;
    const canonical = name.toUpperCase().startsWith('CAP_') ? name.toUpperCase() : `CAP_${name.toUpperCase()}`;
    if (!(canonical in CAPABILITIES)) return v.error('a capability name such as CAP_SYS_ADMIN (linux/capability.h)');
    values.push(canonical);
  }
  return { kind: 'capability', set, operator, values };
}

/** The capability bits of a filter's values. */
export function capabilityMask(values: string[]): bigint {
  return values.reduce((m, v) => m | (1n << BigInt(CAPABILITIES[v])), 0n);
}
