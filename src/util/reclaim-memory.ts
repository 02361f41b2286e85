/**
 * Gives memory back once a burst of policy changes is over, or after a
 * sweep that retired many label sets (a churn of cgroups).
 *
 * What a policy load leaves behind is mostly garbage V8 has not collected:
 * the Buffers of file reads, map batches and HTTP bodies are C heap
 * (`nodejs_external_memory_bytes`), and V8 collects them only when its own
 * heap fills or external memory has grown by tens of MiB since its last full
 * collection. An idle agent never gets there, so after 200 policies were
 * loaded and removed it kept 8 MiB of dead Buffers (external memory 4.8 MiB
 * idle, 12.3 MiB after removal) and RSS stayed 19 MiB up.
 *
 * So, RECLAIM_AFTER_MS after the last change: two full collections (node
 * runs with --expose-gc, src/cli/heap.ts), then malloc_trim to return the
 * freed C heap to the kernel. The first frees the dead objects; the second
 * finds their pages empty and gives them back, where one alone left V8's old
 * space 3.5 MiB up for V8's memory reducer to release 10-15 s later (200
 * policies loaded and removed: RSS 78 MiB idle, 88 MiB 6 s after removal with
 * one, 84 MiB with two, BENCHMARKS.md). A full collection of this heap takes
 * a few ms (tens at 100k series); it happens once per burst of changes or
 * churn, never per scrape.
 */
import { native } from '../native/addon';

export const RECLAIM_AFTER_MS = 1000;

type Gc = (options?: { type: 'major'; execution: 'sync' }) => void;

export class MemoryReclaimer {
  private timer: NodeJS.Timeout | undefined;
  /** Reclaims so far: for tests and the debug log. */
  runs = 0;

  constructor(
    private readonly afterMs = RECLAIM_AFTER_MS,
    private readonly gc: Gc | undefined = (globalThis as { gc?: Gc }).gc,
  ) {}

  /** Asks for a reclaim once nothing else has asked for `afterMs`. */
  request(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reclaim(), this.afterMs);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  /** Collects and trims now. */
  reclaim(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.gc?.();
    this.gc?.();
    native().mallocTrim();
    this.runs++;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
