/**
 * What the steps of one sweep share: its number and time, the label sets
 * found live so far, the quiet rule, and the counts it moves out of the
 * kernel (which promotion must not put back in the same sweep).
 */
import { CounterEntry, counterKeyId, CounterStore } from '../bpf/counter-store';
import { CounterKey } from '../bpf/layout';
import { HeldCounts } from './held-counts';
import { EntryLabels } from './key-labels';
import { QuietEntries } from './quiet-entries';

/** What sweeps have done so far, for the health metrics. */
export class SweepCounts {
  /** Kernel entries deleted: moved, retired, or belonging to no one. */
  deletedEntries = 0;
  /** Raw cgroup entries folded into their label set's. */
  foldedEntries = 0;
  /** Series retired as stale. */
  staleLabelSets = 0;
  /** cgroups left raw in the last sweep because tally_cgroup_label_sets was full. */
  unmappedMapFull = 0;
  /** Entries counted pending a namespace that, once known, no selector admitted. */
  unmatchedEntries = 0;
  /** Live cgroups whose labels changed (a pod label of --metrics-pod-labels was edited). */
  relabelledCgroups = 0;
}

export class SweepPass {
  /** Keys taken out of the kernel in this sweep: not to be promoted in it. */
  private readonly taken = new Set<string>();

  constructor(
    readonly sweep: number,
    readonly now: number,
    /** labelKeys of cgroup-derived label sets with something live behind them. */
    readonly live: Set<string>,
    private readonly store: CounterStore,
    private readonly quietEntries: QuietEntries,
    private readonly held: HeldCounts,
    private readonly counts: SweepCounts,
  ) {}

  quiet(e: CounterEntry): boolean {
    return this.quietEntries.isQuiet(e);
  }

  /** Reads and deletes a key's count: see CounterStore.take(). */
  take(key: CounterKey): number | undefined {
    const value = this.store.take(key);
    this.taken.add(counterKeyId(key));
    return value;
  }

  wasTaken(key: CounterKey): boolean {
    return this.taken.has(counterKeyId(key));
  }

  /**
   * Reads and deletes one entry, keeping its count under its labels for
   * metric (a pending entry's is not the key's), unless it does not count.
   */
  move(key: CounterKey, labels: EntryLabels, metric = key.metric, counts = true): void {
    const value = this.take(key);
    if (value === undefined) return;
    if (!counts) {
      this.counts.unmatchedEntries++;
      return;
    }
    this.held.add(metric, labels, key.bucket ?? 0, value);
  }
}
