/**
 * What a series limiter keeps track of so that finer roll-up levels leave
 * room where coarser ones need it (series-limiter.ts):
 * - the coarsest keys (usually namespaces) of the label sets it knows, and
 *   how many of them have no coarsest series yet: a place is kept for each;
 * - the keys of finer levels that a label set passed over on its way to a
 *   coarser level: such a key gets no series later, or a sum by its labels
 *   would be split between a series that has them and one that has not.
 */
export class RollupRoom {
  private readonly coarseMembers = new Map<string, number>();
  private readonly passedOver = new Map<string, number>();
  /** Coarsest keys known with no coarsest series: finer levels leave a place for each. */
  uncovered = 0;

  constructor(private readonly hasCoarseSeries: (key: string) => boolean) {}

  /** A label set is known, with this coarsest key. */
  addCoarse(key: string): void {
    const n = this.coarseMembers.get(key) ?? 0;
    this.coarseMembers.set(key, n + 1);
    if (n === 0 && !this.hasCoarseSeries(key)) this.uncovered++;
  }

  /** A label set with this coarsest key is forgotten. */
  removeCoarse(key: string): void {
    const n = this.coarseMembers.get(key)! - 1;
    if (n > 0) {
      this.coarseMembers.set(key, n);
      return;
    }
    this.coarseMembers.delete(key);
    if (!this.hasCoarseSeries(key)) this.uncovered--;
  }

  /** A coarsest series begins (after it is registered) or ends (after it is removed). */
  coarseSeries(key: string, begins: boolean): void {
    if ((this.coarseMembers.get(key) ?? 0) > 0) this.uncovered += begins ? -1 : 1;
  }

  isPassedOver(key: string): boolean {
    return this.passedOver.has(key);
  }

  pass(keys: readonly string[], by: 1 | -1): void {
    for (const k of keys) {
      const n = (this.passedOver.get(k) ?? 0) + by;
      if (n > 0) this.passedOver.set(k, n);
      else this.passedOver.delete(k);
    }
  }
}
