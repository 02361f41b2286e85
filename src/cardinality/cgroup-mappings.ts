/**
 * User space's copy of tally_cgroup_label_sets: which cgroup the kernel
 * counts under which label-set id, and since which sweep. Changes reach
 * every CPU only when published (a CPU remembers the last mapping it looked
 * up), once per batch of changes.
 */
import { CounterStore } from '../bpf/counter-store';

export interface Mapping {
  id: number;
  /** The sweep that wrote it: raw entries move from the next one on. */
  sweep: number;
}

export class CgroupMappings {
  private readonly mapped = new Map<bigint, Mapping>();
  private changed = false;

  constructor(private readonly store: CounterStore) {}

  get(cgroupId: bigint): Mapping | undefined {
    return this.mapped.get(cgroupId);
  }

  /** False when the kernel's table is full: the cgroup stays raw, still counted under its own labels. */
  map(cgroupId: bigint, labelSet: number, namespaceId: bigint, sweep: number): boolean {
    if (!this.store.mapCgroup(cgroupId, labelSet, namespaceId)) return false;
    this.mapped.set(cgroupId, { id: labelSet, sweep });
    this.changed = true;
    return true;
  }

  unmap(cgroupId: bigint): void {
    this.store.unmapCgroup(cgroupId);
    this.mapped.delete(cgroupId);
    this.changed = true;
  }

  /** Every CPU looks mappings up afresh, if any changed since the last publish(). */
  publish(): void {
    if (this.changed) this.store.remapped();
    this.changed = false;
  }

  entries(): IterableIterator<[bigint, Mapping]> {
    return this.mapped.entries();
  }

  cgroupIds(): IterableIterator<bigint> {
    return this.mapped.keys();
  }

  /** Label-set ids some cgroup maps to. */
  labelSetIds(): Set<number> {
    return new Set([...this.mapped.values()].map((m) => m.id));
  }

  get size(): number {
    return this.mapped.size;
  }
}
