/**
 * Staleness (--metrics-series-ttl): a removed cgroup's kernel entries (or
 * those of a cgroup whose pod was deleted) are deleted once the TTL has passed
 * since, so kernel memory stays bounded under churn, and its series disappear
 * with them.
 *
 * Nothing counted is lost on the way. Each entry is read and deleted in one
 * atomic step, and its value is kept as "retired" under its label set, for as
 * long as that label set still has live entries: a workload whose old pod went
 * away keeps counting from where it was, and stays monotonic. A label set with
 * no entry left is stale and its series goes away. If it had been folded into
 * the overflow series, its bytes stay there, so that series never decreases.
 */
import { native } from '../native/addon';
import { readCounterMap } from '../bpf/counter-map';
import { CounterKey, encodeCounterKey, KEY_OVERFLOW, sumPerCpu } from '../bpf/layout';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { Sample } from '../metrics/define';
import { labelKey } from './series-limiter';

export interface StalenessOptions {
  counterFd: number;
  removals: CgroupRemovals;
  ttlMs: number;
  /** Labels of a (non-overflow) counter key, as the collector would fold it. */
  labelsOf(key: CounterKey): Record<string, string>;
  /** When the pod owning this cgroup was deleted, if it was: that starts the TTL too. */
  podDeletedAt(cgroupId: bigint): number | undefined;
  /** A label set went stale; returns true if it had been folded into the overflow series. */
  forget(metric: number, key: string): boolean;
}

export class Staleness {
  /** Per metric: values of deleted entries, by label set, for label sets still live. */
  readonly retired = new Map<number, Map<string, Sample>>();
  /** Per metric: values of stale label sets that had been folded into the overflow series. */
  readonly retiredOverflow = new Map<number, number>();
  deletedEntries = 0;
  staleLabelSets = 0;

  constructor(private readonly opts: StalenessOptions) {}

  sweep(now = Date.now()): void {
    const { counterFd, removals, ttlMs } = this.opts;
    const dump = readCounterMap(counterFd);
    if (removals.needsRescan()) {
      removals.rescan(new Set(dump.entries.filter((e) => e.key.flags !== KEY_OVERFLOW).map((e) => e.key.cgroupId)));
    }
    const live = new Map<number, Set<string>>();
    for (const e of dump.entries) {
      if (e.key.flags === KEY_OVERFLOW) continue;
      const labels = this.opts.labelsOf(e.key);
      const key = labelKey(labels);
      const removedAt = removals.removedAt(e.key.cgroupId) ?? this.opts.podDeletedAt(e.key.cgroupId);
      if (removedAt === undefined || now - removedAt < ttlMs) {
        if (!live.has(e.key.metric)) live.set(e.key.metric, new Set());
        live.get(e.key.metric)!.add(key);
        continue;
      }
      const value = native().mapLookupAndDelete(counterFd, encodeCounterKey(e.key));
      if (!value) continue;
      this.deletedEntries++;
      if (!this.retired.has(e.key.metric)) this.retired.set(e.key.metric, new Map());
      const m = this.retired.get(e.key.metric)!;
      const add = Number(sumPerCpu(value, 0, value.length));
      const s = m.get(key);
      if (s) s.value += add;
      else m.set(key, { labels, value: add });
    }
    for (const [metric, m] of this.retired) {
      for (const [key, s] of m) {
        if (live.get(metric)?.has(key)) continue;
        m.delete(key);
        this.staleLabelSets++;
        if (this.opts.forget(metric, key)) this.retiredOverflow.set(metric, (this.retiredOverflow.get(metric) ?? 0) + s.value);
      }
    }
  }
}
