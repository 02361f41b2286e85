/**
 * One read shared by all metrics of a scrape: the first collect() reads the
 * kernel, the others reuse it. The HTTP handler invalidates it before each
 * scrape; maxAgeMs bounds staleness for any other caller.
 *
 * At most one read runs, and at most one waits behind it. A caller after
 * invalidate() needs a read that starts after its call, so while a read runs
 * it gets the single follow-up read that starts when the running one ends,
 * shared with every other caller until then. Without that, each scrape
 * started a read of its own: with 100k new cgroups a read waits seconds for
 * their paths, and a scrape a second queued dozens of reads, each holding a
 * dump of the whole counter map, until the heap ran out (BENCHMARKS.md,
 * "Agent memory").
 */
export class ScrapeMemo<T> {
  private current?: { at: number; data: Promise<T>; running: boolean };
  private next?: Promise<T>;
  private stale = false;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs = 200,
  ) {}

  get(): Promise<T> {
    const c = this.current;
    if (c && !this.stale && (c.running || Date.now() - c.at <= this.maxAgeMs)) return c.data;
    if (!c?.running) return this.start();
    this.next ??= c.data.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  /** The next get() reads afresh: the running read, if any, began too early for it. */
  invalidate(): void {
    this.stale = true;
  }

  /** How many reads run or wait now (0 to 2): for tests and health. */
  get pending(): number {
    return (this.current?.running ? 1 : 0) + (this.next ? 1 : 0);
  }

  private start(): Promise<T> {
    this.next = undefined;
    this.stale = false;
    const entry = { at: Date.now(), data: undefined as unknown as Promise<T>, running: true };
    const done = (): void => {
      entry.running = false;
    };
    entry.data = this.read();
    entry.data.then(done, done);
    this.current = entry;
    return entry.data;
  }
}
