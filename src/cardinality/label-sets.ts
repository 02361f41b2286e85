/**
 * Label sets interned as small ids for the kernel (tally_cgroup_label_sets):
 * every cgroup whose labels are the same under the filter maps to one id, so
 * they share one counter entry. Ids are reused after release.
 */
export interface LabelSet {
  key: string;
  labels: Record<string, string>;
  /** The same as key: a label set is its own entry labels (key-labels.ts), with no object made per read. */
  setKey: string;
}

export class LabelSets {
  private readonly byKey = new Map<string, number>();
  private readonly byId = new Map<number, LabelSet>();
  private readonly free: number[] = [];
  private next = 1; // 0 means "no label set" in the kernel

  idFor(key: string, labels: Record<string, string>): number {
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.free.pop() ?? this.next++;
      this.byKey.set(key, id);
      this.byId.set(id, { key, labels, setKey: key });
    }
    return id;
  }

  get(id: number): LabelSet | undefined {
    return this.byId.get(id);
  }

  idOf(key: string): number | undefined {
    return this.byKey.get(key);
  }

  release(id: number): void {
    const ls = this.byId.get(id);
    if (!ls) return;
    this.byId.delete(id);
    this.byKey.delete(ls.key);
    this.free.push(id);
  }

  isReleased(id: number): boolean {
    return !this.byId.has(id);
  }

  entries(): IterableIterator<[number, LabelSet]> {
    return this.byId.entries();
  }

  get size(): number {
    return this.byId.size;
  }
}
