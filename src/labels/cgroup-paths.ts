/**
 * cgroup id -> cgroup path, through a bounded LRU cache. A miss costs one
 * open_by_handle_at(2) in the addon; a cgroup that no longer exists is
 * remembered as such so it is not looked up on every scrape. A cgroup removed
 * before its first lookup is found where the kernel said it was at its
 * removal (CgroupRemovals), so a short-lived pod's counts keep its labels.
 */
import { LRUCache } from 'lru-cache';
import { native } from '../native/addon';
import { CacheStats } from '../util/cache-stats';

/** undefined from the cache means "not cached"; null means "cgroup is gone". */
type Entry = { path: string | null };

export class CgroupPaths {
  readonly stats: CacheStats;
  private readonly cache: LRUCache<bigint, Entry>;

  /** Where a removed cgroup was (null: removed, place unknown; undefined: no removal known). Set once removals are tracked. */
  removedPath?: (id: bigint) => string | null | undefined;

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
      // The removal may be reported after the lookup that found the cgroup gone.
      return hit.path ?? this.removedPath?.(id) ?? null;
    }
    this.stats.misses++;
    const path = this.lookup(this.mountDir, id);
    this.cache.set(id, { path });
    this.stats.entries = this.cache.size;
    return path ?? this.removedPath?.(id) ?? null;
  }

  /**
   * For a cgroup path() found gone: its removal has not been reported yet,
   * so where it was may still come (the report travels through a ring
   * buffer and can trail the lookup).
   */
  removalUnreported(id: bigint): boolean {
    return this.removedPath !== undefined && this.removedPath(id) === undefined;
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
