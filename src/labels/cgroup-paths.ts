/**
 * cgroup id -> cgroup path, through a bounded LRU cache. A miss costs one
 * open_by_handle_at(2) in the addon; a cgroup that no longer exists is
 * remembered as such so it is not looked up on every scrape.
 */
import { LRUCache } from 'lru-cache';
import { native } from '../native/addon';
import { CacheStats } from '../health/cache-stats';

/** undefined from the cache means "not cached"; null means "cgroup is gone". */
type Entry = { path: string | null };

export class CgroupPaths {
  readonly stats: CacheStats;
  private readonly cache: LRUCache<bigint, Entry>;

  constructor(
    private readonly mountDir: string,
    capacity: number,
    private readonly lookup: (mountDir: string, id: bigint) => string | null = (m, id) => native().cgroupPath(m, id),
  ) {
    this.stats = new CacheStats('cgroup_path', capacity);
    this.cache = new LRUCache<bigint, Entry>({
      max: capacity,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.stats.evictions++;
      },
    });
  }

  /** Path relative to the cgroup2 mount ("/a/b.scope"), or null if the cgroup is gone. */
  path(id: bigint): string | null {
    const hit = this.cache.get(id);
    if (hit) {
      this.stats.hits++;
      return hit.path;
    }
    this.stats.misses++;
    const path = this.lookup(this.mountDir, id);
    this.cache.set(id, { path });
    this.stats.entries = this.cache.size;
    return path;
  }

  /** Drops a removed cgroup's entry once nothing refers to it any more. */
  forget(id: bigint): void {
    this.cache.delete(id);
    this.stats.entries = this.cache.size;
  }

  get size(): number {
    return this.cache.size;
  }
}
