/**
 * The life of kernel counter entries, run every sweep:
 *
 * Fold-in. A cgroup is first counted under its raw id. Once user space has
 * resolved its labels for good (its pod and workload are known), it writes
 * cgroup -> label-set id into tally_cgroup_label_sets, so from then on the
 * kernel counts it in one entry shared by every cgroup with the same labels
 * (the pods of one Deployment under filter namespace,workload). The raw
 * entry's count is moved out with one atomic read-and-delete and kept here,
 * under the same labels: nothing is lost while resolution catches up.
 *
 * Staleness (--metrics-series-ttl). Once a cgroup has been removed (or its pod
 * deleted) for longer than the TTL, its mapping and raw entries go the same
 * way. A label set with no live cgroup left is stale: its kernel entries are
 * deleted and its series disappears. If it had been folded into the overflow
 * series, its count stays there, so that series never decreases. A label set
 * that lives on keeps everything it counted, so it stays monotonic.
 */
import { BPF_ANY, isNativeError, native } from '../native/addon';
import { readCounterMap, sumPerCpuNumber } from '../bpf/counter-map';
import { CounterKey, encodeCounterKey, KEY_LABEL_SET, KEY_OVERFLOW } from '../bpf/layout';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { labelKey } from './series-limiter';
import { LabelSets } from './label-sets';

export interface Resolution {
  /** cgroup-derived labels under the filter (namespace, workload, pod, container). */
  labels: Record<string, string>;
  /** False while something may still change them (pod or workload not known yet). */
  final: boolean;
}

export interface StalenessOptions {
  counterFd: number;
  labelSetFd: number;
  /** Invalidates the kernel's per-CPU cache of label-set lookups. */
  bumpGeneration(): void;
  removals: CgroupRemovals;
  ttlMs: number;
  resolve(cgroupId: bigint): Resolution;
  binaryLabels(binaryId: bigint): Record<string, string>;
  /** When the pod owning this cgroup was deleted, if it was: that starts the TTL too. */
  podDeletedAt(cgroupId: bigint): number | undefined;
  /** A label set went stale; returns true if it had been folded into the overflow series. */
  forget(metric: number, key: string): boolean;
  /** A removed cgroup's state has been fully retired: drop what caches hold about it. */
  cgroupGone(cgroupId: bigint): void;
}

/** Counts moved out of the kernel, kept under their labels. */
interface Held {
  labels: Record<string, string>;
  /** labelKey of the cgroup-derived labels only: what liveness is decided on. */
  setKey: string;
  value: number;
}

export interface EntryLabels {
  labels: Record<string, string>;
  /** labelKey(labels), computed once. */
  key: string;
  setKey: string;
}

export class Staleness {
  readonly labelSets = new LabelSets();
  /** Per metric: counts moved out of the kernel map, by full label key. */
  readonly held = new Map<number, Map<string, Held>>();
  /** Per metric: counts of stale label sets that had been folded into the overflow series. */
  readonly heldOverflow = new Map<number, number>();
  /** cgroup -> label-set id, as written to the kernel. */
  private readonly mapped = new Map<bigint, number>();
  /**
   * Final resolutions and label keys, so a scrape of 100k entries does not
   * rebuild 100k label objects and JSON keys each time. Bounded: cleared
   * entries with their cgroup, and entirely when it outgrows its cap.
   */
  private readonly resolved = new Map<bigint, EntryLabels>();
  private readonly withBinary = new Map<string, EntryLabels>();
  deletedEntries = 0;
  foldedEntries = 0;
  staleLabelSets = 0;
  /** Mappings not written because tally_cgroup_label_sets was full: those cgroups stay raw. */
  labelSetMapFull = 0;

  constructor(private readonly opts: StalenessOptions) {}

  /** Labels of a counter key; undefined for a label set that no longer exists. */
  labelsOf(key: CounterKey): EntryLabels | undefined {
    let set: EntryLabels | undefined;
    if (key.flags === KEY_LABEL_SET) {
      const ls = this.labelSets.get(Number(key.cgroupId));
      if (!ls) return undefined;
      set = { labels: ls.labels, key: ls.key, setKey: ls.key };
    } else {
      set = this.cgroupLabels(key.cgroupId);
    }
    const binary = this.opts.binaryLabels(key.binaryId);
    if (binary.binary === undefined) return set;
    const memo = `${set.key}\0${binary.binary}`;
    let full = this.withBinary.get(memo);
    if (!full) {
      if (this.withBinary.size > 262_144) this.withBinary.clear();
      const labels = { ...set.labels, ...binary };
      full = { labels, key: labelKey(labels), setKey: set.key };
      this.withBinary.set(memo, full);
    }
    return full;
  }

  /** A cgroup's labels; final ones are remembered until the cgroup goes. */
  private cgroupLabels(cgroupId: bigint): EntryLabels {
    const hit = this.resolved.get(cgroupId);
    if (hit) return hit;
    const r = cgroupId === 0n ? { labels: {}, final: true } : this.opts.resolve(cgroupId);
    const key = labelKey(r.labels);
    const e = { labels: r.labels, key, setKey: key };
    if (r.final) {
      if (this.resolved.size > 262_144) this.resolved.clear();
      this.resolved.set(cgroupId, e);
    }
    return e;
  }

  get mappedCgroups(): number {
    return this.mapped.size;
  }

  private removedFor(cgroupId: bigint, now: number): boolean {
    const at = this.opts.removals.removedAt(cgroupId) ?? this.opts.podDeletedAt(cgroupId);
    return at !== undefined && now - at >= this.opts.ttlMs;
  }

  /** Reads and deletes one entry, keeping its count under its labels. */
  private move(key: CounterKey, labels: EntryLabels): void {
    const value = native().mapLookupAndDelete(this.opts.counterFd, encodeCounterKey(key));
    if (!value) return;
    if (!this.held.has(key.metric)) this.held.set(key.metric, new Map());
    const m = this.held.get(key.metric)!;
    const add = sumPerCpuNumber(value, 0, value.length);
    const h = m.get(labels.key);
    if (h) h.value += add;
    else m.set(labels.key, { labels: labels.labels, setKey: labels.setKey, value: add });
  }

  /** Runs one sweep; returns true when fold-in work is left for another one soon. */
  sweep(now = Date.now()): boolean {
    const { counterFd, labelSetFd, removals } = this.opts;
    const dump = readCounterMap(counterFd);
    const raw = dump.entries.filter((e) => e.key.flags !== KEY_OVERFLOW && e.key.flags !== KEY_LABEL_SET);
    if (removals.needsRescan()) removals.rescan(new Set([...raw.map((e) => e.key.cgroupId), ...this.mapped.keys()]));

    // Mappings of removed cgroups go first, so late events land raw and are seen below.
    const live = new Set<string>();
    let changed = false;
    for (const [cgroupId, id] of this.mapped) {
      if (this.removedFor(cgroupId, now)) {
        native().mapDelete(labelSetFd, u64(cgroupId));
        this.mapped.delete(cgroupId);
        this.resolved.delete(cgroupId);
        this.opts.cgroupGone(cgroupId);
        changed = true;
      } else {
        const set = this.labelSets.get(id);
        if (set) live.add(set.key);
      }
    }
    if (changed) this.opts.bumpGeneration();

    changed = false;
    let full = false;
    // Fold-in is bounded per sweep so a burst of new cgroups (100k at once)
    // never holds the event loop, and a scrape, for long: the rest stays raw,
    // still counted, until the next sweeps.
    let folds = 0;
    for (const e of raw) {
      const cgroupId = e.key.cgroupId;
      if (cgroupId !== 0n && this.removedFor(cgroupId, now)) {
        const labels = this.labelsOf(e.key)!;
        this.move(e.key, labels);
        this.deletedEntries++;
        continue;
      }
      const labels = this.labelsOf(e.key)!;
      live.add(labels.setKey);
      if (cgroupId === 0n || !this.resolved.has(cgroupId)) continue; // not final yet
      if (folds >= MAX_FOLDS_PER_SWEEP) continue;
      folds++;
      const r = this.resolved.get(cgroupId)!;
      if (!this.mapped.has(cgroupId)) {
        if (full) {
          this.labelSetMapFull++;
          continue;
        }
        const id = this.labelSets.idFor(labels.setKey, r.labels);
        try {
          native().mapUpdate(labelSetFd, u64(cgroupId), u32(id), BPF_ANY);
        } catch (err) {
          if (!isNativeError(err) || err.code !== 'E2BIG') throw err;
          this.labelSetMapFull++; // the map is full: this cgroup stays raw, still counted
          full = true;
          continue;
        }
        this.mapped.set(cgroupId, id);
        changed = true;
      }
      this.move(e.key, labels);
      this.foldedEntries++;
    }
    if (changed) this.opts.bumpGeneration();

    // Label sets with nothing live behind them are stale. Their kernel and
    // held counts are added up per series first, so each stale series is
    // retired once (and, if it was in the overflow series, stays there whole).
    const stale = new Map<number, Map<string, number>>();
    const addStale = (metric: number, key: string, value: number): void => {
      if (!stale.has(metric)) stale.set(metric, new Map());
      const m = stale.get(metric)!;
      m.set(key, (m.get(key) ?? 0) + value);
    };
    const retiringIds = new Set<number>();
    for (const e of dump.entries) {
      if (e.key.flags !== KEY_LABEL_SET) continue;
      const labels = this.labelsOf(e.key);
      if (labels && live.has(labels.setKey)) continue;
      const value = native().mapLookupAndDelete(counterFd, encodeCounterKey(e.key));
      this.deletedEntries++;
      const n = value ? sumPerCpuNumber(value, 0, value.length) : 0;
      if (labels) addStale(e.key.metric, labels.key, n);
      // An id already released: late bytes from an event in flight when it
      // was retired. They belong to no series any more; keep them counted.
      else if (n > 0) this.heldOverflow.set(e.key.metric, (this.heldOverflow.get(e.key.metric) ?? 0) + n);
      retiringIds.add(Number(e.key.cgroupId));
    }
    for (const [metric, m] of this.held) {
      for (const [key, h] of m) {
        if (live.has(h.setKey)) continue;
        m.delete(key);
        addStale(metric, key, h.value);
      }
    }
    for (const [metric, m] of stale) for (const [key, value] of m) this.retire(metric, key, value);
    // An id whose entries were deleted in this sweep is released in a later
    // one, once no event can still be writing under it.
    const idle = new Set(this.idsWithout(live));
    for (const id of this.releasable) if (idle.has(id) && !retiringIds.has(id)) this.labelSets.release(id);
    this.releasable = new Set([...idle].filter((id) => !this.labelSets.isReleased(id)));
    return folds >= MAX_FOLDS_PER_SWEEP;
  }

  /** Ids of label sets found stale in the last sweep, released in the next. */
  private releasable = new Set<number>();

  /** A stale series goes; if it was in the overflow series its count stays there. */
  private retire(metric: number, key: string, value: number): void {
    this.staleLabelSets++;
    if (this.opts.forget(metric, key)) this.heldOverflow.set(metric, (this.heldOverflow.get(metric) ?? 0) + value);
  }

  private idsWithout(live: Set<string>): number[] {
    const mappedIds = new Set(this.mapped.values());
    return [...this.labelSets.entries()].filter(([id, set]) => !live.has(set.key) && !mappedIds.has(id)).map(([id]) => id);
  }
}

const MAX_FOLDS_PER_SWEEP = 10_000;

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
