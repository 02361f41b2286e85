/**
 * Relabelling: a live cgroup whose final labels change, because its pod's
 * labels joined by --metrics-pod-labels were edited (docs/pod-labels.md).
 *
 * The old series is not renamed, and does not take the new labels with its
 * value: it stops growing at the change and stays, as it was, for the
 * series TTL, then ends like the series of a deleted pod. The new labels
 * start a series of their own that holds what is counted from the change
 * on. So every series is monotonic, each label value's sum is exactly what
 * was counted while the pod carried it, and the sum over both is the
 * pod's total. A change back within the TTL continues the old series.
 *
 * No BPF program is touched: a mapped cgroup gets the new labels' label-set
 * id in tally_cgroup_label_sets (one map write); a cgroup still counted raw
 * has its entries moved out under the old labels first.
 */
import { CounterEntry } from '../bpf/counter-store';
import { KEY_RAW_CGROUP } from '../bpf/layout';
import { namespaceId } from '../labels/namespace-id';
import { CgroupMappings } from './cgroup-mappings';
import { CgroupLabels, KeyLabels } from './key-labels';
import { LabelSets } from './label-sets';
import { labelKey } from './rollup-plan';
import { CgroupResolver, Removals } from './sources';
import { SweepCounts, SweepPass } from './sweep-pass';

export interface RelabelParts {
  resolver: CgroupResolver;
  removals: Removals;
  mappings: CgroupMappings;
  labels: KeyLabels;
  labelSets: LabelSets;
  counts: SweepCounts;
  /** How long a left label set stays (--metrics-series-ttl), in ms. */
  ttlMs: number;
}

export class Relabelling {
  /** Label sets cgroups have left, by key: live until then (ms). */
  private readonly leaving = new Map<string, number>();

  constructor(private readonly p: RelabelParts) {}

  /** A sweep's first step, after the dump: relabels what changed, and keeps left label sets live for their TTL. */
  run(raw: readonly CounterEntry[], pass: SweepPass): void {
    // Only the cgroups of pods whose labels changed: a sweep never walks every cgroup for this.
    const candidates = [...(this.p.resolver.relabelled?.() ?? [])];
    if (candidates.length > 0) this.relabel(candidates, raw, pass);
    for (const [key, until] of this.leaving) {
      if (pass.now < until) pass.live.add(key);
      else this.leaving.delete(key);
    }
  }

  private relabel(candidates: readonly bigint[], raw: readonly CounterEntry[], pass: SweepPass): void {
    const { labels, mappings, labelSets } = this.p;
    const changed = new Map<bigint, { before: string; after: CgroupLabels }>();
    for (const cgroupId of candidates) {
      // Its labels as series show them now: memoised, or (the memo is bounded) its mapping's label set.
      const m = mappings.get(cgroupId);
      const before = labels.finalLabels(cgroupId)?.key ?? (m && labelSets.get(m.id)?.key);
      if (before === undefined) continue; // never final yet: it resolves under the new labels
      const after = this.current(cgroupId);
      if (after && after.key !== before) changed.set(cgroupId, { before, after });
    }
    if (changed.size === 0) return;
    // What a cgroup counted raw before the change stays under the labels it had.
    // (A key counted pending its namespace is not among them: it exists only
    // before a cgroup's labels are final, and is settled under the new ones.)
    for (const e of raw) {
      if (e.key.flags !== KEY_RAW_CGROUP || !changed.has(e.key.cgroupId)) continue;
      const old = labels.labelsOf(e.key);
      if (old) pass.move(e.key, old);
    }
    for (const [cgroupId, { before, after }] of changed) {
      labels.relabel(cgroupId, after);
      this.leaving.set(before, pass.now + this.p.ttlMs);
      this.leaving.delete(after.key);
      const m = mappings.get(cgroupId);
      // A cgroup left raw (the mapping table was full) needs no write: its entries are labelled at each read.
      if (m) mappings.map(cgroupId, labelSets.idFor(after.key, after.labels), namespaceId(after.namespace), pass.sweep);
      this.p.counts.relabelledCgroups++;
    }
    mappings.publish();
  }

  /** A live cgroup's labels now; undefined for one removed (or of a deleted pod): it keeps its labels to its end. */
  private current(cgroupId: bigint): CgroupLabels | undefined {
    const { resolver, removals } = this.p;
    if (removals.removedAt(cgroupId) !== undefined || resolver.podDeletedAt(cgroupId) !== undefined) return undefined;
    const r = resolver.resolve(cgroupId, undefined, false);
    if (!r.final) return undefined;
    const key = labelKey(r.labels);
    return { labels: r.labels, key, setKey: key, namespace: r.namespace };
  }
}
