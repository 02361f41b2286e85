/**
 * The kernel's id of an executable (bpf/binary.bpf.h: a mix of the inode
 * number and its superblock's device), computed from a path in user space,
 * so matchBinaries can compare ids in the kernel instead of paths.
 */
import * as fs from 'node:fs';

const M64 = (1n << 64n) - 1n;

/** splitmix64's finaliser, as tally_mix() in bpf/binary.bpf.h. */
function mix(x: bigint): bigint {
  x &= M64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x;
}

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
