/**
 * TCP bytes sent and received (bpf/tcp_bytes.bpf.c): loads and attaches the
 * programs, announces executables through the ring buffer, and at scrape time
 * folds the kernel's (cgroup, binary) counters into labelled series.
 */
import { Registry } from 'prom-client';
import { BPF_ANY, native, NativeRingBuffer } from '../native/addon';
import { forgetAnnounced } from '../bpf/binary-announcements';
import { bpfObjectPath } from '../util/paths';
import { describeHook, HookSpec, loadObject, LoadedObject } from '../bpf/loader';
import { readCounterMap, readStatsArray, seedOverflowKey, CounterEntry } from '../bpf/counter-map';
import { ANNOUNCED_SLOTS, decodeBinaryEvent, KEY_LABEL_SET, KEY_OVERFLOW, KernelStat, TcpBytesMetric } from '../bpf/layout';
import { applyFilter, FilterLabel } from '../labels/label-filter';
import { Labeler } from '../labels/labeler';
import { BinaryPaths } from '../labels/binary-paths';
import { defineMetric, Sample } from '../metrics/define';
import { MetricSpec, TCP_RECEIVED_BYTES, TCP_SENT_BYTES } from '../metrics/catalog';
import { ScrapeMemo } from '../util/memo';
import { Staleness } from '../cardinality/staleness';
import { bssMap } from '../bpf/bss';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { labelKey, OVERFLOW_LABELS, SeriesLimiter } from '../cardinality/series-limiter';
import { Logger } from '../util/log';

/** Metric ids of bpf/tcp_bytes.h (checked against the C enum by checkLayout). */
const METRICS: ReadonlyArray<{ id: number; spec: MetricSpec }> = [
  { id: TcpBytesMetric.sent, spec: TCP_SENT_BYTES },
  { id: TcpBytesMetric.received, spec: TCP_RECEIVED_BYTES },
];

export const TCP_BYTES_OBJECT = 'tcp_bytes';
export const COUNTER_MAP = 'tally_counters';
export const LABEL_SET_MAP = 'tally_cgroup_label_sets';

/** Hooks, each with its programs from most to least preferred attach type. */
export function tcpBytesHooks(keyByBinary: boolean): HookSpec[] {
  const hooks: HookSpec[] = [
    // The tracepoints first: as cheap as fentry through tp_btf, and complete
    // (kTLS, MPTCP, splice). The TCP functions serve kernels before 6.3.
    { hook: 'tcp_send', candidates: ['tcp_send_btf', 'tcp_send_raw', 'tcp_send_fexit', 'tcp_send_kprobe', 'tcp_send_tp'] },
    { hook: 'tcp_receive', candidates: ['tcp_recv_btf', 'tcp_recv_raw', 'tcp_recv_fexit', 'tcp_recv_kprobe', 'tcp_recv_tp'] },
  ];
  // The exec hook only serves the binary label.
  if (keyByBinary) hooks.push({ hook: 'process_exec', candidates: ['exec_btf', 'exec_raw', 'exec_tp'] });
  return hooks;
}

export interface TcpBytesOptions {
  filter: readonly FilterLabel[];
  /** How long after its cgroup is removed a series and its kernel entries go. */
  seriesTtlMs: number;
  removals: CgroupRemovals;
  /** Series per metric before label sets fold into the overflow series. */
  seriesLimit: number;
  counterCapacity: number;
  kernelBtfPath?: string;
  labeler: Labeler;
  /** Called once a removed cgroup is fully retired. */
  cgroupGone?: (cgroupId: bigint) => void;
  binaries: BinaryPaths;
  log: Logger;
}

interface Snapshot {
  /** Series per metric id, after the series limit. */
  series: Map<number, Sample[]>;
  entries: number;
  readSeconds: number;
  stats: bigint[];
  /** cgroups whose counts this read held back, their labels not final yet. */
  pendingCgroups: number;
}

export class TcpBytesCollector {
  readonly loaded: LoadedObject;
  private readonly counterFd: number;
  private readonly statsFd: number;
  private readonly ring?: NativeRingBuffer;
  private readonly memo: ScrapeMemo<Snapshot>;
  readonly limiters: ReadonlyMap<number, SeriesLimiter>;
  readonly staleness: Staleness;
  private readonly sweepTimer: NodeJS.Timeout;
  private backlogTimer?: NodeJS.Timeout;
  private reading = false;
  /** The filter's cgroup-derived labels: the kernel's label sets are made of these. */
  private readonly cgroupFilter: FilterLabel[];
  /** Ids asked to be announced again, so a scrape waits for each only once. */
  private readonly reannounced = new Set<bigint>();
  private closed = false;

  constructor(private readonly opts: TcpBytesOptions) {
    const keyByBinary = opts.filter.includes('binary');
    // namespace, workload, pod and container all derive from the cgroup.
    this.cgroupFilter = opts.filter.filter((l) => l !== 'binary');
    const keyByCgroup = this.cgroupFilter.length > 0;
    this.loaded = loadObject({
      objectPath: bpfObjectPath(TCP_BYTES_OBJECT),
      hooks: tcpBytesHooks(keyByBinary),
      constants: {
        key_by_binary: Buffer.from([keyByBinary ? 1 : 0]),
        key_by_cgroup: Buffer.from([keyByCgroup ? 1 : 0]),
      },
      // One mapping per cgroup can never need more room than one entry per cgroup.
      maxEntries: { [COUNTER_MAP]: opts.counterCapacity, [LABEL_SET_MAP]: opts.counterCapacity },
      kernelBtfPath: opts.kernelBtfPath,
      beforeAttach: (obj) => {
        const fd = obj.mapFd(COUNTER_MAP);
        for (const m of METRICS) seedOverflowKey(fd, m.id);
      },
    });
    const obj = this.loaded.object;
    this.counterFd = obj.mapFd(COUNTER_MAP);
    this.statsFd = obj.mapFd('tally_stats');
    for (const h of this.loaded.hooks) {
      if (h.program) opts.log.info('hook attached', { object: TCP_BYTES_OBJECT, detail: describeHook(h) });
      else opts.log.error('hook failed', { object: TCP_BYTES_OBJECT, detail: describeHook(h) });
    }
    if (keyByBinary) {
      this.ring = new (native().RingBuffer)(obj.mapFd('tally_binary_events'), (records) => {
        for (const r of records) opts.binaries.learn(decodeBinaryEvent(r));
      });
    }
    this.memo = new ScrapeMemo(() => this.read());
    // A label set no read has shown for this long has left the kernel and user space alike.
    const forgetUnseenMs = Math.max(2 * opts.seriesTtlMs, 5 * 60_000);
    this.limiters = new Map(METRICS.map((m) => [m.id, new SeriesLimiter(m.spec.name, opts.seriesLimit, forgetUnseenMs)]));
    const labelSetFd = obj.mapFd(LABEL_SET_MAP);
    const bss = bssMap(obj);
    let generation = 0n;
    this.staleness = new Staleness({
      counterFd: this.counterFd,
      labelSetFd,
      bumpGeneration: () => {
        // tally_label_set_generation is the only variable in .bss.
        if (!bss) return;
        const value = Buffer.alloc(bss.valueSize);
        value.writeBigUInt64LE(++generation);
        native().mapUpdate(bss.fd, Buffer.alloc(4), value, BPF_ANY);
      },
      removals: opts.removals,
      ttlMs: opts.seriesTtlMs,
      resolve: (id, pendingSince, giveUp) => {
        const r = opts.labeler.resolve(id, pendingSince, giveUp);
        return { labels: applyFilter(this.cgroupFilter, r.values) as Record<string, string>, final: r.final };
      },
      liveSetKeys: () => opts.labeler.livePodLabels().map((v) => labelKey(applyFilter(this.cgroupFilter, v) as Record<string, string>)),
      binaryLabels: (id): Record<string, string> => {
        const path = keyByBinary ? opts.binaries.path(id) : undefined;
        return path ? { binary: path } : {};
      },
      podDeletedAt: (id) => opts.labeler.podDeletedAt(id),
      forget: (metric, key) => this.limiters.get(metric)?.forget(key) ?? 'unknown',
      cgroupGone: (id) => opts.cgroupGone?.(id),
    });
    // Sweep often enough that a series outlives its TTL by at most a quarter of it.
    const every = Math.min(Math.max(opts.seriesTtlMs / 4, 250), 15_000);
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /**
   * Folds resolved cgroups into label sets and deletes the kernel entries of
   * cgroups removed more than a TTL ago. With a backlog of new cgroups, the
   * next sweep follows shortly, yielding to scrapes in between.
   */
  sweep(): void {
    // A read in flight holds a dump of the kernel map while it waits for
    // binary announcements; moving entries now would count them twice.
    if (this.reading) {
      clearTimeout(this.backlogTimer);
      this.backlogTimer = setTimeout(() => this.sweep(), 50);
      this.backlogTimer.unref();
      return;
    }
    try {
      const started = Date.now();
      const backlog = this.staleness.sweep();
      this.opts.log.debug('sweep', { ms: Date.now() - started, label_sets: this.staleness.labelSets.size, backlog });
      this.invalidate();
      if (backlog && !this.closed) {
        clearTimeout(this.backlogTimer);
        this.backlogTimer = setTimeout(() => this.sweep(), 100);
        this.backlogTimer.unref();
      }
    } catch (e) {
      this.opts.log.error('staleness sweep failed', { error: (e as Error).message });
    }
  }

  /** True when every hook runs a program. */
  get fullyAttached(): boolean {
    return this.loaded.hooks.every((h) => h.program !== undefined);
  }

  get counterMapCapacity(): number {
    return this.opts.counterCapacity;
  }

  /** Set to the counter map's capacity at load. */
  get labelSetCapacity(): number {
    return this.opts.counterCapacity;
  }

  register(registry: Registry): void {
    for (const m of METRICS) {
      defineMetric(registry, m.spec, async () => (await this.memo.get()).series.get(m.id)!);
    }
  }

  /** Drop the cached read so the next scrape reads the kernel again. */
  invalidate(): void {
    this.memo.invalidate();
  }

  snapshot(): Promise<Snapshot> {
    return this.memo.get();
  }

  ringStats(): { delivered: number; dropped: number; failedErrno: number } {
    return this.ring?.stats() ?? { delivered: 0, dropped: 0, failedErrno: 0 };
  }

  private async read(): Promise<Snapshot> {
    this.reading = true;
    try {
      return await this.readUnswept();
    } finally {
      this.reading = false;
    }
  }

  private async readUnswept(): Promise<Snapshot> {
    const started = process.hrtime.bigint();
    const dump = readCounterMap(this.counterFd);
    const stats = readStatsArray(this.statsFd);
    const readSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    // An announcement may still be on its way from the ring-buffer thread
    // (the kernel announces a binary just before counting its first event).
    // Deliveries run in a later turn of the event loop: wait for them, briefly.
    for (let waited = 0; this.ring && waited < 50 && this.unknownBinaries(dump.entries).length > 0; waited += 2) {
      await new Promise((r) => setTimeout(r, 2));
    }
    if (this.ring) this.reannounce(this.unknownBinaries(dump.entries));
    const byMetric = new Map<number, Map<string, Sample>>();
    for (const m of METRICS) byMetric.set(m.id, new Map());
    const pending = new Set<bigint>();
    for (const e of dump.entries) this.fold(byMetric, e, pending);
    this.addRetired(byMetric);
    // Limits apply here, once per read, so every metric of a scrape (health
    // included, which prom-client collects concurrently) sees the same state.
    const series = new Map([...byMetric].map(([id, samples]) => [id, this.limiters.get(id)!.apply(samples)]));
    return { series, entries: dump.entries.length, readSeconds, stats, pendingCgroups: pending.size };
  }

  /** Binary ids in the counters whose path user space does not know (and has not asked for yet). */
  private unknownBinaries(entries: CounterEntry[]): bigint[] {
    const ids = new Set<bigint>();
    for (const e of entries) {
      const id = e.key.binaryId;
      if (id > 1n && !this.opts.binaries.has(id) && !this.reannounced.has(id)) ids.add(id);
    }
    return [...ids];
  }

  /**
   * An id the kernel believes announced but user space never learned (a
   * dropped delivery, or evicted from the path cache): forget it in the
   * kernel, so the next event of that binary announces its path again.
   */
  private reannounce(ids: bigint[]): void {
    if (ids.length === 0) return;
    const obj = this.loaded.object;
    if (this.reannounced.size > 4 * ANNOUNCED_SLOTS) this.reannounced.clear();
    forgetAnnounced(obj, ids);
    for (const id of ids) this.reannounced.add(id);
    this.opts.log.debug('asked the kernel to announce binaries again', { count: ids.length });
  }

  private fold(byMetric: Map<number, Map<string, Sample>>, e: CounterEntry, pending: Set<bigint>): void {
    if (e.key.flags === KEY_OVERFLOW) {
      if (e.value !== 0) addSample(byMetric.get(e.key.metric), OVERFLOW_KEY, OVERFLOW_LABELS, e.value);
      return;
    }
    const labels = this.staleness.labelsOf(e.key);
    if (labels) addSample(byMetric.get(e.key.metric), labels.key, labels.labels, e.value);
    else if (e.key.flags !== KEY_LABEL_SET) pending.add(e.key.cgroupId); // held back until its labels are final
  }

  /** What fold-in and staleness moved out of the kernel map still counts. */
  private addRetired(byMetric: Map<number, Map<string, Sample>>): void {
    for (const [metric, held] of this.staleness.held) {
      for (const [key, h] of held) addSample(byMetric.get(metric), key, h.labels, h.value);
    }
    for (const [metric, value] of this.staleness.heldOverflow) addSample(byMetric.get(metric), OVERFLOW_KEY, OVERFLOW_LABELS, value);
  }

  /** Kernel self-statistics (tally_stats), summed over CPUs. */
  async kernelStats(): Promise<{ mapFull: bigint; lost: bigint; binaryEventDrops: bigint; pathTruncated: bigint; entries: number; readSeconds: number }> {
    const s = await this.memo.get();
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

  /** Detach and free everything, in reverse order. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.backlogTimer);
    this.ring?.close();
    this.loaded.object.close();
  }
}

const OVERFLOW_KEY = labelKey(OVERFLOW_LABELS);

function addSample(series: Map<string, Sample> | undefined, key: string, labels: Readonly<Record<string, string>>, value: number): void {
  if (!series) return;
  const s = series.get(key);
  if (s) s.value += value;
  else series.set(key, { labels, value });
}
