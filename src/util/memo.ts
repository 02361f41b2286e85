/**
 * One read shared by all metrics of a scrape: the first collect() reads the
 * kernel, the others reuse it. The HTTP handler invalidates it before each
 * scrape; maxAgeMs bounds staleness for any other caller.
 */
export class ScrapeMemo<T> {
  private value?: { at: number; data: Promise<T> };

  constructor(
    private readonly read: () => Promise<T>,
    private readonly maxAgeMs = 200,
  ) {}

  get(): Promise<T> {
    const now = Date.now();
    if (!this.value || now - this.value.at > this.maxAgeMs) {
      this.value = { at: now, data: this.read() };
    }
    return this.value.data;
  }

  invalidate(): void {
    this.value = undefined;
  }
}
