/**
 * The rule that makes deleting a kernel entry safe. A BPF program may be
 * adding to an entry at the very moment user space deletes it, and that
 * addition would be lost. So an entry is only ever deleted once nothing
 * should write it any more (its mapping changed in an earlier sweep, and
 * every CPU was made to look the mapping up again) and its value has not
 * moved since the previous sweep.
 */
import { CounterEntry, counterKeyId } from '../bpf/counter-store';

export class QuietEntries {
  private previous = new Map<string, number>();
  private current = new Map<string, number>();

  /** A new sweep: what the last one recorded is what this one compares with. */
  nextSweep(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Records the entry's value for the next sweep; true if the previous sweep saw the same. */
  isQuiet(e: CounterEntry): boolean {
    const id = counterKeyId(e.key);
    this.current.set(id, e.value);
    return this.previous.get(id) === e.value;
  }
}
