/**
 * The life of kernel counter entries, run every sweep.
 *
 * Fold-in. A cgroup is first counted under its raw id. Once user space has
 * resolved its labels for good (its pod and workload are known), it writes
 * cgroup -> label-set id into tally_cgroup_label_sets, so from then on the
 * kernel counts it in one entry shared by every cgroup with the same labels
 * (the pods of one Deployment under filter namespace,workload). The raw
 * entry's count is moved out with one atomic read-and-delete and kept here,
 * under the same labels: nothing is lost while resolution catches up.
 *
 * Until its labels are final, a raw entry is held back from the series: shown
 * under provisional labels it would later leave them, and a series would
 * decrease. The kernel keeps counting it meanwhile.
 *
 * Staleness (--metrics-series-ttl). Once a cgroup has been removed (or its pod
 * deleted) for longer than the TTL, its mapping goes; its labels are kept in a
 * bounded memory, because sockets can outlive their cgroup and still count. A
 * label set with nothing live behind it (no mapped cgroup, no raw traffic, no
 * live pod in the API server) is stale: its kernel entries are deleted and its
 * series disappears. What it, or a late event, counted after its series was
 * shown for the last time goes to the overflow series, so no count vanishes
 * unseen and the overflow series never decreases. A label set that lives on
 * keeps everything it counted, so it stays monotonic.
 *
 * Namespace verdicts. A policy hook with matchNamespaces counts an event
 * whose owner's namespace is not known yet (its cgroup not mapped) under a
 * pending key: the raw cgroup, the metric's pending id and the selectors
 * that wait on the namespace. Once the cgroup resolves, the namespace decides:
 * the count joins the metric's series, or it never matched and is dropped.
 * Mapping the cgroup gives the kernel its namespace, so later events are
 * decided there.
 *
 * Two phases. A BPF program may be adding to an entry at the very moment user
 * space deletes it, and that addition would be lost. So an entry is only ever
 * deleted once nothing should write it any more (its mapping changed in an
 * earlier sweep, and the generation bump made every CPU look the mapping up
 * again) and its value has not moved since the previous sweep.
 */
import { BPF_ANY, isNativeError, native } from '../native/addon';
import { CounterEntry, readCounterMap, sumPerCpuNumber } from '../bpf/counter-map';
import { counterKeyId, PromotedCounters, Totals } from '../bpf/promoted-counters';
import { CounterKey, encodeCgroupMapping, encodeCounterKey, KEY_LABEL_SET, KEY_OVERFLOW, KEY_RAW_CGROUP, pendingSelectors } from '../bpf/layout';
import { namespaceId } from '../labels/namespace-id';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { labelKey, Placement } from './series-limiter';
import { LabelSets } from './label-sets';

export interface Resolution {
  /** cgroup-derived labels under the filter (namespace, workload, pod, container). */
  labels: Record<string, string>;
  /** The pod's Kubernetes namespace, whether or not the filter shows it; undefined outside pods. */
  namespace?: string;
  /** False while something may still change them (pod or workload not known yet). */
  final: boolean;
}

export interface StalenessOptions {
  counterFd: number;
  /** Keys the kernel counts outside the hash (src/bpf/promoted-counters.ts); read and retired with their hash entries. */
  promoted?: PromotedCounters;
  /** Whether a key's metric is defined, so the key may be promoted. */
  promotable?(key: CounterKey): boolean;
  labelSetFd: number;
  /** Invalidates the kernel's per-CPU cache of label-set lookups. */
  bumpGeneration(): void;
  removals: CgroupRemovals;
  ttlMs: number;
  /**
   * @param pendingSinceMs when the cgroup was first seen without final labels
   * @param giveUp the cgroup is gone: whatever is known now is final
   */
  resolve(cgroupId: bigint, pendingSinceMs: number | undefined, giveUp: boolean): Resolution;
  binaryLabels(binaryId: bigint): Record<string, string>;
  /** A policy metric's extra labels, decoded from the key's label values; undefined when it has none. */
  extraLabels?(key: CounterKey): Record<string, string> | undefined;
  /** When the pod owning this cgroup was deleted, if it was: that starts the TTL too. */
  podDeletedAt(cgroupId: bigint): number | undefined;
  /** labelKeys of cgroup-derived label sets with a live pod behind them, busy or idle. */
  liveSetKeys(): Iterable<string>;
  /** A label set went stale: where the series limiter had placed it. */
  forget(metric: number, key: string): Placement;
  /** A removed cgroup's mapping is gone: drop what caches hold about it. */
  cgroupGone(cgroupId: bigint): void;
  /**
   * A pending id's metric (see KernelCounters.definePending), and whether a
   * namespace satisfies one of the selectors an event waited on (a bit each).
   */
  pending?(pendingId: number): { metric: number; admits(selectors: number, namespace: string | undefined): boolean } | undefined;
  /** Removed cgroups whose labels are remembered for late events (default 65536). */
  retiredCapacity?: number;
}

/** Counts moved out of the kernel, kept under their series' labels. */
export interface Held {
  labels: Record<string, string>;
  /** labelKey of the cgroup-derived labels only: what liveness is decided on. */
  setKey: string;
  /** By histogram bucket; counters use bucket 0 only. */
  buckets: Map<number, number>;
}

function addTo(buckets: Map<number, number>, bucket: number, value: number): void {
  buckets.set(bucket, (buckets.get(bucket) ?? 0) + value);
}

export interface EntryLabels {
  labels: Record<string, string>;
  /** labelKey(labels), computed once. */
  key: string;
  setKey: string;
}

/** A cgroup's own labels, and its namespace, which the filter may not show. */
interface CgroupLabels extends EntryLabels {
  namespace?: string;
}

interface Mapping {
  id: number;
  /** The sweep that wrote it: raw entries move from the next one on. */
  sweep: number;
}

const NO_CGROUP: EntryLabels = Object.freeze({ labels: {}, key: labelKey({}), setKey: labelKey({}) });

export class Staleness {
  readonly labelSets = new LabelSets();
  /** Per metric: counts moved out of the kernel map, by series key. */
  readonly held = new Map<number, Map<string, Held>>();
  /** Per metric, per bucket: counts whose series is gone, or was folded, kept in the overflow series. */
  readonly heldOverflow = new Map<number, Map<number, number>>();
  /** cgroup -> label-set id, as written to the kernel. */
  private readonly mapped = new Map<bigint, Mapping>();
  /**
   * Final resolutions and label keys, so a scrape of 100k entries does not
   * rebuild 100k label objects and JSON keys each time. Bounded: cleared
   * entries with their cgroup, and entirely when it outgrows its cap.
   */
  private readonly resolved = new Map<bigint, CgroupLabels>();
  /** Labels of removed cgroups, oldest first, for events from sockets that outlive them. */
  private readonly retired = new Map<bigint, CgroupLabels>();
  private readonly withBinary = new Map<string, EntryLabels>();
  private readonly withExtra = new Map<string, EntryLabels>();
  /** cgroups without final labels yet, and since when. */
  private readonly pendingSince = new Map<bigint, number>();
  /** Values of entries being watched for quiet, from the previous sweep. */
  private lastValues = new Map<string, number>();
  /**
   * This sweep's read of the promoted counters, made when first needed and
   * shared by every step: retired, merged, retirements and promotions.
   */
  private promotedTotals?: Totals;
  /** Keys taken out of the kernel in this sweep: not to be promoted in it. */
  private readonly taken = new Set<string>();
  private sweeps = 0;
  deletedEntries = 0;
  foldedEntries = 0;
  staleLabelSets = 0;
  /** cgroups left raw in the last sweep because tally_cgroup_label_sets was full. */
  unmappedMapFull = 0;
  /** Entries counted pending a namespace that, once known, no selector admitted. */
  unmatchedEntries = 0;

  constructor(private readonly opts: StalenessOptions) {}

  /** Labels of a counter key; undefined for a released label set or labels not final yet. */
  labelsOf(key: CounterKey, giveUp = false): EntryLabels | undefined {
    let set: EntryLabels | undefined;
    if (key.flags === KEY_LABEL_SET) {
      const ls = this.labelSets.get(Number(key.cgroupId));
      if (!ls) return undefined;
      set = { labels: ls.labels, key: ls.key, setKey: ls.key };
    } else {
      set = this.cgroupLabels(key.cgroupId, giveUp);
      if (!set) return undefined;
    }
    const binary = this.opts.binaryLabels(key.binaryId);
    let full = set;
    if (binary.binary !== undefined) {
      const memo = `${set.key}\0${binary.binary}`;
      const hit = this.withBinary.get(memo);
      if (hit) {
        full = hit;
      } else {
        if (this.withBinary.size > 262_144) this.withBinary.clear();
        const labels = { ...set.labels, ...binary };
        full = { labels, key: labelKey(labels), setKey: set.key };
        this.withBinary.set(memo, full);
      }
    }
    const extra = this.opts.extraLabels?.(key);
    if (!extra) return full;
    // Memoised like the binary label: a scrape meets the same series again and again.
    const memo = `${full.key}\0${key.metric}\0${key.label0}\0${key.label1}`;
    let withExtra = this.withExtra.get(memo);
    if (!withExtra) {
      if (this.withExtra.size > 262_144) this.withExtra.clear();
      const labels = { ...full.labels, ...extra };
      withExtra = { labels, key: labelKey(labels), setKey: full.setKey };
      this.withExtra.set(memo, withExtra);
    }
    return withExtra;
  }

  /**
   * A key counted pending its owner's namespace: the key it stands for (its
   * metric's own id) and whether the namespace admits it. Undefined while the
   * namespace is not known, or for a metric being undefined.
   */
  settle(key: CounterKey, giveUp = false): { key: CounterKey; counts: boolean } | undefined {
    const p = this.opts.pending?.(key.metric);
    const set = p && this.cgroupLabels(key.cgroupId, giveUp);
    if (!p || !set) return undefined;
    return { key: { ...key, metric: p.metric, flags: KEY_RAW_CGROUP }, counts: p.admits(pendingSelectors(key), set.namespace) };
  }

  /** A cgroup's labels once final; remembered until the cgroup goes, and a while after. */
  private cgroupLabels(cgroupId: bigint, giveUp: boolean): CgroupLabels | undefined {
    if (cgroupId === 0n) return NO_CGROUP;
    const hit = this.resolved.get(cgroupId) ?? this.retired.get(cgroupId);
    if (hit) return hit;
    const since = this.pendingSince.get(cgroupId);
    const r = this.opts.resolve(cgroupId, since, giveUp);
    if (!r.final) {
      if (since === undefined) this.pendingSince.set(cgroupId, Date.now());
      return undefined;
    }
    this.pendingSince.delete(cgroupId);
    const key = labelKey(r.labels);
    const e: CgroupLabels = { labels: r.labels, key, setKey: key, namespace: r.namespace };
    if (this.resolved.size > 262_144) this.resolved.clear();
    this.resolved.set(cgroupId, e);
    return e;
  }

  get mappedCgroups(): number {
    return this.mapped.size;
  }

  private removedFor(cgroupId: bigint, now: number): boolean {
    const at = this.opts.removals.removedAt(cgroupId) ?? this.opts.podDeletedAt(cgroupId);
    return at !== undefined && now - at >= this.opts.ttlMs;
  }

  /**
   * Reads and deletes one entry, keeping its count under its labels for
   * metric (a pending entry's is not the key's), unless it does not count.
   */
  private move(key: CounterKey, labels: EntryLabels, metric = key.metric, counts = true): void {
    const value = this.take(key);
    if (value === undefined) return;
    if (!counts) {
      this.unmatchedEntries++;
      return;
    }
    if (!this.held.has(metric)) this.held.set(metric, new Map());
    const m = this.held.get(metric)!;
    let h = m.get(labels.key);
    if (!h) m.set(labels.key, (h = { labels: labels.labels, setKey: labels.setKey, buckets: new Map() }));
    addTo(h.buckets, key.bucket ?? 0, value);
  }

  /**
   * Reads and deletes a key's hash entry, and retires it if promoted: what
   * both counted, or undefined if neither held the key.
   */
  private take(key: CounterKey): number | undefined {
    // Retired first: the kernel then counts in the hash, and the hash entry read after holds every such event.
    const p = this.opts.promoted;
    const promoted = p?.has(key) ? p.retire(key, this.promotedTotals ?? p.snapshot()) : undefined;
    const value = native().mapLookupAndDelete(this.opts.counterFd, encodeCounterKey(key));
    this.taken.add(counterKeyId(key));
    if (!value && promoted === undefined) return undefined;
    return (value ? sumPerCpuNumber(value, 0, value.length) : 0) + (promoted ?? 0);
  }

  /** The hash's entries, each with what its key counted while promoted added. */
  private readCounters(): CounterEntry[] {
    const entries = readCounterMap(this.opts.counterFd).entries;
    const promoted = this.opts.promoted?.entries(this.promotedTotals) ?? [];
    if (promoted.length === 0) return entries;
    const byId = new Map(entries.map((e) => [counterKeyId(e.key), e]));
    for (const p of promoted) {
      const e = byId.get(counterKeyId(p.key));
      if (e) e.value += p.value;
      else entries.push(p);
    }
    return entries;
  }

  /**
   * Promotes the entries the kernel will count again under the same key: a
   * label set's, or any when not keyed by cgroup. Not raw cgroups (folded
   * in once resolved), pending or overflow keys, nor what this sweep took out.
   */
  private promote(entries: CounterEntry[], live: Set<string>): void {
    const promoted = this.opts.promoted;
    if (!promoted) return;
    const keys = entries
      .map((e) => e.key)
      .filter((k) => {
        if (!(k.flags === KEY_LABEL_SET || (k.flags === KEY_RAW_CGROUP && k.cgroupId === 0n))) return false;
        if (this.taken.has(counterKeyId(k)) || !(this.opts.promotable?.(k) ?? true)) return false;
        // Not a label set on its way out: it would be retired again soon.
        const labels = k.flags === KEY_LABEL_SET ? this.labelsOf(k) : undefined;
        return k.flags !== KEY_LABEL_SET || (labels !== undefined && live.has(labels.setKey));
      });
    promoted.promote(keys, this.promotedTotals);
  }

  /** Moves a removed cgroup's labels to the bounded memory of retired ones; false if it was there already. */
  private retire(cgroupId: bigint): boolean {
    const labels = this.resolved.get(cgroupId);
    this.resolved.delete(cgroupId);
    if (!labels) return false;
    this.retired.delete(cgroupId);
    this.retired.set(cgroupId, labels);
    const cap = this.opts.retiredCapacity ?? 65_536;
    for (const oldest of this.retired.keys()) {
      if (this.retired.size <= cap) break;
      this.retired.delete(oldest);
    }
    return true;
  }

  /** Runs one sweep; returns true when fold-in work is left for another one soon. */
  sweep(now = Date.now()): boolean {
    const { counterFd, labelSetFd, removals } = this.opts;
    const sweep = ++this.sweeps;
    this.taken.clear();
    this.promotedTotals = this.opts.promoted?.snapshot();
    // Counts added to keys retired in an earlier sweep came after their series was shown for the last time.
    this.opts.promoted?.sweep((key, n) => this.addOverflow(key.metric, key.bucket ?? 0, n), this.promotedTotals);
    const dump = { entries: this.readCounters() };
    const raw = dump.entries.filter((e) => e.key.flags !== KEY_OVERFLOW && e.key.flags !== KEY_LABEL_SET);
    if (removals.needsRescan()) removals.rescan(new Set([...raw.map((e) => e.key.cgroupId), ...this.mapped.keys()]));

    // An entry may be deleted only if its value has not moved since the last sweep.
    const previous = this.lastValues;
    const values = new Map<string, number>();
    this.lastValues = values;
    const quiet = (e: CounterEntry): boolean => {
      const id = entryId(e.key);
      values.set(id, e.value);
      return previous.get(id) === e.value;
    };

    const live = new Set<string>(this.opts.liveSetKeys());
    // Phase one of retiring a removed cgroup: its mapping goes, so events from
    // sockets that outlive it land raw again, where phase two finds them.
    let changed = false;
    for (const [cgroupId, m] of this.mapped) {
      if (this.removedFor(cgroupId, now)) {
        native().mapDelete(labelSetFd, u64(cgroupId));
        this.mapped.delete(cgroupId);
        this.retire(cgroupId);
        this.opts.cgroupGone(cgroupId);
        changed = true;
      } else {
        const set = this.labelSets.get(m.id);
        if (set) live.add(set.key);
      }
    }
    if (changed) this.opts.bumpGeneration();

    changed = false;
    // Fold-in is bounded per sweep so a burst of new cgroups (100k at once)
    // never holds the event loop, and a scrape, for long: the rest stays raw,
    // still counted, until the next sweeps.
    let work = 0;
    let full = false;
    const unmapped = new Set<bigint>();
    const pending = new Set<bigint>();
    for (const e of raw) {
      const cgroupId = e.key.cgroupId;
      const removed = cgroupId !== 0n && this.removedFor(cgroupId, now);
      let key = e.key;
      let counts = true;
      if (pendingSelectors(e.key)) {
        const settled = this.settle(e.key, removed);
        if (!settled) {
          if (this.opts.pending?.(e.key.metric)) {
            pending.add(cgroupId);
          } else if (quiet(e)) {
            // A pending id no hook owns any more (its policy is gone; an event in flight wrote it late): nothing reads it.
            native().mapDelete(counterFd, encodeCounterKey(e.key));
            this.deletedEntries++;
          }
          continue;
        }
        ({ key, counts } = settled);
      }
      const labels = this.labelsOf(key, removed);
      if (!labels) {
        pending.add(cgroupId);
        continue;
      }
      if (removed) {
        if (quiet(e)) {
          this.move(e.key, labels, key.metric, counts);
          this.deletedEntries++;
          if (this.retire(cgroupId)) this.opts.cgroupGone(cgroupId);
        } else if (counts) {
          live.add(labels.setKey); // a socket that outlived its cgroup is still sending
        }
        continue;
      }
      if (counts) live.add(labels.setKey);
      if (cgroupId === 0n) continue;
      const m = this.mapped.get(cgroupId);
      if (m) {
        // Phase two of fold-in: the kernel counts this cgroup under its label set now.
        if (quiet(e) && m.sweep < sweep && work < MAX_WORK_PER_SWEEP) {
          this.move(e.key, labels, key.metric, counts);
          if (counts) this.foldedEntries++;
          work++;
        }
        continue;
      }
      if (full) {
        unmapped.add(cgroupId);
        continue;
      }
      if (work >= MAX_WORK_PER_SWEEP) continue;
      const own = this.resolved.get(cgroupId)!;
      const id = this.labelSets.idFor(own.key, own.labels);
      try {
        native().mapUpdate(labelSetFd, u64(cgroupId), encodeCgroupMapping(id, namespaceId(own.namespace)), BPF_ANY);
      } catch (err) {
        if (!isNativeError(err) || err.code !== 'E2BIG') throw err;
        // Full: this cgroup stays raw, still counted under its own labels; tried again next sweep.
        unmapped.add(cgroupId);
        full = true;
        continue;
      }
      this.mapped.set(cgroupId, { id, sweep });
      quiet(e);
      changed = true;
      work++;
    }
    if (changed) this.opts.bumpGeneration();
    this.unmappedMapFull = unmapped.size;
    for (const id of this.pendingSince.keys()) if (!pending.has(id)) this.pendingSince.delete(id);

    const retiringIds = this.retireStale(dump.entries, live, quiet);
    this.promote(dump.entries, live);
    // An id whose entries were deleted in this sweep is released in a later
    // one, once no event can still be writing under it.
    const idle = new Set(this.idsWithout(live));
    for (const id of this.releasable) if (idle.has(id) && !retiringIds.has(id)) this.labelSets.release(id);
    this.releasable = new Set([...idle].filter((id) => !this.labelSets.isReleased(id)));
    return work >= MAX_WORK_PER_SWEEP;
  }

  /**
   * Label sets with nothing live behind them are stale. A set's kernel
   * entries go together, once all are quiet; its kernel and held counts are
   * added up per series first, so each stale series is retired once.
   */
  private retireStale(entries: CounterEntry[], live: Set<string>, quiet: (e: CounterEntry) => boolean): Set<number> {
    const candidates = new Map<number, CounterEntry[]>();
    for (const e of entries) {
      if (e.key.flags !== KEY_LABEL_SET) continue;
      const labels = this.labelsOf(e.key);
      if (labels && live.has(labels.setKey)) continue;
      const id = Number(e.key.cgroupId);
      if (!candidates.has(id)) candidates.set(id, []);
      candidates.get(id)!.push(e);
    }
    const stale = new Map<number, Map<string, Map<number, number>>>();
    const addStale = (metric: number, key: string, bucket: number, value: number): void => {
      if (!stale.has(metric)) stale.set(metric, new Map());
      const m = stale.get(metric)!;
      if (!m.has(key)) m.set(key, new Map());
      addTo(m.get(key)!, bucket, value);
    };
    const retiringIds = new Set<number>();
    for (const [id, group] of candidates) {
      if (!group.map(quiet).every(Boolean)) {
        const set = this.labelSets.get(id);
        if (set) live.add(set.key); // still written: retired in a later sweep
        continue;
      }
      for (const e of group) {
        const n = this.take(e.key) ?? 0;
        this.deletedEntries++;
        const labels = this.labelsOf(e.key);
        if (labels) addStale(e.key.metric, labels.key, e.key.bucket ?? 0, n);
        // An id already released: late counts from an event in flight when it
        // was retired. They belong to no series any more; keep them counted.
        else this.addOverflow(e.key.metric, e.key.bucket ?? 0, n);
      }
      retiringIds.add(id);
    }
    for (const [metric, m] of this.held) {
      for (const [key, h] of m) {
        if (live.has(h.setKey)) continue;
        m.delete(key);
        for (const [bucket, value] of h.buckets) addStale(metric, key, bucket, value);
      }
    }
    for (const [metric, m] of stale) {
      for (const [key, buckets] of m) {
        this.staleLabelSets++;
        // A series shown until now simply ends. A folded one's count stays in
        // the overflow series, and so does one never shown under its own
        // labels (late events of a series already gone).
        if (this.opts.forget(metric, key) !== 'admitted') for (const [bucket, value] of buckets) this.addOverflow(metric, bucket, value);
      }
    }
    return retiringIds;
  }

  private addOverflow(metric: number, bucket: number, value: number): void {
    if (value <= 0) return;
    if (!this.heldOverflow.has(metric)) this.heldOverflow.set(metric, new Map());
    addTo(this.heldOverflow.get(metric)!, bucket, value);
  }

  /** A metric is gone (its policy was removed): forget everything held for it. */
  dropMetric(metric: number): void {
    this.held.delete(metric);
    this.heldOverflow.delete(metric);
    // Its id may be reused by a metric with other extra labels.
    this.withExtra.clear();
  }

  /** Ids of label sets found stale in the last sweep, released in the next. */
  private releasable = new Set<number>();

  private idsWithout(live: Set<string>): number[] {
    const mappedIds = new Set([...this.mapped.values()].map((m) => m.id));
    return [...this.labelSets.entries()].filter(([id, set]) => !live.has(set.key) && !mappedIds.has(id)).map(([id]) => id);
  }
}

const MAX_WORK_PER_SWEEP = 10_000;

function entryId(k: CounterKey): string {
  return `${k.cgroupId}:${k.binaryId}:${k.metric}:${k.flags}:${k.label0}:${k.label1}:${k.bucket}`;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}

