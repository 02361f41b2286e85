/**
 * A counter store in memory that behaves as the kernel's maps do, for tests
 * of the counting core without root or a kernel. add() and mappingOf() are
 * what a BPF program does (tally_add, tally_mapping_of in bpf/); the rest is
 * the CounterStore face user space sees.
 *
 * Where the kernel may be slow to see a change, the model is as slow as it
 * may be: CPUs see the cgroup mappings as they were at the last remapped(),
 * so code that forgets to publish a change, or deletes an entry a CPU may
 * still write, counts in the wrong place here too.
 */
import { CounterEntry, counterKeyId, CounterStore, OverflowEntriesFull } from './counter-store';
import { CounterKey, KernelStat, KEY_OVERFLOW } from './layout';

export interface MemoryCounterStoreOptions {
  /** Entries of the counter map (tally_counters' max_entries). */
  capacity: number;
  /** Entries of the cgroup mapping table; the counter map's capacity unless given. */
  mappingCapacity?: number;
  /** Overflow entries, over all metrics and buckets. */
  overflowCapacity?: number;
  /** Keys that may be promoted at once. */
  promotedCapacity?: number;
}

export interface CgroupMapping {
  labelSet: number;
  namespaceId: bigint;
}

export class MemoryCounterStore implements CounterStore {
  private readonly hash = new Map<string, CounterEntry>();
  private readonly overflow = new Map<string, CounterEntry>();
  /** Promoted keys, and what each counted since it was promoted. */
  private readonly promoted = new Map<string, CounterEntry>();
  private readonly mappings = new Map<bigint, CgroupMapping>();
  /** The mappings as the CPUs see them. */
  private seen = new Map<bigint, CgroupMapping>();
  private readonly kernelStats: bigint[] = new Array(KernelStat.count).fill(0n);

  constructor(private readonly opts: MemoryCounterStoreOptions) {}

  /**
   * What a BPF program does with an event (tally_add): its promoted counter,
   * else its hash entry, else (the map full) its metric's overflow entry.
   * Says where the value went.
   */
  add(key: CounterKey, value: number): 'counted' | 'overflow' | 'lost' {
    const id = counterKeyId(key);
    const target = this.promoted.get(id) ?? this.hash.get(id);
    if (target) {
      target.value += value;
      return 'counted';
    }
    if (this.hash.size < this.opts.capacity) {
      this.hash.set(id, { key: { ...key }, value });
      return 'counted';
    }
    const o = this.overflow.get(overflowId(key.metric, key.bucket ?? 0));
    if (!o) {
      this.kernelStats[KernelStat.lost]++;
      return 'lost';
    }
    o.value += value;
    this.kernelStats[KernelStat.mapFull]++;
    return 'overflow';
  }

  /** The mapping a BPF program finds for a cgroup (tally_mapping_of). */
  mappingOf(cgroupId: bigint): CgroupMapping | undefined {
    return this.seen.get(cgroupId);
  }

  /** Entries in the counter map now. */
  get size(): number {
    return this.hash.size;
  }

  beginPass(): void {}

  dump(): CounterEntry[] {
    return [...this.hash.values()].map((e) => ({ key: e.key, value: e.value + (this.promoted.get(counterKeyId(e.key))?.value ?? 0) }));
  }

  dumpOverflow(): CounterEntry[] {
    return [...this.overflow.values()].map((e) => ({ key: e.key, value: e.value }));
  }

  stats(): bigint[] {
    return [...this.kernelStats];
  }

  take(key: CounterKey): number | undefined {
    const id = counterKeyId(key);
    const promoted = this.promoted.get(id);
    const entry = this.hash.get(id);
    this.promoted.delete(id);
    this.hash.delete(id);
    if (!entry && !promoted) return undefined;
    return (entry?.value ?? 0) + (promoted?.value ?? 0);
  }

  delete(key: CounterKey): void {
    this.hash.delete(counterKeyId(key));
  }

  mapCgroup(cgroupId: bigint, labelSet: number, namespaceId: bigint): boolean {
    if (!this.mappings.has(cgroupId) && this.mappings.size >= (this.opts.mappingCapacity ?? this.opts.capacity)) return false;
    this.mappings.set(cgroupId, { labelSet, namespaceId });
    return true;
  }

  unmapCgroup(cgroupId: bigint): void {
    this.mappings.delete(cgroupId);
  }

  remapped(): void {
    this.seen = new Map(this.mappings);
  }

  promote(keys: CounterKey[]): void {
    for (const key of keys) {
      const id = counterKeyId(key);
      if (this.promoted.size >= (this.opts.promotedCapacity ?? 4096)) return;
      if (this.hash.has(id) && !this.promoted.has(id)) this.promoted.set(id, { key, value: 0 });
    }
  }

  async retireAllPromoted(settle: () => Promise<void>, _late: (key: CounterKey, n: number) => void): Promise<CounterEntry[]> {
    const out = [...this.promoted.values()];
    this.promoted.clear();
    await settle();
    return out;
  }

  get promotedCount(): number {
    return this.promoted.size;
  }

  /** Nothing comes late here: an event is counted whole, before or after a take. */
  lateCounts(): void {}

  reserveOverflow(metric: number, buckets: readonly number[]): void {
    const missing = buckets.filter((b) => !this.overflow.has(overflowId(metric, b)));
    const capacity = this.opts.overflowCapacity ?? 4096;
    if (this.overflow.size + missing.length > capacity) throw new OverflowEntriesFull(capacity);
    for (const bucket of missing) this.overflow.set(overflowId(metric, bucket), { key: { cgroupId: 0n, binaryId: 0n, metric, flags: KEY_OVERFLOW, bucket }, value: 0 });
  }

  dropMetrics(ids: ReadonlySet<number>): void {
    for (const map of [this.hash, this.overflow, this.promoted]) {
      for (const [id, e] of map) if (ids.has(e.key.metric)) map.delete(id);
    }
  }
}

function overflowId(metric: number, bucket: number): string {
  return `${metric}:${bucket}`;
}
