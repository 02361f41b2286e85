/**
 * The policies that run: each policy's hooks compiled, loaded into their own
 * instance of bpf/policy.bpf.o (sharing the counter, label-set and binary
 * maps with every other counting object) and attached; its metrics defined
 * in KernelCounters under ids of their own.
 *
 * A policy runs whole or not at all: if one of its hooks cannot compile,
 * load or attach, the policy is in state error with that hook's reason, its
 * other hooks are detached, and every other policy keeps running. Replacing
 * a file's policies touches nothing else: other policies keep their counts.
 *
 * A metric name belongs to one policy. A policy refused because another held
 * one of its names is tried again whenever a policy is removed or replaced:
 * the error goes away with its cause, without anyone touching its file.
 *
 * Changes apply one at a time, in the order they were asked for, and off the
 * event loop's critical path: the kernel verifies each hook on a worker
 * thread (hook-loader.ts), and the manager yields to the event loop between
 * hooks and between policies, so scrapes and probes are answered while a
 * thousand policies load or go.
 */
import { Registry } from 'prom-client';
import { HookResult, LoadedObject } from '../bpf/loader';
import { describeHook, describeHookChain } from '../bpf/hook-report';
import { KernelCounters } from '../collectors/kernel-counters';
import { derivedCounters } from './derived-counters';
import { LabelFilter } from '../labels/label-filter';
import { Logger } from '../util/log';
import { Hook, Metric, Policy, PolicyFileResult, PolicyState, TETRAGON_EVENTS_METRIC } from '../policy/model';
import { formatProblem } from '../policy/problems';
import { CompileContext, selectsByNamespace } from './compile';
import { loadPolicyHook } from './hook-loader';
import { KernelFeatures } from './kernel-features';
import { native } from '../native/addon';
import { counterMetric, namespaceVerdict } from './policy-metrics';
import { PeerTable } from '../peers/peer-table';
import { kernelChains, TracepointChains } from './tracepoint-chains';
import { MemoryReclaimer } from '../util/reclaim-memory';

/** Lets the event loop run what is waiting (a scrape, a probe) before the next piece of work. */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Ids below this are the fixed metrics of hand-written objects (bpf/tcp_bytes.h). */
const FIRST_POLICY_METRIC_ID = 16;

export interface PolicyManagerOptions {
  counters: KernelCounters;
  registry: Registry;
  features: KernelFeatures;
  filter: LabelFilter;
  syscalls: Readonly<Record<string, number>>;
  kernelBtfPath?: string;
  /** Pods are watched, so cgroups of pods have a namespace for matchNamespaces. */
  kubernetes: boolean;
  /** What the peer ids of peer labels stand for (src/peers); without it, only tally's fixed classes. */
  peers?: PeerTable;
  /** A policy with a peer_namespace or peer_service label runs: the peer table needs the cluster's Services (PeerSource). */
  onServicePeers?: () => void;
  /** Gives memory back once a burst of changes is over (shared with the counters' sweeps); the manager's own if none. */
  reclaimer?: MemoryReclaimer;
  /** Hooks on classic tracepoints past the first few share attachments (tracepoint-chains.ts); false: each attaches alone; 'always': none does. */
  chainTracepoints?: boolean | 'always';
  log: Logger;
}

/** A policy as it stands: what tally_policy_state and the log report. */
export interface PolicyStatus {
  policy: string;
  file: string;
  state: PolicyState;
  /** Why it is not ok: its problems, or the hook that failed. */
  reasons: string[];
  hooks: HookResult[];
}

interface Running {
  status: PolicyStatus;
  objects: LoadedObject[];
  metricIds: number[];
  /** Set when it is in error only because another policy held one of its metric names: it is tried again later. */
  blocked?: Policy;
}

export class PolicyManager {
  private readonly byFile = new Map<string, Running[]>();
  /** Metric name -> the policy that defines it (a name belongs to one policy, Tetragon's events metric excepted). */
  private readonly owners = new Map<string, Running>();
  /**
   * Metric ids are never reused. A program closed may still finish a run
   * that was under way (the kernel waits for it only at the next RCU grace
   * period), and its count, landing after its metric's entries were deleted,
   * must not count for whichever metric got the id next. The key's id is 32
   * bits: no agent runs out.
   */
  private nextId = FIRST_POLICY_METRIC_ID;
  /** The last change asked for: each change starts when the one before it has finished. */
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;

  private kernelChains?: ReturnType<typeof kernelChains>;
  /** Collects the garbage a burst of changes left, once it is over (reclaim-memory.ts). */
  private readonly reclaimer: MemoryReclaimer;
  /** Whether the reclaimer is the manager's own, to close with it (the agent closes the one it shares). */
  private readonly ownReclaimer: boolean;

  constructor(private readonly opts: PolicyManagerOptions) {
    this.ownReclaimer = opts.reclaimer === undefined;
    this.reclaimer = opts.reclaimer ?? new MemoryReclaimer();
    if (opts.chainTracepoints === false) return;
    try {
      this.kernelChains = kernelChains({ kernelBtfPath: opts.kernelBtfPath, alonePerPoint: opts.chainTracepoints === 'always' ? 0 : undefined });
    } catch (e) {
      // Every hook then attaches alone: what tally did before chains, and all it needs to count.
      opts.log.warn('tracepoint chains are off: their maps could not be created; hooks on classic tracepoints attach alone (64 per tracepoint for every tool on the host)', { error: (e as Error).message });
    }
  }

  /** Replaces whatever the file had running with its policies as they are now. */
  applyFile(result: PolicyFileResult): Promise<PolicyStatus[]> {
    return this.enqueue(async () => {
      await this.stopFile(result.file);
      const running: Running[] = [];
      if (result.policies.length === 0) running.push(this.failed(undefined, result.file, result.problems.map(formatProblem)));
      // Registered before its policies start, so statuses() shows those already running while the rest load.
      this.byFile.set(result.file, running);
      // The file's own policies first: a name the file held before is its own again, not taken by a policy it blocked.
      for (const policy of result.policies) {
        if (this.closing) break;
        const r = await this.start(policy);
        running.push(r);
        this.report(r.status);
        // What libbpf freed for this policy's hooks goes back now, not after a file of a thousand.
        native().mallocTrim();
      }
      if (result.policies.length === 0) this.report(running[0].status);
      await this.unblock();
      return running.map((r) => r.status);
    }, []);
  }

  /** Stops the file's policies: detaches their hooks and deletes their counters. */
  removeFile(file: string): Promise<void> {
    return this.enqueue(async () => {
      if (!this.byFile.has(file)) return;
      await this.stopFile(file);
      await this.unblock();
    }, undefined);
  }

  /** Resolves once every change asked for so far has been applied. */
  settled(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  /**
   * Runs `change` after the changes before it, with the event loop let run
   * first; `closed` is what a change asked for after close() returns. libbpf
   * frees megabytes per object, which glibc would otherwise keep: the heap is
   * trimmed after each change.
   */
  private enqueue<T>(change: () => Promise<T>, closed: T): Promise<T> {
    const run = this.queue.then(async () => {
      if (this.closing) return closed;
      await yieldToLoop();
      try {
        return await change();
      } finally {
        native().mallocTrim();
        this.reclaimer.request();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async stopFile(file: string): Promise<void> {
    const running = this.byFile.get(file) ?? [];
    // Out of statuses() before the first yield: a scrape between two stops
    // must not show a policy as running (tally_policy_state ok) whose
    // metrics are already gone.
    this.byFile.delete(file);
    for (const r of running) {
      this.stop(r);
      await yieldToLoop();
    }
  }

  /**
   * Tries again each policy that was refused for a metric name another
   * policy held, in file order (the order of a fresh start). One pass is
   * enough: a policy that starts here only takes names, it frees none.
   */
  private async unblock(): Promise<void> {
    for (const file of [...this.byFile.keys()].sort()) {
      const running = this.byFile.get(file)!;
      for (const [i, r] of running.entries()) {
        if (!r.blocked || this.closing) continue;
        const next = await this.start(r.blocked);
        running[i] = next;
        // Still blocked, by the same policy: nothing to report again.
        if (!next.blocked || next.status.reasons.join() !== r.status.reasons.join()) this.report(next.status);
      }
    }
  }

  statuses(): PolicyStatus[] {
    return [...this.byFile.values()].flat().map((r) => r.status);
  }

  /** Waits for the change under way (a load in the kernel cannot be cut short), drops those queued, and stops every policy. */
  /**
   * Stops applying changes and returns the fds of every running hook's
   * links, to pin them before close() (docs/restart.md).
   */
  async quiesce(): Promise<number[]> {
    this.closing = true;
    await this.queue;
    if (this.ownReclaimer) this.reclaimer.close();
    const links = [...this.byFile.values()].flat().flatMap((r) => r.objects.flatMap((o) => o.object.linkFds()));
    const k = this.kernelChains;
    // The chains' program array too: emptied when its last fd or pin goes, it is what keeps chained hooks running.
    return k ? [...links, ...k.chains.linkFds(), k.programArrayFd] : links;
  }

  /** The tracepoint chains, for tally's health metrics. */
  get chains(): TracepointChains | undefined {
    return this.kernelChains?.chains;
  }

  /**
   * Detaches every policy (closing its objects) and undefines its metrics.
   * handedOver: the counter maps, and links pinned from these objects, go on
   * for the next agent (docs/restart.md): the objects close, but their
   * metrics' kernel entries stay, for the next agent to read.
   */
  async close(opts: { handedOver?: boolean } = {}): Promise<void> {
    this.closing = true;
    await this.queue;
    for (const r of [...this.byFile.values()].flat()) {
      // Handed over, chained hooks stay in the pinned chains: object.close() leaves them there.
      if (opts.handedOver) for (const o of r.objects) o.object.close();
      else this.stop(r);
    }
    this.byFile.clear();
    this.kernelChains?.close();
    this.kernelChains = undefined;
  }

  private report(s: PolicyStatus): void {
    const fields = { policy: s.policy, file: s.file, state: s.state };
    if (s.state === 'error') this.opts.log.error('policy failed', { ...fields, reason: s.reasons.join('; ') });
    else if (s.state === 'partial') this.opts.log.warn('policy loaded in part', { ...fields, reason: s.reasons.join('; ') });
    else this.opts.log.info('policy loaded', { ...fields, hooks: s.hooks.map(describeHook).join('; ') });
    if (s.hooks.length) this.opts.log.debug('policy hooks tried', { ...fields, hooks: s.hooks.map(describeHookChain).join('; ') });
  }

  private failed(policy: Policy | undefined, file: string, reasons: string[], hooks: HookResult[] = []): Running {
    return { status: { policy: policy?.name ?? '(unnamed)', file, state: 'error', reasons, hooks }, objects: [], metricIds: [] };
  }

  private async start(policy: Policy): Promise<Running> {
    // As tally policy check prints them (FILE:LINE:COLUMN: PATH: MESSAGE), so the log and the checker say the same.
    const unsupported = policy.problems.filter((p) => p.severity !== 'warning').map(formatProblem);
    if (policy.state === 'error' || !policy.name) return this.failed(policy, policy.file, unsupported);
    const clash = policy.hooks.flatMap((h) => h.metrics).find((m) => m.name !== TETRAGON_EVENTS_METRIC && this.owners.has(m.name));
    if (clash) {
      const owner = this.owners.get(clash.name)!.status;
      const why = `metric ${clash.name} is already defined by policy ${owner.policy} in ${owner.file}; a metric name belongs to one policy: rename it in one of them (this policy loads by itself once the name is free)`;
      return { ...this.failed(policy, policy.file, [why]), blocked: policy };
    }

    // One metric id per metric name of this policy; the hooks feeding it share it.
    const ids = new Map<string, number>();
    const metricIds: number[] = [];
    const newId = (): number => {
      const id = this.nextId++;
      metricIds.push(id);
      return id;
    };
    const idOf = (m: Metric): number => {
      let id = ids.get(m.name);
      if (id === undefined) {
        id = newId();
        ids.set(m.name, id);
      }
      return id;
    };
    const derived = derivedCounters(policy);
    // Hooks with matchNamespaces: one pending id per hook and metric (engine/compile.ts).
    const pendingIds = new Map<Hook, Map<string, number>>();
    // Overflow entries exist before any hook attaches, so no early event finds none.
    try {
      for (const m of policy.hooks.flatMap((h) => h.metrics)) {
        const id = idOf(m); // derived counters too: they are defined, under an id the kernel never writes
        if (!derived.has(m.name)) this.opts.counters.reserveOverflow({ id, name: m.name, type: m.type });
      }
      for (const h of policy.hooks.filter(selectsByNamespace)) {
        const byName = new Map<string, number>();
        pendingIds.set(h, byName);
        for (const m of h.metrics.filter((x) => !derived.has(x.name))) {
          const id = newId();
          byName.set(m.name, id);
          this.opts.counters.reserveOverflow({ id, name: m.name, type: m.type });
        }
      }
    } catch (e) {
      this.release(metricIds);
      return this.failed(policy, policy.file, [(e as Error).message]);
    }
    const hookNumber = new Map(policy.hooks.map((h, i) => [h, i] as const));
    const objects: LoadedObject[] = [];
    const results: HookResult[] = [];
    const attached = new Set<string>();
    const failed = new Map<string, HookResult>();
    // Hooks first, then the fallbacks of those that could not attach.
    const order = [...policy.hooks.filter((h) => !h.fallbackFor), ...policy.hooks.filter((h) => h.fallbackFor)];
    for (const hook of order) {
      if (hook.fallbackFor && attached.has(hook.fallbackFor)) continue; // not needed on this kernel
      const ctx: CompileContext = {
        features: this.opts.features,
        syscalls: this.opts.syscalls,
        metricId: idOf,
        pendingMetricId: (m) => pendingIds.get(hook)!.get(m.name)!,
        derived: (m) => derived.has(m.name),
        constLabel: () => hookNumber.get(hook),
      };
      await yieldToLoop();
      const { result, loaded } = await loadPolicyHook(hook, ctx, {
        filter: this.opts.filter,
        kernelBtfPath: this.opts.kernelBtfPath,
        reuseMaps: { ...this.opts.counters.sharedMaps(), ...this.kernelChains?.reuseMaps },
        ownerEpoch: this.opts.counters.ownerEpoch,
        chains: this.kernelChains?.chains,
      });
      results.push(result);
      if (loaded) objects.push(loaded);
      if (result.program) {
        attached.add(hook.name);
        if (hook.fallbackFor) failed.delete(hook.fallbackFor);
      } else {
        failed.set(hook.name, result);
      }
    }
    // A hook that failed with no fallback standing in for it fails the policy.
    const unreplaced = [...failed.entries()].filter(([name]) => !policy.hooks.some((h) => h.fallbackFor === name && attached.has(h.name)));
    const failure = unreplaced.length ? unreplaced.map(([, r]) => describeHook(r)).join('; ') : undefined;
    if (failure) {
      for (const o of objects) o.close();
      this.release(metricIds);
      return this.failed(policy, policy.file, [failure], results);
    }
    // Define the metrics only now: a policy in error exposes nothing.
    const running: Running = { status: { policy: policy.name, file: policy.file, state: 'ok', reasons: [], hooks: results }, objects, metricIds };
    try {
      for (const [metricName, id] of ids) {
        const m = policy.hooks.flatMap((h) => h.metrics).find((x) => x.name === metricName)!;
        const hook = policy.hooks.find((h) => h.metrics.includes(m))!;
        const sumOf = derived.get(metricName);
        // Not spread: a metric by peer computes its signature when read (engine/policy-metrics.ts).
        const metric = counterMetric(m, id, hook, policy, this.opts.peers);
        if (sumOf) metric.sumOf = ids.get(sumOf)!;
        this.opts.counters.define(metric, this.opts.registry);
        if (metricName !== TETRAGON_EVENTS_METRIC) this.owners.set(metricName, running);
      }
      if (policy.hooks.some((h) => h.metrics.some((m) => m.labels.some((l) => l.peer === 'namespace' || l.peer === 'service')))) this.opts.onServicePeers?.();
    } catch (e) {
      // The registry refused a name validation let through: the policy fails whole, as any other failure, and leaves nothing behind.
      this.stop(running);
      return this.failed(policy, policy.file, [(e as Error).message], results);
    }
    for (const [hook, byName] of pendingIds) {
      if (!attached.has(hook.name)) continue; // a fallback this kernel did not need: it counts nothing
      const admits = namespaceVerdict(hook);
      for (const [metricName, id] of byName) this.opts.counters.definePending({ id, metric: ids.get(metricName)!, admits });
    }
    const reasons = [...unsupported];
    if (pendingIds.size > 0 && !this.opts.kubernetes) {
      reasons.push('matchNamespaces: tally is not watching pods (no kubeconfig or in-cluster service account), so no event has a Kubernetes namespace: In never matches, NotIn always does');
    }
    running.status.state = policy.state === 'partial' || reasons.length > unsupported.length ? 'partial' : 'ok';
    running.status.reasons = reasons;
    return running;
  }

  private stop(r: Running): void {
    for (const o of r.objects) o.close();
    this.release(r.metricIds);
    for (const [name, owner] of this.owners) if (owner === r) this.owners.delete(name);
  }

  private release(ids: number[]): void {
    this.opts.counters.undefine(ids);
  }
}
