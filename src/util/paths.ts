import * as path from 'node:path';

/** The repository root: dist/src/util/ is three levels below it. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..', '..');

/** Compiled BPF objects live in build/bpf, produced by the Makefile. */
export function bpfObjectPath(name: string): string {
  return path.join(PROJECT_ROOT, 'build', 'bpf', `${name}.bpf.o`);
}

export const ADDON_PATH = path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'tally_native.node');
