/**
 * The user-space side of tally_label_set_cache (bpf/label_sets.bpf.h): what
 * each CPU remembers between events, the last cgroup mapping and the last
 * binary it saw announced, valid only under the generation it was filled in.
 */
import { BPF_ANY, native } from '../native/addon';
import { encodeLabelSetCache, LABEL_SET_CACHE_GENERATION } from './layout';

/**
 * Every CPU's entry starts over: a new generation, nothing remembered. After
 * a mapping is removed, or an announcement forgotten. The generation is read
 * back from the map, so any caller may bump it.
 */
export function forgetCpuCaches(fd: number): void {
  const key = Buffer.alloc(4);
  const cur = native().mapLookup(fd, key);
  const value = encodeLabelSetCache((cur ? cur.readBigUInt64LE(LABEL_SET_CACHE_GENERATION) : 0n) + 1n);
  const cpus = native().numPossibleCpus();
  for (let cpu = 0; cpu < cpus; cpu++) {
    key.writeUInt32LE(cpu);
    native().mapUpdate(fd, key, value, BPF_ANY);
  }
}
