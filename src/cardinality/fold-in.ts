/**
 * Fold-in. A cgroup is first counted under its raw id. Once user space has
 * resolved its labels for good (its pod and workload are known), it writes
 * cgroup -> label-set id into tally_cgroup_label_sets, so from then on the
 * kernel counts it in one entry shared by every cgroup with the same labels
 * (the pods of one Deployment under filter namespace,workload): phase one.
 * In a later sweep, once the raw entry has gone quiet, its count is moved
 * out with one atomic read-and-delete and kept under the same labels: phase
 * two. Nothing is lost while resolution catches up.
 *
 * Mapping a cgroup also gives the kernel its namespace, so a hook with
 * matchNamespaces decides later events there.
 *
 * Fold-in is bounded per sweep so a burst of new cgroups (100k at once)
 * never holds the event loop, and a scrape, for long: the rest stays raw,
 * still counted, until the next sweeps.
 */
import { CounterEntry } from '../bpf/counter-store';
import { CounterKey } from '../bpf/layout';
import { namespaceId } from '../labels/namespace-id';
import { CgroupMappings } from './cgroup-mappings';
import { EntryLabels, KeyLabels } from './key-labels';
import { LabelSets } from './label-sets';
import { SweepCounts, SweepPass } from './sweep-pass';

export const MAX_FOLD_IN_PER_SWEEP = 10_000;

export class FoldIn {
  private work = 0;
  private full = false;
  /** cgroups left raw in this sweep because the mapping table was full. */
  private readonly unmapped = new Set<bigint>();

  constructor(
    private readonly mappings: CgroupMappings,
    private readonly labels: KeyLabels,
    private readonly labelSets: LabelSets,
    private readonly counts: SweepCounts,
  ) {}

  begin(): void {
    this.work = 0;
    this.full = false;
    this.unmapped.clear();
  }

  /**
   * A raw entry of a live cgroup with final labels. key and counts are what
   * it stands for once settled (see pending-labels.ts).
   */
  entry(e: CounterEntry, key: CounterKey, labels: EntryLabels, counts: boolean, pass: SweepPass): void {
    const cgroupId = e.key.cgroupId;
    const m = this.mappings.get(cgroupId);
    if (m) {
      // Phase two: the kernel counts this cgroup under its label set now.
      if (pass.quiet(e) && m.sweep < pass.sweep && this.work < MAX_FOLD_IN_PER_SWEEP) {
        pass.move(e.key, labels, key.metric, counts);
        if (counts) this.counts.foldedEntries++;
        this.work++;
      }
      return;
    }
    if (this.full) {
      this.unmapped.add(cgroupId);
      return;
    }
    if (this.work >= MAX_FOLD_IN_PER_SWEEP) return;
    // Phase one: the cgroup's own labels, not the entry's (which may carry a binary or extra labels).
    const own = this.labels.finalLabels(cgroupId)!;
    const id = this.labelSets.idFor(own.key, own.labels);
    if (!this.mappings.map(cgroupId, id, namespaceId(own.namespace), pass.sweep)) {
      // Full: tried again next sweep.
      this.unmapped.add(cgroupId);
      this.full = true;
      return;
    }
    pass.quiet(e);
    this.work++;
  }

  /** Publishes this sweep's mappings; true when work is left for another sweep soon. */
  end(): boolean {
    this.mappings.publish();
    this.counts.unmappedMapFull = this.unmapped.size;
    return this.work >= MAX_FOLD_IN_PER_SWEEP;
  }
}
