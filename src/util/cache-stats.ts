/** Counters every user-space cache keeps, exported as tally_cache_* metrics. */
export class CacheStats {
  hits = 0;
  misses = 0;
  evictions = 0;
  entries = 0;

  constructor(
    readonly name: string,
    readonly capacity: number,
  ) {}
}
