/**
 * tally_mix() of bpf/counters.bpf.h (splitmix64's finaliser), for the ids and
 * hashes user space must compute exactly as the kernel does: executable ids
 * (src/engine/binary-id.ts) and promoted-counter positions
 * (src/bpf/promoted-counters.ts).
 */
export const M64 = (1n << 64n) - 1n;

export function tallyMix(x: bigint): bigint {
  x &= M64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x;
}
