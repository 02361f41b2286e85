/**
 * Which keys the kernel should count outside the hash (promoted counters,
 * src/bpf/promoted-counters.ts): those it will count again under the same
 * key. A label set's, or any when not keyed by cgroup; not raw cgroups
 * (folded in once resolved), pending or overflow keys, keys this sweep took
 * out, nor a label set on its way out (it would be retired again soon).
 */
import { CounterEntry, CounterStore } from '../bpf/counter-store';
import { CounterKey, KEY_LABEL_SET, KEY_RAW_CGROUP } from '../bpf/layout';
import { KeyLabels } from './key-labels';
import { SweepPass } from './sweep-pass';

export class Promotion {
  constructor(
    private readonly store: CounterStore,
    private readonly labels: KeyLabels,
    /** Whether a key's metric is defined (not being undefined). */
    private readonly promotable: (key: CounterKey) => boolean,
  ) {}

  run(entries: CounterEntry[], pass: SweepPass): void {
    const keys = entries
      .map((e) => e.key)
      .filter((k) => {
        if (!(k.flags === KEY_LABEL_SET || (k.flags === KEY_RAW_CGROUP && k.cgroupId === 0n))) return false;
        if (pass.wasTaken(k) || !this.promotable(k)) return false;
        const labels = k.flags === KEY_LABEL_SET ? this.labels.labelsOf(k) : undefined;
        return k.flags !== KEY_LABEL_SET || (labels !== undefined && pass.live.has(labels.setKey));
      });
    this.store.promote(keys);
  }
}
