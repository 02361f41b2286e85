/**
 * The agent: serves metrics, loads and attaches the BPF programs, and on stop
 * releases everything in reverse order of acquisition.
 *
 * The HTTP server binds first so a bad address fails fast, before any BPF is
 * loaded; /readyz answers 503 until every hook is attached.
 */
import { Registry } from 'prom-client';
import { registerProcessMetrics } from '../health/process-metrics';
import { AgentConfig } from './config';
import { MetricsServer } from '../exporters/metrics-server';
import { TcpBytes, TCP_BYTES_OBJECT } from '../collectors/tcp-bytes';
import { KernelCounters } from '../collectors/kernel-counters';
import { registerHealthMetrics } from '../health/health-metrics';
import { CgroupPaths } from '../labels/cgroup-paths';
import { BinaryPaths } from '../labels/binary-paths';
import { findCgroup2Mount } from '../labels/cgroup-mount';
import { CgroupRemovals } from '../labels/cgroup-removals';
import { Labeler } from '../labels/labeler';
import { PodWatcher } from '../labels/kube/pod-watcher';
import { loadKubeConfig } from '../labels/kube/client';
import { checkLayout } from '../bpf/layout';
import { describeHook } from '../bpf/loader';
import { Logger } from '../util/log';
import { formatAddress } from '../cli/address';

export class Agent {
  readonly registry = new Registry();
  private server?: MetricsServer;
  private tcp?: TcpBytes;
  private counters?: KernelCounters;
  private removals?: CgroupRemovals;
  private pods?: PodWatcher;
  private stopping?: Promise<void>;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    checkLayout();
    this.server = new MetricsServer({
      registry: this.registry,
      beforeScrape: () => this.counters?.invalidate(),
      notReadyReason: () => this.notReadyReason(),
    });
    await this.server.listen(this.config.metricsServer);
    this.log.info('serving metrics', { address: formatAddress(this.config.metricsServer), port: this.server.port });

    const kc = await loadKubeConfig(this.config.kubeconfig);
    if (kc) {
      this.pods = new PodWatcher(kc, { nodeName: this.config.nodeName, seriesTtlMs: this.config.seriesTtlMs }, this.log);
      await this.pods.start();
      this.log.info('watching the pods of this node', { node: this.config.nodeName, server: kc.getCurrentCluster()?.server ?? '?' });
    }
    const mount = findCgroup2Mount();
    const cgroups = new CgroupPaths(mount, this.config.cgroupCacheCapacity);
    const binaries = new BinaryPaths(this.config.binaryCacheCapacity);
    this.removals = new CgroupRemovals(mount, 65536, this.log, this.config.kernelBtfPath);
    this.tcp = new TcpBytes({
      filter: this.config.labelFilter,
      counterCapacity: this.config.counterMapCapacity,
      kernelBtfPath: this.config.kernelBtfPath,
      log: this.log,
    });
    this.counters = new KernelCounters({
      core: this.tcp.loaded,
      seriesTtlMs: this.config.seriesTtlMs,
      removals: this.removals,
      filter: this.config.labelFilter,
      seriesLimit: this.config.seriesLimit,
      counterCapacity: this.config.counterMapCapacity,
      labeler: new Labeler(cgroups, this.pods, { needsContainer: this.config.labelFilter.includes('container') }),
      cgroupGone: (id) => cgroups.forget(id),
      binaries,
      log: this.log,
    });
    for (const m of this.tcp.metrics()) this.counters.define(m, this.registry);
    registerHealthMetrics(this.registry, {
      counters: this.counters,
      objects: () => [[TCP_BYTES_OBJECT, this.tcp?.loaded.hooks ?? []]],
      removals: this.removals,
      pods: this.pods,
      caches: [cgroups.stats, binaries.stats],
      binaryTruncated: () => binaries.truncated,
    });
    registerProcessMetrics(this.registry);
    this.log.info('agent started', { cgroup2: mount, label_filter: this.config.labelFilter.join(','), ready: this.notReadyReason() ?? 'yes' });
  }

  private notReadyReason(): string | undefined {
    if (!this.tcp) return 'BPF programs are not loaded yet';
    // The removal hook is not required: without it, staleness rescans.
    const failed = this.tcp.loaded.hooks.filter((h) => !h.program);
    return failed.length ? failed.map(describeHook).join('; ') : undefined;
  }

  /** The port the metrics server listens on. */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** Stop serving, detach, free. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.server?.close();
      this.counters?.close();
      this.tcp?.close();
      this.removals?.close();
      await this.pods?.stop();
      if (this.tcp) this.log.info('agent stopped');
    })();
    return this.stopping;
  }
}
