/**
 * The kernel's counters as the counting core (src/cardinality/) sees them:
 * one typed face over the shared BPF maps, so that fold-in, staleness,
 * promotion and the series limits run the same over the kernel
 * (NativeCounterStore) and over a model of it in memory (MemoryCounterStore),
 * where tests prove conservation and monotonicity without root or a kernel
 * (design.md, invariant 7).
 *
 * A count is a key's total over CPUs, whether the kernel added it to the hash
 * or, for a promoted key, to the array beside it: the store adds the two up,
 * so no caller needs to know where an event was counted.
 */
import { CounterKey } from './layout';

export interface CounterEntry {
  key: CounterKey;
  /** Summed over CPUs, and over the hash and the promoted array. */
  value: number;
}

/** Identifies a counter key, for maps keyed by it. */
export function counterKeyId(k: CounterKey): string {
  return `${k.cgroupId}:${k.binaryId}:${k.metric}:${k.flags}:${k.label0 ?? 0n}:${k.label1 ?? 0n}:${k.bucket ?? 0}`;
}

/** reserveOverflow() found no room left for a metric's overflow entries. */
export class OverflowEntriesFull extends Error {
  constructor(readonly capacity: number) {
    super(`the overflow map is full (${capacity} entries)`);
  }
}

export interface CounterStore {
  /**
   * Starts a pass (one sweep, or one read): the promoted counters are read
   * at most once per pass, when first needed, and every call until the next
   * pass sees that one read.
   */
  beginPass(): void;
  /** Every key counted in the counter map, with its count. */
  dump(): CounterEntry[];
  /** The overflow entries: what updates that found the counter map full added, one entry per metric and bucket. */
  dumpOverflow(): CounterEntry[];
  /** The kernel's self-statistics, by KernelStat index (src/bpf/layout.ts). */
  stats(): bigint[];
  /** Reads and deletes a key's count at once; undefined when the store held nothing under it. */
  take(key: CounterKey): number | undefined;
  /** Deletes a key unread: for a count that belongs to no one. */
  delete(key: CounterKey): void;
  /** Has the kernel count cgroupId's events under labelSet from now on; false when the mapping table is full. */
  mapCgroup(cgroupId: bigint, labelSet: number, namespaceId: bigint): boolean;
  /** The kernel counts cgroupId's events under its raw id again. */
  unmapCgroup(cgroupId: bigint): void;
  /** Mappings changed: from now on every CPU looks them up afresh, rather than using what it remembers. */
  remapped(): void;
  /** Keys counted outside the hash (src/bpf/promoted-counters.ts), to spare the kernel its hash lookups. */
  promote(keys: CounterKey[]): void;
  /**
   * Retires every promoted key at once, so the kernel counts them all in the
   * hash from now on, and returns what each counted while promoted, read
   * after `settle` (when no program can still be adding to a retired
   * position). For a handover (docs/restart.md): nothing comes late after
   * it; what came late to keys retired earlier is handed to `late`.
   */
  retireAllPromoted(settle: () => Promise<void>, late: (key: CounterKey, n: number) => void): Promise<CounterEntry[]>;
  /** How many keys are promoted now. */
  readonly promotedCount: number;
  /**
   * Counts that came to promoted keys after take() retired them, reported
   * once: they came after the key's series was shown for the last time.
   */
  lateCounts(late: (key: CounterKey, n: number) => void): void;
  /**
   * Creates a metric's overflow entries, where an update that finds the
   * counter map full lands. Idempotent; throws OverflowEntriesFull, having
   * created none, when there is no room for all of them.
   */
  reserveOverflow(metric: number, buckets: readonly number[]): void;
  /** Deletes every entry of these metrics, overflow entries included; what comes late for them is no one's. */
  dropMetrics(ids: ReadonlySet<number>): void;
}
