/**
 * tally's report on itself: hooks and how they attached, kernel map fill and
 * overflow, user-space caches, and every place an event could be dropped.
 */
import { Registry } from 'prom-client';
import * as catalog from '../metrics/catalog';
import { defineMetric, Sample } from '../metrics/define';
import { CacheStats } from '../util/cache-stats';
import { KernelCounters } from '../collectors/kernel-counters';
import { COUNTER_MAP, LABEL_SET_MAP } from '../collectors/shared-maps';
import { native, NativeProgramInfo } from '../native/addon';
import * as os from 'node:os';
import { HookResult } from '../bpf/loader';
import { FAST_SLOTS } from '../bpf/layout';
import { CgroupRemovals, CGROUP_EVENTS_OBJECT } from '../labels/cgroup-removals';
import { PodWatcher } from '../labels/kube/pod-watcher';
import { PeerSource } from '../peers/peer-source';
import { VERSION } from '../util/version';
import { PolicyStatus } from '../engine/policy-manager';
import { POLICY_STATES } from '../policy/model';
import { TracepointChains } from '../engine/tracepoint-chains';

export interface HealthSources {
  counters: KernelCounters;
  /** Every counting object and its hooks, as they are now. */
  objects: () => Array<[string, HookResult[]]>;
  policies: () => PolicyStatus[];
  /** Failed scans of each policy directory so far. */
  policyScanFailures: () => Array<{ dir: string; failures: number }>;
  removals: CgroupRemovals;
  pods?: PodWatcher;
  peers?: PeerSource;
  caches: CacheStats[];
  binaryTruncated: () => number;
  /** True while the kernel's BPF run-time statistics are on. */
  bpfStats: boolean;
  /** Scrapes answered so far, by format. */
  scrapes: () => Record<string, number>;
  /** --bpf-pin-dir: what the agent found pinned at start; undefined without the flag. */
  restart?: { outcome: string };
  /** The tracepoint chains (engine/tracepoint-chains.ts), when hooks run in them. */
  chains?: () => Pick<TracepointChains, 'attachments' | 'hooks' | 'stats'> | undefined;
}

export function registerHealthMetrics(registry: Registry, src: HealthSources): void {
  const { counters: tcp, removals, caches, binaryTruncated } = src;
  const one = (labels: Record<string, string>, value: number): Sample => ({ labels, value });
  const objects = (): Array<[string, HookResult[]]> => [
    ...src.objects(),
    [CGROUP_EVENTS_OBJECT, removals.loaded?.hooks ?? [{ hook: 'cgroup_rmdir', refused: [] }]],
  ];

  defineMetric(registry, catalog.BUILD_INFO, () => [one({ version: VERSION, libbpf_version: native().libbpfVersion }, 1)]);

  defineMetric(registry, catalog.HOOK_ATTACHED, () =>
    objects().flatMap(([object, hooks]) =>
      hooks.map((h) => one({ object, hook: h.hook, attach_type: h.attachType ?? 'none', program: h.program ?? 'none' }, h.program ? 1 : 0)),
    ),
  );
  defineMetric(registry, catalog.HOOK_ATTACHMENTS, () => {
    const byPoint = new Map<string, number>();
    for (const [, hooks] of objects()) for (const h of hooks) for (const p of h.attachPoints ?? []) byPoint.set(p, (byPoint.get(p) ?? 0) + 1);
    for (const [p, n] of src.chains?.()?.attachments() ?? []) byPoint.set(p, (byPoint.get(p) ?? 0) + n);
    return [...byPoint].sort(([a], [b]) => a.localeCompare(b)).map(([hook, n]) => one({ hook }, n));
  });
  defineMetric(registry, catalog.CHAINED_HOOKS, () =>
    [...(src.chains?.()?.hooks() ?? [])].sort(([a], [b]) => a.localeCompare(b)).map(([hook, n]) => one({ hook }, n)),
  );
  defineMetric(registry, catalog.HOOK_REFUSED, () =>
    objects().flatMap(([object, hooks]) =>
      hooks.flatMap((h) => h.refused.map((r) => one({ object, hook: h.hook, attach_type: r.attachType, stage: r.stage, errno: r.code }, 1))),
    ),
  );

  const runs = (): Array<{ labels: Record<string, string>; info: NativeProgramInfo }> =>
    objects().flatMap(([object, hooks]) =>
      hooks.flatMap((h) => {
        // A policy replaced between objects() and here has closed its object.
        let info: NativeProgramInfo | null | undefined;
        try {
          info = h.programInfo?.();
        } catch {
          info = undefined;
        }
        return info && h.program ? [{ labels: { object, hook: h.hook, program: h.program }, info }] : [];
      }),
    ).concat(
      // A chain is timed whole, from its dispatcher: its hooks' programs run inside that one run.
      (src.chains?.()?.stats() ?? []).flatMap((c) => (c.info ? [{ labels: { object: c.chain === 1 ? 'chain' : `chain-${c.chain}`, hook: c.point, program: 'tally_dispatch' }, info: c.info }] : [])),
    );
  // The kernel counts recursion misses whether or not its run-time statistics are on.
  defineMetric(registry, catalog.PROGRAM_MISSES, () => runs().map((r) => one(r.labels, r.info.recursionMisses)));
  if (src.bpfStats) {
    defineMetric(registry, catalog.PROGRAM_RUN_SECONDS, () => runs().map((r) => one(r.labels, r.info.runTimeNs / 1e9)));
    defineMetric(registry, catalog.PROGRAM_RUNS, () => runs().map((r) => one(r.labels, r.info.runCount)));
  }
  // Counted once: os.cpus() parses /proc/cpuinfo, about 0.8 ms of every scrape, for a number that does not change.
  const hostCpus = os.cpus().length;
  defineMetric(registry, catalog.HOST_CPUS, () => [one({}, hostCpus)]);

  // One series per policy and state, 1 for the state it is in (as kube-state-metrics does for phases).
  defineMetric(registry, catalog.POLICY_STATE, () =>
    src.policies().flatMap((p) => POLICY_STATES.map((state) => one({ policy: p.policy, file: p.file, state }, p.state === state ? 1 : 0))),
  );
  defineMetric(registry, catalog.POLICY_SCAN_FAILURES, () => src.policyScanFailures().map((d) => one({ dir: d.dir }, d.failures)));

  const map = { map: COUNTER_MAP };
  const labelSetMap = { map: LABEL_SET_MAP };
  defineMetric(registry, catalog.MAP_ENTRIES, async () => [
    one(map, (await tcp.kernelStats()).entries),
    one(labelSetMap, tcp.core.mappedCgroups),
  ]);
  defineMetric(registry, catalog.MAP_CAPACITY, () => [one(map, tcp.counterMapCapacity), one(labelSetMap, tcp.labelSetCapacity)]);
  // Not a map_entries series: a full promoted-counter array is no trouble (keys count in the hash), so no alert on it.
  defineMetric(registry, catalog.PROMOTED_COUNTERS, () => [one({}, tcp.store.promotedCount)]);
  defineMetric(registry, catalog.PROMOTED_CAPACITY, () => [one({}, FAST_SLOTS)]);
  defineMetric(registry, catalog.MAP_OVERFLOW_UPDATES, async () => [one(map, Number((await tcp.kernelStats()).mapFull))]);
  defineMetric(registry, catalog.MAP_LOST_UPDATES, async () => [one(map, Number((await tcp.kernelStats()).lost))]);
  defineMetric(registry, catalog.SCRAPES, () => Object.entries(src.scrapes()).map(([format, n]) => one({ format }, n)));
  defineMetric(registry, catalog.RESTART_STATE, () => [one({ outcome: src.restart?.outcome ?? 'off' }, 1)]);
  defineMetric(registry, catalog.SCRAPE_READ_SECONDS, async () => [one({}, (await tcp.kernelStats()).readSeconds)]);

  defineMetric(registry, catalog.MAP_DELETED_ENTRIES, () => [one(map, tcp.core.counts.deletedEntries)]);
  defineMetric(registry, catalog.MALLOC_BYTES, () => {
    const m = native().mallocStats();
    return [one({ state: 'in_use' }, m.inUse), one({ state: 'free' }, m.free)];
  });
  defineMetric(registry, catalog.SWEEP_FAILURES, () => [one({}, tcp.sweepFailures)]);
  defineMetric(registry, catalog.STALE_LABEL_SETS, () => [one({}, tcp.core.counts.staleLabelSets)]);
  defineMetric(registry, catalog.FOLDED_ENTRIES, () => [one(map, tcp.core.counts.foldedEntries)]);
  defineMetric(registry, catalog.RELABELLED_CGROUPS, () => [one({}, tcp.core.counts.relabelledCgroups)]);
  defineMetric(registry, catalog.NAMESPACE_UNMATCHED_ENTRIES, () => [one(map, tcp.core.counts.unmatchedEntries)]);
  defineMetric(registry, catalog.LABEL_SETS, () => [one({}, tcp.core.labelSets.size)]);
  defineMetric(registry, catalog.LABEL_SET_MAP_FULL, () => [one({}, tcp.core.counts.unmappedMapFull)]);
  defineMetric(registry, catalog.PENDING_CGROUPS, async () => [one({}, (await tcp.snapshot()).pendingCgroups)]);
  defineMetric(registry, catalog.CGROUP_REMOVALS, () => [
    one({ source: 'kernel' }, removals.reported),
    one({ source: 'rescan' }, removals.rescanned),
  ]);
  defineMetric(registry, catalog.CGROUP_REMOVAL_DROPS, () => [one({}, Number(removals.kernelDrops()))]);

  if (src.peers) {
    const peers = src.peers;
    defineMetric(registry, catalog.PEER_TABLE_ENTRIES, () => [one({}, peers.map.entries().length)]);
    defineMetric(registry, catalog.PEER_TABLE_WRITES, () => [one({}, peers.writes)]);
    defineMetric(registry, catalog.PEER_TABLE_FAILURES, () => [one({}, peers.failures)]);
    defineMetric(registry, catalog.PEER_CIDRS_FILE_REFUSALS, () => [one({}, peers.fileRefusals)]);
    defineMetric(registry, catalog.PEER_ENDPOINT_SLICES, () => (peers.endpointSlices ? [one({}, peers.endpointSlices.size)] : []));
    defineMetric(registry, catalog.PEER_WATCH_ERRORS, () =>
      peers.endpointSlices ? Object.entries(peers.endpointSlices.stats.errors).map(([reason, n]) => one({ reason }, n)) : [],
    );
  }
  if (src.pods) {
    const pods = src.pods;
    defineMetric(registry, catalog.KUBE_WATCH_EVENTS, () => Object.entries(pods.stats.events).map(([type, n]) => one({ type }, n)));
    defineMetric(registry, catalog.KUBE_WATCH_ERRORS, () => Object.entries(pods.stats.errors).map(([reason, n]) => one({ reason }, n)));
    defineMetric(registry, catalog.KUBE_REQUESTS, () => pods.requests.samples());
    defineMetric(registry, catalog.KUBE_LIST_CALLS, () => [one({}, pods.stats.lists)]);
    defineMetric(registry, catalog.KUBE_SYNC_AGE, () => (pods.stats.lastSync ? [one({}, (Date.now() - pods.stats.lastSync) / 1000)] : []));
    defineMetric(registry, catalog.KUBE_PODS, () => [one({}, pods.size)]);
  }

  // After this scrape's read, which is when the limiters decide.
  defineMetric(registry, catalog.METRIC_SERIES, async () => (await tcp.snapshot(), tcp.limiters.map((l) => one({ metric: l.metric }, l.series))));
  defineMetric(registry, catalog.METRIC_SERIES_LIMIT, () => tcp.limiters.map((l) => one({ metric: l.metric }, l.limit)));
  defineMetric(registry, catalog.METRIC_KERNEL_IDS, () => tcp.limiters.flatMap((l) => tcp.idsOf(l.metric).map((id) => one({ metric: l.metric, id: String(id) }, 1))));
  defineMetric(registry, catalog.METRIC_OVERFLOWED_LABEL_SETS, async () => (await tcp.snapshot(), tcp.limiters.map((l) => one({ metric: l.metric }, l.overflowedLabelSets))));
  const perLevel = (f: (x: { series: number; labelSets: number }) => number) => async () =>
    (await tcp.snapshot(), tcp.limiters.flatMap((l) => l.levels().map((x) => one({ metric: l.metric, level: x.level }, f(x)))));
  defineMetric(registry, catalog.METRIC_ROLLED_UP_SERIES, perLevel((x) => x.series));
  defineMetric(registry, catalog.METRIC_ROLLED_UP_LABEL_SETS, perLevel((x) => x.labelSets));
  defineMetric(registry, catalog.METRIC_SERIES_CREATED, async () => (await tcp.snapshot(), tcp.limiters.map((l) => one({ metric: l.metric }, l.churn.createdTotal))));
  defineMetric(registry, catalog.METRIC_SERIES_RETIRED, async () => (await tcp.snapshot(), tcp.limiters.map((l) => one({ metric: l.metric }, l.churn.retiredTotal))));

  // Caches are used while a read is labelled: report them after it.
  const perCache = (f: (c: CacheStats) => number) => async () => (await tcp.snapshot(), caches.map((c) => one({ cache: c.name }, f(c))));
  defineMetric(registry, catalog.CACHE_ENTRIES, perCache((c) => c.entries));
  defineMetric(registry, catalog.CACHE_CAPACITY, perCache((c) => c.capacity));
  defineMetric(registry, catalog.CACHE_HITS, perCache((c) => c.hits));
  defineMetric(registry, catalog.CACHE_MISSES, perCache((c) => c.misses));
  defineMetric(registry, catalog.CACHE_EVICTIONS, perCache((c) => c.evictions));

  defineMetric(registry, catalog.BINARY_EVENT_DROPS, async () => [
    one({ stage: 'kernel' }, Number((await tcp.kernelStats()).binaryEventDrops)),
    one({ stage: 'userspace' }, tcp.ringStats().dropped),
  ]);
  defineMetric(registry, catalog.BINARY_PATHS_TRUNCATED, () => [one({}, binaryTruncated())]);
}
