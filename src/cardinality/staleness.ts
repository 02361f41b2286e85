/**
 * Staleness (--metrics-series-ttl). Once a cgroup has been removed (or its
 * pod deleted) for longer than the TTL, its mapping goes (phase one); its
 * labels are kept in a bounded memory, because sockets can outlive their
 * cgroup and still count, and its raw entries are moved out once quiet
 * (phase two, see quiet-entries.ts).
 *
 * A label set with nothing live behind it (no mapped cgroup, no raw
 * traffic, no live pod in the API server) is stale: its kernel entries are
 * deleted and its series disappears. What it, or a late event, counted after
 * its series was shown for the last time goes to the overflow series, so no
 * count vanishes unseen and the overflow series never decreases. A label set
 * that lives on keeps everything it counted, so it stays monotonic.
 */
import { CounterEntry } from '../bpf/counter-store';
import { CounterKey, KEY_LABEL_SET } from '../bpf/layout';
import { CgroupMappings } from './cgroup-mappings';
import { addToBucket, HeldCounts } from './held-counts';
import { EntryLabels, KeyLabels } from './key-labels';
import { LabelSets } from './label-sets';
import { Placement } from './series-limiter';
import { CgroupResolver, Removals } from './sources';
import { SweepCounts, SweepPass } from './sweep-pass';

/**
 * How long, in series TTLs, a removed cgroup is remembered (when it went,
 * where it was, its labels) after the last read that needed it. Late events
 * of sockets that outlive their cgroup refresh it as they come: orphaned TCP
 * sockets retransmit and close within tcp_fin_timeout (60 s) and the
 * retransmission backoff (up to 120 s between tries). An event later than
 * that, after a longer silence, counts in the series without cgroup labels.
 * Without a horizon, memory grew by 0.4 KiB per removed cgroup until 65,536
 * of them (BENCHMARKS.md, "Agent memory").
 */
export const REMOVED_MEMORY_TTLS = 5;

export interface StalenessOptions {
  ttlMs: number;
  removals: Removals;
  resolver: CgroupResolver;
  /** A label set went stale: where the series limiter had placed it. */
  forget(metric: number, key: string): Placement;
  /** A removed cgroup's mapping is gone: drop what caches hold about it. */
  cgroupGone(cgroupId: bigint): void;
}

export class Staleness {
  /** Ids of label sets found stale in the last sweep, released in the next. */
  private releasable = new Set<number>();

  constructor(
    private readonly opts: StalenessOptions,
    private readonly mappings: CgroupMappings,
    private readonly labels: KeyLabels,
    private readonly labelSets: LabelSets,
    private readonly held: HeldCounts,
    private readonly counts: SweepCounts,
  ) {}

  removedFor(cgroupId: bigint, now: number): boolean {
    const at = this.opts.removals.removedAt(cgroupId) ?? this.opts.resolver.podDeletedAt(cgroupId);
    return at !== undefined && now - at >= this.opts.ttlMs;
  }

  /**
   * Phase one of retiring removed cgroups: their mappings go, so events from
   * sockets that outlive them land raw again, where phase two finds them.
   * The label sets of the others are live.
   */
  unmapRemoved(pass: SweepPass): void {
    for (const [cgroupId, m] of this.mappings.entries()) {
      if (this.removedFor(cgroupId, pass.now)) {
        this.mappings.unmap(cgroupId);
        this.labels.retire(cgroupId);
        this.opts.cgroupGone(cgroupId);
      } else {
        const set = this.labelSets.get(m.id);
        if (set) pass.live.add(set.key);
      }
    }
    this.mappings.publish();
  }

  /** Phase two: a removed cgroup's raw entry, moved out once quiet; until then its label set lives. */
  removedEntry(e: CounterEntry, key: CounterKey, labels: EntryLabels, counts: boolean, pass: SweepPass): void {
    if (pass.quiet(e)) {
      pass.move(e.key, labels, key.metric, counts);
      this.counts.deletedEntries++;
      if (this.labels.retire(e.key.cgroupId)) this.opts.cgroupGone(e.key.cgroupId);
    } else if (counts) {
      pass.live.add(labels.setKey); // a socket that outlived its cgroup is still sending
    }
  }

  /**
   * Label sets with nothing live behind them are stale. A set's kernel
   * entries go together, once all are quiet; its kernel and held counts are
   * added up per series first, so each stale series is retired once.
   * Returns the label-set ids whose entries were deleted.
   */
  retireStale(entries: CounterEntry[], pass: SweepPass): Set<number> {
    const candidates = new Map<number, CounterEntry[]>();
    for (const e of entries) {
      if (e.key.flags !== KEY_LABEL_SET) continue;
      const labels = this.labels.labelsOf(e.key);
      if (labels && pass.live.has(labels.setKey)) continue;
      const id = Number(e.key.cgroupId);
      if (!candidates.has(id)) candidates.set(id, []);
      candidates.get(id)!.push(e);
    }
    const stale = new Map<number, Map<string, Map<number, number>>>();
    const addStale = (metric: number, key: string, bucket: number, value: number): void => {
      if (!stale.has(metric)) stale.set(metric, new Map());
      const m = stale.get(metric)!;
      if (!m.has(key)) m.set(key, new Map());
      addToBucket(m.get(key)!, bucket, value);
    };
    const retiringIds = new Set<number>();
    for (const [id, group] of candidates) {
      if (!group.map((e) => pass.quiet(e)).every(Boolean)) {
        const set = this.labelSets.get(id);
        if (set) pass.live.add(set.key); // still written: retired in a later sweep
        continue;
      }
      for (const e of group) {
        const n = pass.take(e.key) ?? 0;
        this.counts.deletedEntries++;
        const labels = this.labels.labelsOf(e.key);
        if (labels) addStale(e.key.metric, labels.key, e.key.bucket ?? 0, n);
        // An id already released: late counts from an event in flight when it
        // was retired. They belong to no series any more; keep them counted.
        else this.held.addOverflow(e.key.metric, e.key.bucket ?? 0, n);
      }
      retiringIds.add(id);
    }
    this.held.takeStale(pass.live, addStale);
    for (const [metric, m] of stale) {
      for (const [key, buckets] of m) {
        this.counts.staleLabelSets++;
        // A series shown until now simply ends. A rolled-up member's count
        // stays in its rolled-up series, which lives on a while even with no
        // member left (SeriesLimiter). A count folded flat stays in the
        // overflow series, and so does one never shown under its own labels
        // (late events of a series already gone).
        const was = this.opts.forget(metric, key);
        if (was.at === 'own') continue;
        for (const [bucket, value] of buckets) {
          if (was.at === 'rolled') this.held.addRolled(metric, was.series.key, was.series.labels, bucket, value);
          else this.held.addOverflow(metric, bucket, value);
        }
      }
    }
    return retiringIds;
  }

  /** Forgets what is remembered of removed cgroups that no read has needed for REMOVED_MEMORY_TTLS TTLs. */
  forgetIdleRemovals(now: number): void {
    const idleSince = now - REMOVED_MEMORY_TTLS * this.opts.ttlMs;
    this.labels.forgetIdleRemoved(idleSince);
    this.opts.removals.forgetIdle(idleSince, now);
  }

  /**
   * Releases the ids of label sets idle since the last sweep, so they can be
   * reused. An id whose entries were deleted in this sweep is released in a
   * later one, once no event can still be writing under it.
   */
  releaseIdle(retiringIds: ReadonlySet<number>, live: ReadonlySet<string>): void {
    const mappedIds = this.mappings.labelSetIds();
    const idle = new Set([...this.labelSets.entries()].filter(([id, set]) => !live.has(set.key) && !mappedIds.has(id)).map(([id]) => id));
    for (const id of this.releasable) if (idle.has(id) && !retiringIds.has(id)) this.labelSets.release(id);
    this.releasable = new Set([...idle].filter((id) => !this.labelSets.isReleased(id)));
  }
}
