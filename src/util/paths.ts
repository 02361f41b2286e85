import * as path from 'node:path';

/** The repository root: dist/src/util/ is three levels below it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

/** Compiled BPF objects live in build/bpf, produced by the Makefile. */
export function bpfObjectPath(name: string): string {
  return path.join(PROJECT_ROOT, 'build', 'bpf', `${name}.bpf.o`);
}

/** The built-in policies, shipped with tally. */
export const BUILTIN_POLICY_DIR = path.join(PROJECT_ROOT, 'policies');

/** Syscall numbers of this architecture, generated from the kernel headers at build time. */
export const SYSCALLS_PATH = path.join(PROJECT_ROOT, 'build', 'syscalls.json');

export const ADDON_PATH = path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'tally_native.node');
