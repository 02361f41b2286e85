/**
 * A labels object's encoding (text or protobuf), kept on the object itself
 * under a symbol of its own, as long as the object lives.
 *
 * Not in a WeakMap: V8 never shrinks a WeakMap's table once its keys die,
 * so one keyed by label objects grew to the most it ever held at once (the
 * series of 10,000 cgroups churned through, or each scrape's short-lived
 * label objects before a collection) and kept that table for good: 8 MiB of
 * the agent's heap after one churn round of 10,000 cgroups (a heap
 * snapshot's diff, BENCHMARKS.md "Agent memory"). A property dies with its
 * object and costs one slot.
 *
 * Not enumerable, so nothing that reads labels (Object.entries, for...in,
 * spreads into new label objects) ever sees it. A frozen object cannot take
 * a property: the few there are (the overflow series' labels) go to a
 * WeakMap, which they never leave.
 */
export class RenderedLabels {
  private readonly key: symbol;
  private readonly frozen = new WeakMap<object, Buffer>();

  constructor(what: string) {
    this.key = Symbol(what);
  }

  get(labels: object): Buffer | undefined {
    return (labels as Record<symbol, Buffer | undefined>)[this.key] ?? this.frozen.get(labels);
  }

  set(labels: object, encoded: Buffer): void {
    if (Object.isExtensible(labels)) Object.defineProperty(labels, this.key, { value: encoded, enumerable: false, writable: true, configurable: true });
    else this.frozen.set(labels, encoded);
  }
}
