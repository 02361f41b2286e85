/**
 * Checks that turn a kernel's or a process's missing prerequisites into one
 * sentence that says what is missing and how to provide it.
 */
import * as fs from 'node:fs';

const CAP_DAC_READ_SEARCH = 2n;
const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export class PreflightError extends Error {}

export function effectiveCapabilities(status = fs.readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

const has = (caps: bigint, cap: bigint): boolean => ((caps >> cap) & 1n) === 1n;

/** Throws unless the process may load tracing programs and resolve cgroups. */
export function checkPrivileges(caps = effectiveCapabilities()): void {
  const bpfOk = has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON));
  const missing: string[] = [];
  if (!bpfOk) {
    if (!has(caps, CAP_BPF)) missing.push('CAP_BPF');
    if (!has(caps, CAP_PERFMON)) missing.push('CAP_PERFMON');
  }
  if (!has(caps, CAP_DAC_READ_SEARCH) && !has(caps, CAP_SYS_ADMIN)) missing.push('CAP_DAC_READ_SEARCH');
  if (missing.length > 0) {
    throw new PreflightError(
      `insufficient privileges: tally needs root, or CAP_BPF + CAP_PERFMON (to load and attach tracing programs) ` +
        `and CAP_DAC_READ_SEARCH (to resolve cgroup ids); missing: ${missing.join(', ')}`,
    );
  }
}

export const DEFAULT_KERNEL_BTF = '/sys/kernel/btf/vmlinux';

/** Throws unless the kernel's BTF, which CO-RE relocations need, is readable. */
export function checkKernelBtf(path = DEFAULT_KERNEL_BTF): void {
  try {
    fs.accessSync(path, fs.constants.R_OK);
  } catch {
    if (path === DEFAULT_KERNEL_BTF) {
      throw new PreflightError(
        `this kernel has no BTF at ${path}: tally needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, ` +
          `or --kernel-btf FILE naming a BTF file for this exact kernel (for example from BTFHub)`,
      );
    }
    throw new PreflightError(`--kernel-btf ${path}: no readable BTF file there; give the path of this kernel's BTF`);
  }
}
