/**
 * The kernel's id of an executable (bpf/binary.bpf.h: a mix of the inode
 * number and its superblock's device), computed from a path in user space,
 * so matchBinaries can compare ids in the kernel instead of paths.
 */
import * as fs from 'node:fs';
import { tallyMix as mix } from '../bpf/tally-mix';

/** glibc's st_dev encoding to the kernel's internal dev_t (MKDEV: major << 20 | minor). */
export function kernelDev(stDev: bigint): bigint {
  const major = ((stDev >> 8n) & 0xfffn) | ((stDev >> 32n) & ~0xfffn & 0xffffffffn);
  const minor = (stDev & 0xffn) | ((stDev >> 12n) & ~0xffn & 0xffffffffn);
  return (major << 20n) | minor;
}

export function binaryIdOf(ino: bigint, stDev: bigint): bigint {
  return mix(ino ^ mix(kernelDev(stDev))) | (1n << 63n);
}

/** The id the kernel gives the executable at `path`; throws if it cannot be read. */
export function binaryIdOfPath(path: string): bigint {
  const st = fs.statSync(path, { bigint: true });
  return binaryIdOf(st.ino, st.dev);
}
