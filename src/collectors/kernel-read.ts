/**
 * One read of the kernel's counters: the maps dumped in one pass, binary
 * paths awaited, and the counting core's series after the series limit.
 * Every metric of a scrape shares it (KernelCounters' ScrapeMemo).
 */
import { KernelStat } from '../bpf/layout';
import { NativeCounterStore } from '../bpf/native-counter-store';
import { LimitWarnings } from '../cardinality/cardinality-report';
import { CountingCore } from '../cardinality/counting-core';
import { BinaryAnnouncements } from './binary-announcements';
import { SeriesValues } from './series-exposition';

export interface Snapshot {
  /** Per metric name: its series after the series limit. */
  series: Map<string, SeriesValues[]>;
  entries: number;
  readSeconds: number;
  stats: bigint[];
  /** cgroups whose counts this read held back, their labels not final yet. */
  pendingCgroups: number;
  kernelEntries: Map<string, number>;
}

export interface KernelStats {
  mapFull: bigint;
  lost: bigint;
  binaryEventDrops: bigint;
  pathTruncated: bigint;
  entries: number;
  readSeconds: number;
}

export async function readSnapshot(store: NativeCounterStore, core: CountingCore, announcements: BinaryAnnouncements | undefined, warnings: LimitWarnings): Promise<Snapshot> {
  const started = process.hrtime.bigint();
  store.beginPass();
  const entries = store.dump();
  const overflow = store.dumpOverflow();
  const stats = store.stats();
  // Only the syscalls: what the kernel side costs a scrape (tally_bpf_map_read_seconds).
  const readSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  await announcements?.awaitPaths(entries);
  const { series, pendingCgroups, kernelEntries } = core.read(entries, overflow, Date.now());
  for (const f of core.families.all()) warnings.check(f, series.get(f.name) ?? []);
  return { series, entries: entries.length, readSeconds, stats, pendingCgroups, kernelEntries };
}

/** tally_stats summed over CPUs, by what each slot counts. */
export function kernelStatsOf(s: Snapshot): KernelStats {
  const at = (i: number): bigint => s.stats[i] ?? 0n;
  return {
    mapFull: at(KernelStat.mapFull),
    lost: at(KernelStat.lost),
    binaryEventDrops: at(KernelStat.binaryEventDrops),
    pathTruncated: at(KernelStat.pathTruncated),
    entries: s.entries,
    readSeconds: s.readSeconds,
  };
}
