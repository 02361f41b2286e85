/**
 * binary id -> executable path. The kernel announces each new id once on a
 * ring buffer (bpf/binary.bpf.h); this table remembers the answers, bounded.
 */
import { LRUCache } from 'lru-cache';
import { BINARY_NONE, BinaryEvent } from '../bpf/layout';
import { CacheStats } from '../util/cache-stats';

export class BinaryPaths {
  readonly stats: CacheStats;
  /** Paths the kernel cut short at its walk limits. */
  truncated = 0;
  private readonly cache: LRUCache<bigint, string>;

  constructor(capacity: number) {
    this.stats = new CacheStats('binary_path', capacity);
    this.cache = new LRUCache<bigint, string>({
      max: capacity,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.stats.evictions++;
      },
    });
  }

  learn(ev: BinaryEvent): void {
    if (ev.truncated) this.truncated++;
    this.cache.set(ev.binaryId, ev.path);
    this.stats.entries = this.cache.size;
  }

  /** Whether the id has been announced; not counted as a lookup. */
  has(id: bigint): boolean {
    return this.cache.has(id);
  }

  /** The path, or undefined for "no executable" and for ids not (yet) announced. */
  path(id: bigint): string | undefined {
    if (id === 0n || id === BINARY_NONE) return undefined;
    const p = this.cache.get(id);
    if (p === undefined) this.stats.misses++;
    else this.stats.hits++;
    return p;
  }
}
