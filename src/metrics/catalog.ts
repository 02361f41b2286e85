/**
 * Every metric tally exposes, declared once. Collectors create their
 * prom-client metrics from these entries, and docs/metrics.md is generated
 * from this list (npm run docs), so the documentation cannot drift.
 */

export type MetricType = 'counter' | 'gauge';

export interface MetricSpec {
  name: string;
  type: MetricType;
  help: string;
  /** Fixed label names. */
  labels: readonly string[];
  /** True when the series also carry the label filter's labels (namespace, workload, pod, binary). */
  filterLabels?: boolean;
  /** Exposed only when the agent runs with that source (Kubernetes), export (OTLP) or the kernel's BPF statistics (--bpf-stats on). */
  onlyWith?: 'kubernetes' | 'otlp' | 'bpf-stats' | 'web-config';
}

export const BUILD_INFO: MetricSpec = {
  name: 'tally_build_info',
  type: 'gauge',
  help: 'Always 1; labels carry the tally version and the vendored libbpf version.',
  labels: ['version', 'libbpf_version'],
};

export const HOOK_ATTACHED: MetricSpec = {
  name: 'tally_bpf_hook_attached',
  type: 'gauge',
  help: '1 when the hook runs a program, 0 when every candidate attach type was refused (see the log for the reasons).',
  labels: ['object', 'hook', 'attach_type', 'program'],
};

export const HOOK_ATTACHMENTS: MetricSpec = {
  name: 'tally_bpf_hook_attachments',
  type: 'gauge',
  help: 'Programs tally has attached at each point of the kernel or of a binary (tracepoint:syscalls:sys_exit_write, raw_tp:sys_exit, kprobe:tcp_sendmsg, uprobe:PATH:FUNC, usdt:PATH:PROVIDER:NAME), whatever policies they serve. The kernel allows 64 perf-event programs per tracepoint for every tool on the host together; at a classic tracepoint tally attaches its first 8 hooks alone, then one dispatcher per 32 hooks (tally_bpf_chained_hooks).',
  labels: ['hook'],
};

export const CHAINED_HOOKS: MetricSpec = {
  name: 'tally_bpf_chained_hooks',
  type: 'gauge',
  help: 'Hook programs that run in a chain behind one tally attachment of a classic tracepoint, by tracepoint: past the first 8 hooks there, which attach alone, a dispatcher tail-calls up to 32 hooks of any policies in turn, so they take 1 of the 64 perf-event programs the kernel allows per tracepoint, not one each. Their run time is the dispatcher\'s (tally_bpf_program_run_seconds_total{object="chain"}).',
  labels: ['hook'],
};

export const HOOK_REFUSED: MetricSpec = {
  name: 'tally_bpf_attach_refusals',
  type: 'gauge',
  help: 'Attach types the kernel refused for a hook at startup, with the errno it gave.',
  labels: ['object', 'hook', 'attach_type', 'stage', 'errno'],
};

export const MAP_ENTRIES: MetricSpec = {
  name: 'tally_bpf_map_entries',
  type: 'gauge',
  help: 'Entries in a BPF map at the last read.',
  labels: ['map'],
};

export const MAP_CAPACITY: MetricSpec = {
  name: 'tally_bpf_map_capacity',
  type: 'gauge',
  help: 'Maximum entries of a BPF map (max_entries).',
  labels: ['map'],
};

export const PROMOTED_COUNTERS: MetricSpec = {
  name: 'tally_bpf_promoted_counters',
  type: 'gauge',
  help: 'Counter keys the kernel adds to in its promoted-counter array (inlined array loads) instead of calling into its hash map; keys that find no free position keep counting in the hash.',
  labels: [],
};

export const PROMOTED_CAPACITY: MetricSpec = {
  name: 'tally_bpf_promoted_counters_capacity',
  type: 'gauge',
  help: 'Positions of the promoted-counter array.',
  labels: [],
};

export const MAP_OVERFLOW_UPDATES: MetricSpec = {
  name: 'tally_bpf_map_overflow_updates_total',
  type: 'counter',
  help: 'Counter updates that found the map full and were added to its reserved overflow series instead.',
  labels: ['map'],
};

export const MAP_LOST_UPDATES: MetricSpec = {
  name: 'tally_bpf_map_lost_updates_total',
  type: 'counter',
  help: 'Counter updates lost in the kernel because neither their key nor the overflow key could be written. Should stay 0.',
  labels: ['map'],
};

export const CACHE_ENTRIES: MetricSpec = {
  name: 'tally_cache_entries',
  type: 'gauge',
  help: 'Entries in a user-space cache.',
  labels: ['cache'],
};

export const CACHE_CAPACITY: MetricSpec = {
  name: 'tally_cache_capacity',
  type: 'gauge',
  help: 'Maximum entries of a user-space cache.',
  labels: ['cache'],
};

export const CACHE_HITS: MetricSpec = {
  name: 'tally_cache_hits_total',
  type: 'counter',
  help: 'Lookups answered by a user-space cache (kube_owners: also lookups that joined the same request under way).',
  labels: ['cache'],
};

export const CACHE_MISSES: MetricSpec = {
  name: 'tally_cache_misses_total',
  type: 'counter',
  help: 'Lookups a user-space cache could not answer (cgroup_path: resolved by a syscall; binary_path: id not announced yet; kube_owners: a ReplicaSet or Job asked of the API server; cgroup_labels, removed_cgroup_labels: asked of the labeler; series_labels_binary, series_labels_extra: labels built anew).',
  labels: ['cache'],
};

export const CACHE_EVICTIONS: MetricSpec = {
  name: 'tally_cache_evictions_total',
  type: 'counter',
  help: 'Entries a user-space cache evicted to stay within its capacity (cgroup_labels and series_labels_*: all at once when full; the others: least recent or oldest first).',
  labels: ['cache'],
};

export const BINARY_EVENT_DROPS: MetricSpec = {
  name: 'tally_binary_events_dropped_total',
  type: 'counter',
  help: 'Executable-path announcements lost: stage="kernel" when the ring buffer was full (retried at the next event), stage="userspace" when the agent could not keep up.',
  labels: ['stage'],
};

export const BINARY_PATHS_TRUNCATED: MetricSpec = {
  name: 'tally_binary_paths_truncated_total',
  type: 'counter',
  help: 'Executable paths cut short because they exceeded the in-kernel walk limits (1024 bytes or 48 components).',
  labels: [],
};

export const MAP_DELETED_ENTRIES: MetricSpec = {
  name: 'tally_bpf_map_deleted_entries_total',
  type: 'counter',
  help: 'Kernel map entries of removed cgroups deleted after --metrics-series-ttl; their counts live on in their label set or in the overflow series.',
  labels: ['map'],
};

export const STALE_LABEL_SETS: MetricSpec = {
  name: 'tally_stale_series_total',
  type: 'counter',
  help: 'Series that went away because every cgroup behind their labels was removed (or its pod deleted) more than --metrics-series-ttl ago.',
  labels: [],
};

export const FOLDED_ENTRIES: MetricSpec = {
  name: 'tally_bpf_map_folded_entries_total',
  type: 'counter',
  help: 'Counter entries kept under a raw cgroup id until the cgroup was resolved, then folded into its label set (their counts carry over).',
  labels: ['map'],
};

export const RELABELLED_CGROUPS: MetricSpec = {
  name: 'tally_relabelled_cgroups_total',
  type: 'counter',
  help: 'Live cgroups whose labels changed because a pod label of --metrics-pod-labels was edited: the old series stopped and stays until --metrics-series-ttl, the new one counts from the change.',
  labels: [],
};

export const NAMESPACE_UNMATCHED_ENTRIES: MetricSpec = {
  name: 'tally_namespace_unmatched_entries_total',
  type: 'counter',
  help: 'Counter entries a matchNamespaces hook kept while their cgroup\'s namespace was unknown (a pod\'s first events) that no selector admitted once it was known: deleted, since they never matched.',
  labels: ['map'],
};

export const LABEL_SET_MAP_FULL: MetricSpec = {
  name: 'tally_label_set_map_full_cgroups',
  type: 'gauge',
  help: 'cgroups left under their raw id at the last sweep because tally_cgroup_label_sets was full; still counted, in more kernel entries.',
  labels: [],
};

export const PENDING_CGROUPS: MetricSpec = {
  name: 'tally_cgroups_pending_labels',
  type: 'gauge',
  help: 'cgroups whose counts are held back (still counted in the kernel) until their pod, workload or container (or, for matchNamespaces, namespace) is known; shown once known, or under workload="unresolved-pod" after a grace period with the API server reachable.',
  labels: [],
};

export const POLICY_STATE: MetricSpec = {
  name: 'tally_policy_state',
  type: 'gauge',
  help: 'State of each policy: 1 for the state it is in. ok: all of it runs; partial: some of it cannot work as written here (Tetragon features tally leaves out, namespaces without a pod watch; see the log); error: nothing of it runs (the log and tally policy check say why).',
  labels: ['policy', 'file', 'state'],
};

export const POLICY_SCAN_FAILURES: MetricSpec = {
  name: 'tally_policy_scan_failures_total',
  type: 'counter',
  help: 'Scans of a policy directory that failed for a reason that passes (the directory unreadable, or a file failing with EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR, EBUSY or EIO); each is tried again, after 1 s doubling to 30 s, until one succeeds. What a failed scan could not read keeps running as it was.',
  labels: ['dir'],
};

export const SWEEP_FAILURES: MetricSpec = {
  name: 'tally_sweep_failures_total',
  type: 'counter',
  help: 'Sweeps of the counting core that failed (the log says why); each is tried again at the next tick. While sweeps fail, series of removed cgroups do not retire after --metrics-series-ttl and new cgroups are not folded into their label sets, so the counter map fills. Should stay 0.',
  labels: [],
};

export const LABEL_SETS: MetricSpec = {
  name: 'tally_label_sets',
  type: 'gauge',
  help: 'Label sets the kernel keys counters by: cgroups with the same labels under the filter share one.',
  labels: [],
};

export const CGROUP_REMOVALS: MetricSpec = {
  name: 'tally_cgroup_removals_total',
  type: 'counter',
  help: 'cgroup removals seen, source="kernel" from the cgroup_rmdir tracepoint, source="rescan" found by checking ids when events may have been missed.',
  labels: ['source'],
};

export const CGROUP_REMOVAL_DROPS: MetricSpec = {
  name: 'tally_cgroup_removal_events_dropped_total',
  type: 'counter',
  help: 'cgroup removal events the kernel could not queue; each drop triggers a rescan, so staleness is delayed, not lost.',
  labels: [],
};

export const KUBE_WATCH_EVENTS: MetricSpec = {
  name: 'tally_kube_watch_events_total',
  type: 'counter',
  help: 'Changes to this node\'s pods learnt from the Kubernetes API server, by type: watch events, and what a list (at start, after 410 Gone, at resync) found added, modified or deleted.',
  onlyWith: 'kubernetes',
  labels: ['type'],
};

export const KUBE_WATCH_ERRORS: MetricSpec = {
  name: 'tally_kube_watch_errors_total',
  type: 'counter',
  help: 'Failed pod lists and watches, and watch events or list items skipped as unusable, by reason: connection, http_status, expired (410 Gone: relisted at once), error_event, too_large, invalid_json, bad_event, unknown_type, bad_list, no_object, no_metadata. Failures are retried with backoff; skipped events change nothing.',
  onlyWith: 'kubernetes',
  labels: ['reason'],
};

export const KUBE_REQUESTS: MetricSpec = {
  name: 'tally_kube_requests_total',
  type: 'counter',
  help: 'Requests this agent made to the Kubernetes API server, by verb (list, watch, get), resource (pods; replicasets and jobs: owner lookups, cached) and code (the HTTP status of the answer, or "error" when none came). Multiply by the number of nodes for the cluster\'s cost; docs/api-server-load.md.',
  onlyWith: 'kubernetes',
  labels: ['verb', 'resource', 'code'],
};

export const KUBE_LIST_CALLS: MetricSpec = {
  name: 'tally_kube_list_calls_total',
  type: 'counter',
  help: 'Successful full lists of this node\'s pods (start, 410 Gone, resync).',
  onlyWith: 'kubernetes',
  labels: [],
};

export const KUBE_SYNC_AGE: MetricSpec = {
  name: 'tally_kube_last_sync_age_seconds',
  type: 'gauge',
  help: 'Seconds since the API server last answered a list or sent a watch event; absent before the first.',
  onlyWith: 'kubernetes',
  labels: [],
};

export const KUBE_PODS: MetricSpec = {
  name: 'tally_kube_pods',
  type: 'gauge',
  help: 'Pods of this node known from the API server, deleted ones excluded.',
  onlyWith: 'kubernetes',
  labels: [],
};

export const METRIC_SERIES: MetricSpec = {
  name: 'tally_metric_series',
  type: 'gauge',
  help: 'Label sets with a series of their own, per metric (rolled-up and overflow series not included).',
  labels: ['metric'],
};

export const METRIC_KERNEL_IDS: MetricSpec = {
  name: 'tally_metric_kernel_ids',
  type: 'gauge',
  help: 'The ids a metric is counted under in the kernel (the metric field of tally_counters keys, as bpftool shows them); 1 per id.',
  labels: ['metric', 'id'],
};

export const METRIC_SERIES_LIMIT: MetricSpec = {
  name: 'tally_metric_series_limit',
  type: 'gauge',
  help: 'Series a metric may have, rolled-up ones included, before further label sets fold into its flat overflow series (--metrics-series-limit).',
  labels: ['metric'],
};

export const METRIC_OVERFLOWED_LABEL_SETS: MetricSpec = {
  name: 'tally_metric_overflowed_label_sets',
  type: 'gauge',
  help: 'Distinct label sets beyond the series limit, counted in one of the metric\'s overflow="true" series (rolled up or flat) instead of their own.',
  labels: ['metric'],
};

export const METRIC_ROLLED_UP_SERIES: MetricSpec = {
  name: 'tally_metric_rolled_up_series',
  type: 'gauge',
  help: 'Rolled-up series of a metric per roll-up level (named after the finest label it keeps: binary, workload, namespace; flat is the overflow="true" series with no other label), each holding label sets past the series limit (docs/rollup.md).',
  labels: ['metric', 'level'],
};

export const METRIC_ROLLED_UP_LABEL_SETS: MetricSpec = {
  name: 'tally_metric_rolled_up_label_sets',
  type: 'gauge',
  help: 'Distinct label sets past the series limit per roll-up level they were folded to; level="flat" ones are in the overflow="true" series with no other label.',
  labels: ['metric', 'level'],
};

export const METRIC_SERIES_CREATED: MetricSpec = {
  name: 'tally_metric_series_created_total',
  type: 'counter',
  help: 'Series a metric began: label sets given a series of their own, and rolled-up series made (the flat overflow series aside).',
  labels: ['metric'],
};

export const METRIC_SERIES_RETIRED: MetricSpec = {
  name: 'tally_metric_series_retired_total',
  type: 'counter',
  help: 'Series a metric ended: own series of label sets gone stale, and rolled-up series left with no member for a TTL.',
  labels: ['metric'],
};

export const SCRAPES: MetricSpec = {
  name: 'tally_scrapes_total',
  type: 'counter',
  help: 'Scrapes of /metrics answered, by the format negotiated from the Accept header: prometheus (text 0.0.4), openmetrics, or protobuf (with native histograms).',
  labels: ['format'],
};

export const PEER_TABLE_ENTRIES: MetricSpec = {
  name: 'tally_peer_table_entries',
  type: 'gauge',
  help: "Entries of the kernel's peer table (tally_peers, at most 16384): one per network of --metrics-peer-cidrs, per address of this node, per Service endpoint address from EndpointSlices, and three of tally's own.",
  labels: [],
};

export const PEER_TABLE_WRITES: MetricSpec = {
  name: 'tally_peer_table_writes_total',
  type: 'counter',
  help: 'Writes of the peer table, each in place while programs run: one at start, one per new version of --metrics-peer-cidrs-file, and one per batch of EndpointSlice changes (gathered for a second).',
  labels: [],
};

export const PEER_TABLE_FAILURES: MetricSpec = {
  name: 'tally_peer_table_failures_total',
  type: 'counter',
  help: 'Writes of the peer table that failed (the log says why, e.g. more endpoints than the table holds). The table keeps its entries meanwhile: new endpoints resolve to the class of their network, or unknown, until a write succeeds. Should stay 0.',
  labels: [],
};

export const PEER_CIDRS_FILE_REFUSALS: MetricSpec = {
  name: 'tally_peer_cidrs_file_refusals_total',
  type: 'counter',
  help: 'New versions of --metrics-peer-cidrs-file refused: unreadable, not a regular file, too big, or invalid (the log names FILE:LINE and how to fix it), or more than the peer table holds. The table keeps the classes it had. Should stay 0.',
  labels: [],
};

export const PEER_ENDPOINT_SLICES: MetricSpec = {
  name: 'tally_peer_endpoint_slices',
  type: 'gauge',
  help: 'EndpointSlices the peer table resolves Service endpoints from (only while a peer policy runs in a cluster).',
  labels: [],
};

export const PEER_WATCH_ERRORS: MetricSpec = {
  name: 'tally_peer_watch_errors_total',
  type: 'counter',
  help: 'Failed requests and skipped objects of the EndpointSlice watch, by reason (the same reasons as tally_kube_watch_errors_total). Failed requests are retried with backoff.',
  labels: ['reason'],
};

export const MALLOC_BYTES: MetricSpec = {
  name: 'tally_malloc_bytes',
  type: 'gauge',
  help: "The agent's C heap as glibc accounts it, over all its arenas: state=in_use is allocated now (libbpf's objects, the kernel's BTF while a policy loads, Node's buffers), state=free is freed but kept by glibc for reuse. RSS counts both and V8's heap besides; in_use that grows with each policy load and removal is a leak, free that stays high is fragmentation.",
  labels: ['state'],
};

export const RESTART_STATE: MetricSpec = {
  name: 'tally_restart_state',
  type: 'gauge',
  help: 'Restart persistence (--bpf-pin-dir, docs/restart.md): 1 for what this agent found pinned at its start: fresh (nothing), adopted (a previous agent\'s counters, continued), or replaced (pins it could not read, such as another layout: removed, and the counters restarted from zero; the log says why); off without the flag.',
  labels: ['outcome'],
};

export const HTTP_CONNECTIONS: MetricSpec = {
  name: 'tally_http_connections',
  type: 'gauge',
  help: 'Connections the metrics server holds now (scrapes, probes, idle keep-alives, clients still sending their headers).',
  labels: [],
};

export const HTTP_CONNECTIONS_LIMIT: MetricSpec = {
  name: 'tally_http_connections_limit',
  type: 'gauge',
  help: 'Connections the metrics server holds at most: --web.max-connections, or fewer when the fd limit is low, so that the agent keeps a reserve of fds for its own work (docs/limits.md).',
  labels: [],
};

export const HTTP_CONNECTIONS_REJECTED: MetricSpec = {
  name: 'tally_http_connections_rejected_total',
  type: 'counter',
  help: 'Connections the metrics server closed at once, unanswered, because it held tally_http_connections_limit already.',
  labels: [],
};

export const SCRAPE_READ_SECONDS: MetricSpec = {
  name: 'tally_bpf_map_read_seconds',
  type: 'gauge',
  help: 'Time the last scrape spent reading the counter maps from the kernel.',
  labels: [],
};

export const PROGRAM_RUN_SECONDS: MetricSpec = {
  name: 'tally_bpf_program_run_seconds_total',
  type: 'counter',
  help: 'Time tally\'s BPF programs have run in the kernel, all programs of a hook together (entry and return), as the kernel\'s BPF statistics measure it. Starts over when a policy is replaced.',
  labels: ['object', 'hook', 'program'],
  onlyWith: 'bpf-stats',
};

export const PROGRAM_RUNS: MetricSpec = {
  name: 'tally_bpf_program_runs_total',
  type: 'counter',
  help: 'Events tally\'s BPF programs have handled (runs of a hook\'s first program); run seconds over runs is the cost per event, its return program included.',
  labels: ['object', 'hook', 'program'],
  onlyWith: 'bpf-stats',
};

export const PROGRAM_MISSES: MetricSpec = {
  name: 'tally_bpf_program_recursion_misses_total',
  type: 'counter',
  help: 'Events a hook\'s BPF programs did not count because the kernel skipped them: the same program was already running on that CPU (an interrupt or softirq fired the hook again mid-run). Counted by the kernel for every program, --bpf-stats or not; each one is an event missing from the hook\'s metrics. Starts over when a policy is replaced.',
  labels: ['object', 'hook', 'program'],
};

export const HOST_CPUS: MetricSpec = {
  name: 'tally_host_cpus',
  type: 'gauge',
  help: 'CPUs of the node, to read BPF run time as a share of the node\'s CPU.',
  labels: [],
};

export const OTLP_EXPORTS: MetricSpec = {
  name: 'tally_otlp_exports_total',
  type: 'counter',
  help: 'OTLP exports the collector accepted.',
  onlyWith: 'otlp',
  labels: [],
};

export const OTLP_EXPORT_FAILURES: MetricSpec = {
  name: 'tally_otlp_export_failures_total',
  type: 'counter',
  help: 'OTLP export attempts that failed (refused, timed out or rejected, after the exporter\'s own retries); the next attempt backs off.',
  onlyWith: 'otlp',
  labels: [],
};

export const OTLP_DROPPED_POINTS: MetricSpec = {
  name: 'tally_otlp_dropped_points_total',
  type: 'counter',
  help: 'Data points of failed OTLP exports, given up rather than queued; values are cumulative, so the next export that succeeds carries what they had.',
  onlyWith: 'otlp',
  labels: [],
};

export const WEB_CONFIG_RELOADS: MetricSpec = {
  name: 'tally_web_config_reloads_total',
  type: 'counter',
  help: 'Reloads of --web.config.file after a change to it or a file it names, by result; on failure the last good config stays in force and the log says why.',
  onlyWith: 'web-config',
  labels: ['result'],
};

export const WEB_CONFIG_LAST_RELOAD_SUCCESSFUL: MetricSpec = {
  name: 'tally_web_config_last_reload_successful',
  type: 'gauge',
  help: '1 when the last load of --web.config.file succeeded, 0 while an edit that does not load waits to be fixed.',
  onlyWith: 'web-config',
  labels: [],
};

/** In the order docs/metrics.md lists them. */
export const CATALOG: readonly MetricSpec[] = [
  BUILD_INFO,
  HOOK_ATTACHED,
  HOOK_ATTACHMENTS,
  CHAINED_HOOKS,
  HOOK_REFUSED,
  PROGRAM_RUN_SECONDS,
  PROGRAM_RUNS,
  PROGRAM_MISSES,
  HOST_CPUS,
  MAP_ENTRIES,
  MAP_CAPACITY,
  PROMOTED_COUNTERS,
  PROMOTED_CAPACITY,
  MAP_OVERFLOW_UPDATES,
  MAP_LOST_UPDATES,
  SCRAPE_READ_SECONDS,
  SCRAPES,
  MALLOC_BYTES,
  PEER_TABLE_ENTRIES,
  PEER_TABLE_WRITES,
  PEER_TABLE_FAILURES,
  PEER_CIDRS_FILE_REFUSALS,
  PEER_ENDPOINT_SLICES,
  PEER_WATCH_ERRORS,
  RESTART_STATE,
  HTTP_CONNECTIONS,
  HTTP_CONNECTIONS_LIMIT,
  HTTP_CONNECTIONS_REJECTED,
  MAP_DELETED_ENTRIES,
  STALE_LABEL_SETS,
  FOLDED_ENTRIES,
  RELABELLED_CGROUPS,
  NAMESPACE_UNMATCHED_ENTRIES,
  LABEL_SET_MAP_FULL,
  PENDING_CGROUPS,
  LABEL_SETS,
  POLICY_STATE,
  POLICY_SCAN_FAILURES,
  SWEEP_FAILURES,
  CGROUP_REMOVALS,
  CGROUP_REMOVAL_DROPS,
  KUBE_WATCH_EVENTS,
  KUBE_WATCH_ERRORS,
  KUBE_REQUESTS,
  KUBE_LIST_CALLS,
  KUBE_SYNC_AGE,
  KUBE_PODS,
  METRIC_SERIES,
  METRIC_SERIES_LIMIT,
  METRIC_KERNEL_IDS,
  METRIC_OVERFLOWED_LABEL_SETS,
  METRIC_ROLLED_UP_SERIES,
  METRIC_ROLLED_UP_LABEL_SETS,
  METRIC_SERIES_CREATED,
  METRIC_SERIES_RETIRED,
  CACHE_ENTRIES,
  CACHE_CAPACITY,
  CACHE_HITS,
  CACHE_MISSES,
  CACHE_EVICTIONS,
  BINARY_EVENT_DROPS,
  BINARY_PATHS_TRUNCATED,
  OTLP_EXPORTS,
  OTLP_EXPORT_FAILURES,
  OTLP_DROPPED_POINTS,
  WEB_CONFIG_RELOADS,
  WEB_CONFIG_LAST_RELOAD_SUCCESSFUL,
];
