/**
 * A user-space cache with a name and a capacity, reported as the
 * tally_cache_* metrics (src/health/) so its fill and evictions show.
 *
 * Two ways to stay within the capacity:
 * - `all`: forget everything at once when full. For memos of what a read
 *   meets again and again (labels of series), rebuilt cheaply by the next
 *   read: no bookkeeping on a hit.
 * - `oldest`: evict the entry set longest ago. For memories that matter in
 *   the order they were made (the labels of removed cgroups, oldest first).
 */
import { CacheStats } from '../util/cache-stats';

export type Eviction = 'all' | 'oldest';

export class BoundedCache<K, V> {
  readonly stats: CacheStats;
  private readonly map = new Map<K, V>();

  constructor(
    name: string,
    capacity: number,
    private readonly eviction: Eviction,
  ) {
    this.stats = new CacheStats(name, capacity);
  }

  /** A lookup, counted as a hit or a miss. */
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) this.stats.misses++;
    else this.stats.hits++;
    return v;
  }

  /** Looks without counting: for bookkeeping, not for answering a lookup. */
  peek(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.eviction === 'oldest') {
      this.map.delete(key); // set again: the newest
      this.map.set(key, value);
      for (const oldest of this.map.keys()) {
        if (this.map.size <= this.stats.capacity) break;
        this.map.delete(oldest);
        this.stats.evictions++;
      }
    } else {
      if (!this.map.has(key) && this.map.size >= this.stats.capacity) {
        this.stats.evictions += this.map.size;
        this.map.clear();
      }
      this.map.set(key, value);
    }
    this.stats.entries = this.map.size;
  }

  delete(key: K): boolean {
    const had = this.map.delete(key);
    this.stats.entries = this.map.size;
    return had;
  }

  /**
   * For `oldest` eviction: evicts entries from the oldest on for as long as
   * `expired` holds of them, and stops at the first that is not. Returns how
   * many went.
   */
  evictOldestWhile(expired: (value: V) => boolean): number {
    let n = 0;
    for (const [key, value] of this.map) {
      if (!expired(value)) break;
      this.map.delete(key);
      n++;
    }
    this.stats.evictions += n;
    this.stats.entries = this.map.size;
    return n;
  }

  /** Forgets everything because it no longer holds (not an eviction). */
  clear(): void {
    this.map.clear();
    this.stats.entries = 0;
  }

  get size(): number {
    return this.map.size;
  }
}
