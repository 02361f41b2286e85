/**
 * Counts that wait for labels. Two kinds:
 *
 * - A raw cgroup whose labels are not final yet (its pod or workload not
 *   known) is held back from the series: shown under provisional labels it
 *   would later leave them, and a series would decrease. PendingCgroups
 *   remembers since when each waits, so the labeler can stop waiting.
 *
 * - A policy hook with matchNamespaces counts an event whose owner's
 *   namespace is not known yet under a pending key: the raw cgroup, the
 *   metric's pending id, and the selectors that wait on the namespace. Once
 *   the cgroup resolves, the namespace decides (settle()): the count joins
 *   the metric's series, or it never matched and is dropped.
 */
import { CounterKey, KEY_RAW_CGROUP, pendingSelectors } from '../bpf/layout';

/** cgroups seen without final labels, and since when. */
export class PendingCgroups {
  private readonly since = new Map<bigint, number>();

  sinceOf(cgroupId: bigint): number | undefined {
    return this.since.get(cgroupId);
  }

  /** The cgroup's labels are not final: it waits from now, unless it already did. */
  waiting(cgroupId: bigint, now: number): void {
    if (!this.since.has(cgroupId)) this.since.set(cgroupId, now);
  }

  resolved(cgroupId: bigint): void {
    this.since.delete(cgroupId);
  }

  /** After a sweep: forgets the cgroups it did not find waiting any more. */
  keepOnly(waiting: ReadonlySet<bigint>): void {
    for (const id of this.since.keys()) if (!waiting.has(id)) this.since.delete(id);
  }

  get size(): number {
    return this.since.size;
  }
}

/**
 * The id a policy hook with matchNamespaces counts under while an event's
 * owner has no known namespace (bpf/tally_types.h, TALLY_KEY_NS_PENDING):
 * one per hook and metric, because which selectors waited means something
 * only for the hook that counted.
 */
export interface PendingMetric {
  id: number;
  /** The metric the counts are for once admitted. */
  metric: number;
  /** Whether the namespace satisfies one of the selectors the event waited on (bit i: selector i). */
  admits(selectors: number, namespace: string | undefined): boolean;
}

/** What settles a namespace-pending key: the pending ids hooks count under now. */
export interface PendingIds {
  pendingOf(id: number): PendingMetric | undefined;
}

export interface Settled {
  /** The key the count stands for: the metric's own id, keyed by the raw cgroup. */
  key: CounterKey;
  /** Whether the owner's namespace admits it; if not, it never matched. */
  counts: boolean;
}

/** Where settle() finds a cgroup's namespace: KeyLabels. */
export interface CgroupNamespaces {
  /** Undefined while the cgroup's labels are not final. */
  cgroupLabels(cgroupId: bigint, giveUp: boolean): { namespace?: string } | undefined;
}

/**
 * A key counted pending its owner's namespace, settled: undefined while the
 * namespace is not known, or for a pending id no hook owns any more.
 */
export function settle(key: CounterKey, ids: PendingIds, labels: CgroupNamespaces, giveUp = false): Settled | undefined {
  const p = ids.pendingOf(key.metric);
  const set = p && labels.cgroupLabels(key.cgroupId, giveUp);
  if (!p || !set) return undefined;
  return { key: { ...key, metric: p.metric, flags: KEY_RAW_CGROUP }, counts: p.admits(pendingSelectors(key), set.namespace) };
}
