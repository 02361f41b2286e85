/**
 * The counter store over the kernel's shared maps (bpf/counters.bpf.h,
 * bpf/label_sets.bpf.h): the only place the counting core's reads and writes
 * become syscalls.
 */
import { BPF_ANY, isNativeError, native } from '../native/addon';
import { readCounterMap, readStatsArray, seedOverflowKey, sumPerCpuNumber } from './counter-map';
import { CounterEntry, counterKeyId, CounterStore, OverflowEntriesFull } from './counter-store';
import { forgetCpuCaches } from './cpu-cache';
import { CounterKey, encodeCgroupMapping, encodeCounterKey } from './layout';
import { PromotedCounters, Totals } from './promoted-counters';
import { takeEntry } from './take-entry';

/** fds of the maps the store reads and writes, by name. */
export interface CounterStoreMaps {
  tally_counters: number;
  tally_overflow: number;
  tally_stats: number;
  tally_cgroup_label_sets: number;
  tally_label_set_cache: number;
  tally_fast_index: number;
  tally_fast_counters: number;
}

export class NativeCounterStore implements CounterStore {
  private readonly promoted: PromotedCounters;
  /** This pass's read of the promoted counters, made when first needed. */
  private totals?: Totals;

  constructor(private readonly fds: CounterStoreMaps) {
    this.promoted = new PromotedCounters(fds.tally_fast_index, fds.tally_fast_counters);
  }

  beginPass(): void {
    this.totals = this.promoted.snapshot();
  }

  private passTotals(): Totals {
    return (this.totals ??= this.promoted.snapshot());
  }

  /** The hash's entries, each with what its key counted while promoted added. */
  dump(): CounterEntry[] {
    const entries = readCounterMap(this.fds.tally_counters).entries;
    const promoted = this.promoted.entries(this.passTotals());
    if (promoted.length === 0) return entries;
    // At most a few thousand keys are promoted among 100k entries: an id is
    // built only for an entry whose owner and binary some promoted key has.
    const byId = new Map(promoted.map((p) => [counterKeyId(p.key), p]));
    const owners = new Set(promoted.map((p) => p.key.cgroupId));
    const binaries = new Set(promoted.map((p) => p.key.binaryId));
    for (const e of entries) {
      if (!owners.has(e.key.cgroupId) || !binaries.has(e.key.binaryId)) continue;
      const id = counterKeyId(e.key);
      const p = byId.get(id);
      if (!p) continue;
      e.value += p.value;
      byId.delete(id);
    }
    for (const p of byId.values()) entries.push(p);
    return entries;
  }

  dumpOverflow(): CounterEntry[] {
    return readCounterMap(this.fds.tally_overflow).entries;
  }

  stats(): bigint[] {
    return readStatsArray(this.fds.tally_stats);
  }

  take(key: CounterKey): number | undefined {
    // Retired first: the kernel then counts in the hash, and the hash entry read after holds every such event.
    const promoted = this.promoted.has(key) ? this.promoted.retire(key, this.passTotals()) : undefined;
    const value = takeEntry(this.fds.tally_counters, encodeCounterKey(key));
    if (!value && promoted === undefined) return undefined;
    return (value ? sumPerCpuNumber(value, 0, value.length) : 0) + (promoted ?? 0);
  }

  delete(key: CounterKey): void {
    native().mapDelete(this.fds.tally_counters, encodeCounterKey(key));
  }

  mapCgroup(cgroupId: bigint, labelSet: number, namespaceId: bigint): boolean {
    try {
      native().mapUpdate(this.fds.tally_cgroup_label_sets, u64(cgroupId), encodeCgroupMapping(labelSet, namespaceId), BPF_ANY);
      return true;
    } catch (err) {
      if (isNativeError(err) && err.code === 'E2BIG') return false;
      throw err;
    }
  }

  unmapCgroup(cgroupId: bigint): void {
    native().mapDelete(this.fds.tally_cgroup_label_sets, u64(cgroupId));
  }

  remapped(): void {
    forgetCpuCaches(this.fds.tally_label_set_cache);
  }

  promote(keys: CounterKey[]): void {
    this.promoted.promote(keys, this.passTotals());
  }

  async retireAllPromoted(settle: () => Promise<void>, late: (key: CounterKey, n: number) => void): Promise<CounterEntry[]> {
    const out = await this.promoted.retireAll(settle, late);
    this.totals = undefined;
    return out;
  }

  get promotedCount(): number {
    return this.promoted.size;
  }

  lateCounts(late: (key: CounterKey, n: number) => void): void {
    this.promoted.sweep(late, this.passTotals());
  }

  reserveOverflow(metric: number, buckets: readonly number[]): void {
    const fd = this.fds.tally_overflow;
    const created: Buffer[] = [];
    try {
      for (const bucket of buckets) created.push(seedOverflowKey(fd, metric, bucket));
    } catch (e) {
      for (const key of created) native().mapDelete(fd, key);
      if (isNativeError(e) && e.code === 'E2BIG') throw new OverflowEntriesFull(native().mapInfo(fd).maxEntries);
      throw e;
    }
  }

  dropMetrics(ids: ReadonlySet<number>): void {
    for (const fd of [this.fds.tally_counters, this.fds.tally_overflow]) {
      for (const e of readCounterMap(fd).entries) {
        if (ids.has(e.key.metric)) native().mapDelete(fd, encodeCounterKey(e.key));
      }
    }
    // A read of its own, not the pass's: a metric may be undefined while a read waits for announcements.
    const totals = this.promoted.snapshot();
    for (const key of this.promoted.keys()) if (ids.has(key.metric)) this.promoted.retire(key, totals, true);
    this.promoted.dropMetrics(new Set(ids));
  }
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
