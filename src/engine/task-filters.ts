/**
 * Compiles Tetragon's matchNamespaces (Linux) and matchCapabilities into the
 * task filters of a selector (struct tally_pol_task_filter). "host_ns" is
 * resolved here, once, to the inode number of PID 1's namespace: the agent
 * runs with the host's PID namespace (hostPID in the chart), so PID 1 is the
 * host's init.
 */
import * as fs from 'node:fs';
import { LinuxNamespace, TaskFilter } from '../policy/model';
import { capabilityMask } from '../policy/task-filters';
import { Op, SelectorConfig, TaskField } from './hook-config';
import { CompileError } from './compile-error';

const NAMESPACES: Readonly<Record<LinuxNamespace, { field: number; proc: string }>> = {
  Uts: { field: TaskField.nsUts, proc: 'uts' },
  Ipc: { field: TaskField.nsIpc, proc: 'ipc' },
  Mnt: { field: TaskField.nsMnt, proc: 'mnt' },
  Pid: { field: TaskField.nsPid, proc: 'pid' },
  PidForChildren: { field: TaskField.nsPidForChildren, proc: 'pid_for_children' },
  Net: { field: TaskField.nsNet, proc: 'net' },
  Time: { field: TaskField.nsTime, proc: 'time' },
  TimeForChildren: { field: TaskField.nsTimeForChildren, proc: 'time_for_children' },
  Cgroup: { field: TaskField.nsCgroup, proc: 'cgroup' },
  User: { field: TaskField.nsUser, proc: 'user' },
};

const CAP_SETS = { Effective: TaskField.capEffective, Permitted: TaskField.capPermitted, Inheritable: TaskField.capInheritable } as const;

/**
 * The kernel's initial namespaces of these kinds have fixed inode numbers
 * (PROC_*_INIT_INO, include/linux/proc_ns.h); mount and network namespaces
 * have none.
 */
const INITIAL_INODES: Partial<Record<LinuxNamespace, number>> = {
  Ipc: 0xefffffff, Uts: 0xeffffffe, User: 0xeffffffd, Pid: 0xeffffffc, PidForChildren: 0xeffffffc,
  Cgroup: 0xeffffffb, Time: 0xeffffffa, TimeForChildren: 0xeffffffa,
};

/**
 * The inode number of PID 1's namespace of this kind (`ls -Li /proc/1/ns/X`).
 * Reading another process's namespaces takes ptrace access to it; where that
 * is refused, the initial namespace's fixed number stands in for the kinds
 * that have one.
 */
export function hostNamespace(ns: LinuxNamespace, procRoot = '/proc'): bigint {
  const file = `${procRoot}/1/ns/${NAMESPACES[ns].proc}`;
  try {
    return BigInt(fs.statSync(file).ino);
  } catch (e) {
    const initial = INITIAL_INODES[ns];
    if (initial !== undefined) return BigInt(initial);
    throw new CompileError(`matchNamespaces: host_ns of ${ns}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; `
      + 'the agent needs the host\'s PID namespace (hostPID) and ptrace access to PID 1 (CAP_SYS_PTRACE) to know it');
  }
}

export function compileTaskFilters(filters: TaskFilter[] | undefined): SelectorConfig['tasks'] {
  if (!filters?.length) return undefined;
  return filters.map((f) => {
    if (f.kind === 'capability') {
      return { field: CAP_SETS[f.set], op: f.operator === 'In' ? Op.mask : Op.notMask, values: [capabilityMask(f.values)] };
    }
    const values = f.values.map((v) => (v === 'host_ns' ? hostNamespace(f.namespace) : BigInt(v)));
    return { field: NAMESPACES[f.namespace].field, op: f.operator === 'In' ? Op.eq : Op.neq, values };
  });
}
