/**
 * The labels of a counter key: its label set's (a label-set id) or its
 * cgroup's once final (a raw cgroup id), then its binary, then a policy
 * metric's extra labels.
 *
 * A scrape of 100k entries meets the same keys again and again, so what it
 * builds is memoised: final cgroup resolutions, and label objects with their
 * JSON keys. Each memo is a bounded cache of its own, reported as
 * tally_cache_*. The labels of removed cgroups are kept a while longer in a
 * memory of their own, because sockets can outlive their cgroup and count.
 */
import { CounterKey, KEY_LABEL_SET } from '../bpf/layout';
import { CacheStats } from '../util/cache-stats';
import { BoundedCache } from './bounded-cache';
import { LabelSets } from './label-sets';
import { PendingCgroups } from './pending-labels';
import { labelKey } from './series-limiter';
import { CgroupResolver, KeyLabelSource } from './sources';

export interface EntryLabels {
  labels: Record<string, string>;
  /** labelKey(labels), computed once. */
  key: string;
  /** labelKey of the cgroup-derived labels only: what liveness is decided on. */
  setKey: string;
}

/** A cgroup's own labels, and its namespace, which the filter may not show. */
export interface CgroupLabels extends EntryLabels {
  namespace?: string;
}

/** Capacities of the memos: each holds what one read of a full counter map meets, and more. */
export const LABEL_MEMO_CAPACITY = 262_144;
/** Removed cgroups whose labels are remembered for late events. */
export const REMOVED_CGROUP_CAPACITY = 65_536;

/** A removed cgroup's labels, and when a read last needed them. */
interface RemovedLabels {
  labels: CgroupLabels;
  lastAskedMs: number;
}

const NO_CGROUP: CgroupLabels = Object.freeze({ labels: {}, key: labelKey({}), setKey: labelKey({}) });

export interface KeyLabelsOptions {
  labelSets: LabelSets;
  resolver: CgroupResolver;
  keys: KeyLabelSource;
  pending: PendingCgroups;
  clock: () => number;
  removedCapacity?: number;
}

export class KeyLabels {
  /** Final resolutions of live cgroups; entries leave with their cgroup. */
  private readonly resolved = new BoundedCache<bigint, CgroupLabels>('cgroup_labels', LABEL_MEMO_CAPACITY, 'all');
  /** Labels of removed cgroups, least recently needed first, for events from sockets that outlive them. */
  private readonly removed: BoundedCache<bigint, RemovedLabels>;
  private readonly withBinary = new BoundedCache<string, EntryLabels>('series_labels_binary', LABEL_MEMO_CAPACITY, 'all');
  private readonly withExtra = new BoundedCache<string, EntryLabels>('series_labels_extra', LABEL_MEMO_CAPACITY, 'all');

  constructor(private readonly opts: KeyLabelsOptions) {
    this.removed = new BoundedCache('removed_cgroup_labels', opts.removedCapacity ?? REMOVED_CGROUP_CAPACITY, 'oldest');
  }

  get caches(): CacheStats[] {
    return [this.resolved.stats, this.removed.stats, this.withBinary.stats, this.withExtra.stats];
  }

  /** Labels of a counter key; undefined for a released label set or labels not final yet. */
  labelsOf(key: CounterKey, giveUp = false): EntryLabels | undefined {
    let set: EntryLabels | undefined;
    if (key.flags === KEY_LABEL_SET) {
      set = this.opts.labelSets.get(Number(key.cgroupId));
      if (!set) return undefined;
    } else {
      set = this.cgroupLabels(key.cgroupId, giveUp);
      if (!set) return undefined;
    }
    const binary = this.opts.keys.binaryLabels(key.binaryId);
    let full = set;
    if (binary.binary !== undefined) {
      const memo = `${set.key}\0${binary.binary}`;
      const hit = this.withBinary.get(memo);
      if (hit) {
        full = hit;
      } else {
        const labels = { ...set.labels, ...binary };
        full = { labels, key: labelKey(labels), setKey: set.key };
        this.withBinary.set(memo, full);
      }
    }
    const extra = this.opts.keys.extraLabels(key);
    if (!extra) return full;
    // Memoised like the binary label: a scrape meets the same series again and again.
    const memo = `${full.key}\0${key.metric}\0${key.label0}\0${key.label1}`;
    let withExtra = this.withExtra.get(memo);
    if (!withExtra) {
      const labels = { ...full.labels, ...extra };
      withExtra = { labels, key: labelKey(labels), setKey: full.setKey };
      this.withExtra.set(memo, withExtra);
    }
    return withExtra;
  }

  /** A cgroup's labels once final; remembered until the cgroup goes, and a while after. */
  cgroupLabels(cgroupId: bigint, giveUp: boolean): CgroupLabels | undefined {
    if (cgroupId === 0n) return NO_CGROUP;
    const hit = this.resolved.get(cgroupId) ?? this.removedLabels(cgroupId);
    if (hit) return hit;
    const { pending } = this.opts;
    const r = this.opts.resolver.resolve(cgroupId, pending.sinceOf(cgroupId), giveUp);
    if (!r.final) {
      pending.waiting(cgroupId, this.opts.clock());
      return undefined;
    }
    pending.resolved(cgroupId);
    const key = labelKey(r.labels);
    const e: CgroupLabels = { labels: r.labels, key, setKey: key, namespace: r.namespace };
    this.resolved.set(cgroupId, e);
    return e;
  }

  /** A live cgroup's labels changed (relabel.ts): later reads and fold-in use the new ones. */
  relabel(cgroupId: bigint, labels: CgroupLabels): void {
    this.resolved.set(cgroupId, labels);
  }

  /** A live cgroup's final labels, if it has them: what fold-in maps it to. */
  finalLabels(cgroupId: bigint): CgroupLabels | undefined {
    return this.resolved.peek(cgroupId);
  }

  /** Moves a removed cgroup's labels to the bounded memory of removed ones; false if it was there already. */
  retire(cgroupId: bigint): boolean {
    const labels = this.resolved.peek(cgroupId);
    this.resolved.delete(cgroupId);
    if (!labels) return false;
    this.removed.set(cgroupId, { labels, lastAskedMs: this.opts.clock() });
    return true;
  }

  /** A removed cgroup's labels, remembered for as long as reads keep needing them. */
  private removedLabels(cgroupId: bigint): CgroupLabels | undefined {
    const r = this.removed.get(cgroupId);
    if (!r) return undefined;
    // Set again, so the memory stays in the order of last use and the idle go first.
    r.lastAskedMs = this.opts.clock();
    this.removed.set(cgroupId, r);
    return r.labels;
  }

  /**
   * Forgets the labels of removed cgroups no read has needed since
   * `idleSinceMs`: without it, every cgroup a churn removed stayed in memory
   * until REMOVED_CGROUP_CAPACITY others pushed it out.
   */
  forgetIdleRemoved(idleSinceMs: number): number {
    return this.removed.evictOldestWhile((r) => r.lastAskedMs < idleSinceMs);
  }

  /** A metric id may be reused by a metric with other extra labels. */
  forgetExtraLabels(): void {
    this.withExtra.clear();
  }
}
