/**
 * The agent: serves metrics, loads and attaches the BPF programs, and on stop
 * releases everything in reverse order of acquisition.
 *
 * The HTTP server binds first so a bad address fails fast, before any BPF is
 * loaded; /readyz answers 503 until every hook is attached.
 */
import { PEER_POLICIES } from '../cli/args';
import { cardinalityDebug } from '../collectors/cardinality-debug';
import { Registry } from 'prom-client';
import { registerProcessMetrics } from '../health/process-metrics';
import { AgentConfig } from './config';
import { MetricsServer } from '../exporters/metrics-server';
import { describeWebConfig } from '../exporters/web-config';
import { CoreObject, CORE_OBJECT } from '../collectors/core-object';
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
import { HookResult } from '../bpf/loader';
import { describeHook } from '../bpf/hook-report';
import { Logger } from '../util/log';
import { native } from '../native/addon';
import { formatAddress } from '../cli/address';
import { PolicyManager } from '../engine/policy-manager';
import { describeFeatures, probeKernel } from '../engine/kernel-features';
import { checkHookConfigLayout } from '../engine/hook-config';
import { loadSyscalls } from '../engine/syscalls';
import { loadPolicyBytesYielding, PolicyDirectoryWatcher, PolicyDirEvent, PolicyFileResult, refusedFile } from '../policy';
import { MemoryReclaimer } from '../util/reclaim-memory';
import { HookBudget } from '../policy/hook-budget';
import { BUILTIN_POLICY_DIR } from '../util/paths';
import * as path from 'node:path';
import type { OtlpExport } from '../exporters/otlp';
import { Handover } from '../persist/handover';
import { clearPins, UninstallCheck } from '../persist/uninstall-check';
import { PEER_MAP } from '../collectors/shared-maps';
import { PeerCidr } from '../peers/peer-cidrs';
import { PeerMapChange } from '../peers/peer-map';
import { PeerSource } from '../peers/peer-source';

export class Agent {
  readonly registry = new Registry();
  private server?: MetricsServer;
  private core?: CoreObject;
  private counters?: KernelCounters;
  private removals?: CgroupRemovals;
  private pods?: PodWatcher;
  private policies?: PolicyManager;
  private otlp?: OtlpExport;
  /** --bpf-pin-dir: what this agent took over, and hands over at stop. */
  private handover?: Handover;
  /** --bpf-pin-daemonset: at stop, whether this is a restart (hand over) or an uninstall (clear). */
  private uninstallCheck?: UninstallCheck;
  private binaries?: BinaryPaths;
  /** The kernel's peer table (tcp-peers' peer labels) and what fills it. */
  private peers?: PeerSource;
  private readonly watchers: PolicyDirectoryWatcher[] = [];
  /** LIMITS.hooksPerAgent over every policy file, built-ins included. */
  private readonly hookBudget = new HookBudget();
  /** Gives memory back after a burst of policy changes or a churn of cgroups (src/util/reclaim-memory.ts). */
  private readonly reclaimer = new MemoryReclaimer();
  /** Policy file events not yet validated and handed to the policy manager, in order (onPolicyFile). */
  private policyFiles: Promise<void> = Promise.resolve();
  private stopping?: Promise<void>;
  /** Held open to keep the kernel's BPF statistics on. */
  private bpfStatsFd?: number;
  /** Set once start() has loaded everything, policies included. */
  private started = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    checkLayout();
    checkHookConfigLayout();
    this.server = new MetricsServer({
      registry: this.registry,
      beforeScrape: () => this.counters?.invalidate(),
      notReadyReason: () => this.notReadyReason(),
      onError: (e) => this.log.warn('the metrics server\'s socket failed; it keeps listening', { error: e.message }),
      webConfig: this.config.webConfig,
      log: this.log,
      cardinality: (top) => (this.counters ? cardinalityDebug(this.counters, top) : Promise.reject(new Error('kernel counters are not loaded yet'))),
      limits: this.config.httpLimits,
    });
    await this.server.listen(this.config.metricsServer);
    this.log.info('serving metrics', {
      address: formatAddress(this.config.metricsServer),
      port: this.server.port,
      ...(this.config.webConfig ? { web_config: this.config.webConfig.file, ...describeWebConfig(this.config.webConfig) } : { tls: 'off', auth: 'none' }),
    });

    const kc = await loadKubeConfig(this.config.kubeconfig);
    if (kc) {
      this.pods = new PodWatcher(kc, { nodeName: this.config.nodeName, seriesTtlMs: this.config.seriesTtlMs }, this.log);
      await this.pods.start();
      this.log.info('watching the pods of this node', { node: this.config.nodeName, server: kc.getCurrentCluster()?.server ?? '?' });
      if (this.config.pinDaemonSet) (this.uninstallCheck = new UninstallCheck(this.pods.http, this.config.pinDaemonSet, this.log)).start();
    } else if (this.config.podLabels.size > 0) {
      this.log.warn('--metrics-pod-labels has no effect without Kubernetes: give --kubeconfig, or run in a pod', { pod_labels: this.config.podLabels.toString() });
    }
    const mount = findCgroup2Mount();
    const cgroups = new CgroupPaths(mount, this.config.cgroupCacheCapacity);
    const binaries = new BinaryPaths(this.config.binaryCacheCapacity);
    this.removals = new CgroupRemovals(mount, 65536, this.log, this.config.kernelBtfPath);
    const removals = this.removals;
    cgroups.removedPath = (id) => removals.removedPath(id);
    const features = probeKernel(this.config.kernelBtfPath);
    this.binaries = binaries;
    if (this.config.pinDir) {
      this.handover = Handover.prepare(this.config.pinDir, this.labelSetShape(), this.log);
      this.log.info('counters persist across restarts', { dir: this.config.pinDir, outcome: this.handover.outcome, epoch: this.handover.epoch });
    }
    this.log.info('kernel attach support', { probed: describeFeatures(features) });
    this.core = new CoreObject({
      counterCapacity: this.config.counterMapCapacity,
      kernelBtfPath: this.config.kernelBtfPath,
      // Exits are labelled by binary only when it is in the filter; the program needs fentry or kprobes.
      rememberExiting: this.config.labelFilter.has('binary') && (features.get('fentry')?.ok === true || features.get('kprobe')?.ok === true),
      reuseMaps: this.handover?.reuseMaps,
    });
    for (const h of this.core.loaded.hooks.filter((x) => !x.program)) {
      this.log.warn('exits will not be labelled by binary on kernels that fire sched_process_exit after the task lost its memory map (6.1 does)', { hook: describeHook(h) });
    }
    const labeler = new Labeler(cgroups, this.pods, { needsContainer: this.config.labelFilter.has('container') });
    this.counters = new KernelCounters({
      reclaimer: this.reclaimer,
      core: this.core.loaded,
      seriesTtlMs: this.config.seriesTtlMs,
      removals: this.removals,
      filter: this.config.labelFilter,
      podLabels: this.config.podLabels,
      seriesLimit: this.config.seriesLimit,
      rollup: this.config.rollup,
      counterCapacity: this.config.counterMapCapacity,
      labeler,
      cgroupGone: (id) => {
        cgroups.forget(id);
        labeler.forget(id);
      },
      binaries,
      log: this.log,
      ownerEpoch: this.handover?.epoch,
    });
    this.handover?.begin(this.counters, binaries, this.removals, this.config.seriesTtlMs);
    // Before any policy loads: a peer label's first event finds the table filled.
    this.peers = new PeerSource(this.counters.sharedMaps()[PEER_MAP], this.log);
    this.handover?.usePeers(this.peers.table);
    this.peers.replaceCidrs(this.config.peerCidrs);
    if (this.config.peerCidrsFile) this.peers.watchCidrsFile(this.config.peerCidrsFile.path, this.config.peerCidrsFile.text);
    if (this.config.peerCidrs.length > 0 && !this.config.builtinPolicies.some((p) => PEER_POLICIES.includes(p))) {
      this.log.warn('peer classes are given but neither built-in policy by peer (tcp-peers, udp-peers) runs; add one to --builtin-policies', {});
    }


    if (this.config.bpfStats) {
      try {
        this.bpfStatsFd = native().enableBpfStats();
      } catch (e) {
        this.log.warn('cannot turn on BPF run-time statistics; tally_bpf_program_* metrics are off', { error: (e as Error).message });
      }
    }
    this.policies = new PolicyManager({
      reclaimer: this.reclaimer,
      counters: this.counters,
      registry: this.registry,
      features,
      filter: this.config.labelFilter,
      syscalls: loadSyscalls(),
      kernelBtfPath: this.config.kernelBtfPath,
      kubernetes: this.pods !== undefined,
      peers: this.peers.table,
      // Service endpoints only once a policy asks for them (tcp-peers, udp-peers, or a policy of yours): the watch costs the API server a list+watch per node.
      onServicePeers: () => {
        if (this.pods) this.peers?.watchEndpointSlices(this.pods.http, { nodeName: this.config.nodeName });
      },
      // TALLY_TRACEPOINT_CHAINS=off attaches every classic tracepoint hook alone, =always chains every one: for benchmarks (BENCHMARKS.md), not a setting.
      chainTracepoints: process.env.TALLY_TRACEPOINT_CHAINS === 'always' ? 'always' : process.env.TALLY_TRACEPOINT_CHAINS !== 'off',
      log: this.log,
    });
    const builtins = new Set(this.config.builtinPolicies.map((n) => path.join(BUILTIN_POLICY_DIR, `${n}.yaml`)));
    for (const dir of [BUILTIN_POLICY_DIR, ...(this.config.policyDir ? [this.config.policyDir] : [])]) {
      const wanted = (e: PolicyDirEvent): boolean => dir !== BUILTIN_POLICY_DIR || builtins.has(e.file);
      const w = new PolicyDirectoryWatcher(dir, (e) => wanted(e) && this.onPolicyFile(e), {
        onError: (err, retryMs) => this.log.warn('reading the policy directory failed', { dir, error: err.message, ...(retryMs !== undefined ? { retry_in_ms: retryMs } : {}) }),
        onSkip: (file, why, reason) => {
          this.log.warn('policy file skipped: it cannot be read as one', { file, reason: why });
          // Reported in tally_policy_state as any other bad file, until it is readable (an add) or gone (a remove).
          if (wanted({ type: 'add', file })) this.onPolicyFile({ type: 'add', file }, refusedFile(file, reason));
        },
      });
      this.watchers.push(w);
      await w.ready;
    }
    // Ready means the policies found at startup are loaded (or reported as failed).
    await this.policyFiles;
    await this.policies.settled();
    await this.handover?.takeOver();
    registerHealthMetrics(this.registry, {
      counters: this.counters,
      objects: () => [
        [CORE_OBJECT, this.core?.loaded.hooks ?? []],
        ...(this.policies?.statuses() ?? []).map((s): [string, HookResult[]] => [`policy/${s.policy}`, s.hooks]),
      ],
      policies: () => this.policies?.statuses() ?? [],
      policyScanFailures: () => this.watchers.map((w) => ({ dir: w.dir, failures: w.scanFailures })),
      removals: this.removals,
      pods: this.pods,
      peers: this.peers,
      caches: [cgroups.stats, binaries.stats, ...this.counters.core.caches, ...(this.pods ? [this.pods.ownerCache] : [])],
      binaryTruncated: () => binaries.truncated,
      bpfStats: this.bpfStatsFd !== undefined,
      scrapes: () => this.server?.scrapes ?? {},
      restart: this.handover ? { outcome: this.handover.outcome } : undefined,
      chains: () => this.policies?.chains,
    });
    registerProcessMetrics(this.registry);
    if (this.config.otlp) {
      // Loaded only when used: the SDK, exporters and gRPC cost ~150 ms and 10 MB at startup.
      const { OtlpExport, workloadKinds, podLabelAttributes } = await import('../exporters/otlp/index.js');
      const pods = this.pods;
      const namespaced = this.config.labelFilter.has('namespace');
      this.otlp = new OtlpExport({
        config: this.config.otlp,
        kernel: this.counters,
        registry: this.registry,
        log: this.log,
        kubernetesNode: pods ? this.config.nodeName : undefined,
        workloadKinds: pods ? () => workloadKinds(pods.known(), namespaced) : undefined,
        labelAttributes: podLabelAttributes(this.config.podLabels),
      });
    }
    this.started = true;
    // Now that what the agent starts with is loaded, its fds are known: the cap leaves the reserve beyond them.
    this.server.fitConnections();
    const limits = this.server.connectionLimits;
    if (limits && limits.cap < this.config.httpLimits.maxConnections) {
      this.log.warn('the fd limit leaves the metrics server fewer connections than --web.max-connections; raise it (ulimit -n, LimitNOFILE, the container runtime) for more', {
        fd_limit: limits.fdLimit,
        connections: limits.cap,
      });
    }
    this.log.info('agent started', { cgroup2: mount, label_filter: this.config.labelFilter.toString(), ...(this.config.podLabels.size > 0 ? { pod_labels: this.config.podLabels.toString() } : {}), ready: this.notReadyReason() ?? 'yes', http_max_connections: limits?.cap, fd_limit: limits?.fdLimit ?? 'unlimited' });
  }

  /**
   * A policy file was added, changed or removed (or SIGHUP found it so);
   * `read` when it was refused unread. The hooks-per-agent budget decides
   * first; the changes it lets through are queued (PolicyManager applies them
   * in order, loading off the event loop) and logged when they are done.
   */
  private onPolicyFile(e: PolicyDirEvent, read?: PolicyFileResult): void {
    // In the order they came: a file is validated (yielding to the event loop between its documents) before the next event is looked at.
    this.policyFiles = this.policyFiles.then(() => this.applyPolicyFile(e, read));
  }

  private async applyPolicyFile(e: PolicyDirEvent, read?: PolicyFileResult): Promise<void> {
    const policies = this.policies;
    if (!policies) return;
    let results: PolicyFileResult[];
    try {
      if (e.type === 'remove') {
        this.track(policies.removeFile(e.file).then(() => this.log.info('policy file removed', { file: e.file })), e.file);
        // Hooks it held may let in files refused for the hooks-per-agent limit.
        results = this.hookBudget.remove(e.file);
      } else {
        results = this.hookBudget.offer(read ?? (await loadPolicyBytesYielding(e.bytes ?? Buffer.alloc(0), e.file)));
      }
    } catch (err) {
      this.log.error('applying a policy file failed', { file: e.file, error: (err as Error).message });
      return;
    }
    this.applyResults(results);
  }

  private applyResults(results: PolicyFileResult[]): void {
    for (const r of results) if (this.policies) this.track(this.policies.applyFile(r), r.file);
  }

  /** A queued change: the counters learn its metrics when it is done; a failure is logged. */
  private track(change: Promise<unknown>, file: string): void {
    change.then(
      () => this.counters?.invalidate(),
      (err: Error) => this.log.error('applying a policy file failed', { file, error: err.message }),
    );
  }

  /** Replaces the peer classes (and re-reads this node's addresses) in the kernel's peer table, in place (PeerSource). */
  replacePeerCidrs(cidrs: readonly PeerCidr[], addresses?: readonly string[]): PeerMapChange {
    if (!this.peers) throw new Error('the peer table is not loaded yet');
    return this.peers.replaceCidrs(cidrs, addresses);
  }

  /** SIGHUP: look at the policy directories again now, rather than at their next change. */
  async reloadPolicies(): Promise<void> {
    this.peers?.recheckCidrsFile();
    await Promise.all(this.watchers.map((w) => w.rescan()));
  }

  /**
   * What the label sets' labels were made from, which a restart must share to
   * adopt them (src/persist/compat.ts): the filter, and the pod labels joined.
   */
  private labelSetShape(): string {
    const pods = this.config.podLabels.size > 0 ? ` --metrics-pod-labels ${this.config.podLabels.toString()}` : '';
    return this.config.labelFilter.toString() + pods;
  }

  private notReadyReason(): string | undefined {
    if (!this.core || !this.started) return 'BPF programs and policies are not loaded yet';
    // Neither the removal hook (without it, staleness rescans) nor the core's
    // exiting-binaries hook (without it, exits on some kernels lack the binary
    // label, which the start logs) is required.
    const failed: string[] = [];
    // A built-in in error fails readiness: its metrics are what the chart's
    // dashboards and alerts stand on. A user's policy in error is reported
    // (tally_policy_state, the log) but does not take the node's agent out
    // of service: one bad file in --policy-dir must not stop every node's
    // counting (docs/policies.md, "Readiness").
    for (const s of this.policies?.statuses() ?? []) {
      if (s.state === 'error' && path.dirname(s.file) === BUILTIN_POLICY_DIR) failed.push(`built-in policy ${s.policy} failed: ${s.reasons.join('; ')}`);
    }
    return failed.length ? failed.join('; ') : undefined;
  }

  /** The port the metrics server listens on. */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** Stop serving, detach, free. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const verdict = this.uninstallCheck?.atStop(); // bounded (STOP_TIMEOUT_MS), under way while the exports stop
      // First, while the maps are still there to read: its last export is bounded (STOP_FLUSH_MS).
      await this.otlp?.stop();
      await this.server?.close();
      for (const w of this.watchers) w.close();
      let handedOver = false;
      const uninstall = (await verdict)?.action === 'uninstall';
      if (this.handover && this.policies && this.binaries && this.started && !uninstall) {
        try {
          handedOver = true;
          await this.handover.handOff(await this.policies.quiesce(), this.labelSetShape(), this.binaries);
        } catch (e) {
          handedOver = false;
          this.log.error('pinning the counters for the next agent failed; they restart from zero', { dir: this.handover.pins.dir, error: (e as Error).message });
          try {
            this.handover.pins.clear();
          } catch {
            // reported above; `tally state clear` removes what is left
          }
        }
      }
      await this.policies?.close({ handedOver });
      this.reclaimer.close();
      this.counters?.close();
      this.core?.close();
      if (uninstall && this.handover) clearPins(this.handover.pins, this.log);
      this.removals?.close();
      if (this.bpfStatsFd !== undefined) native().closeFd(this.bpfStatsFd);
      this.bpfStatsFd = undefined;
      await this.peers?.stop();
      await this.pods?.stop();
      if (this.core) this.log.info('agent stopped');
    })();
    return this.stopping;
  }
}
