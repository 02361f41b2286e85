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
 */
import { Registry } from 'prom-client';
import { AttachAttempt, describeHook, HookResult, loadObject, LoadedObject } from '../bpf/loader';
import { bpfObjectPath } from '../util/paths';
import { CounterMetric, KernelCounters } from '../collectors/kernel-counters';
import { LABEL_OVERFLOW } from '../bpf/layout';
import { FilterLabel } from '../labels/label-filter';
import { Logger } from '../util/log';
import { EXIT_STATUSES, Hook, Metric, Policy, PolicyFileResult, PolicyState, TETRAGON_EVENTS_METRIC } from '../policy/model';
import { compileHook, CompileContext, CompileError, HookPlan } from './compile';
import { KernelFeatures } from './kernel-features';
import { POL } from './hook-config';
import { native } from '../native/addon';

export const POLICY_OBJECT = 'policy';
/** Ids below this are the fixed metrics of hand-written objects (bpf/tcp_bytes.h). */
const FIRST_POLICY_METRIC_ID = 16;

export interface PolicyManagerOptions {
  counters: KernelCounters;
  registry: Registry;
  features: KernelFeatures;
  filter: readonly FilterLabel[];
  syscalls: Readonly<Record<string, number>>;
  kernelBtfPath?: string;
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
}

export class PolicyManager {
  private readonly byFile = new Map<string, Running[]>();
  /** Metric name -> the policy that defines it (a name belongs to one policy, Tetragon's events metric excepted). */
  private readonly owners = new Map<string, string>();
  private nextId = FIRST_POLICY_METRIC_ID;
  private readonly freeIds: number[] = [];

  constructor(private readonly opts: PolicyManagerOptions) {}

  /** Replaces whatever the file had running with its policies as they are now. */
  applyFile(result: PolicyFileResult): PolicyStatus[] {
    this.removeFile(result.file);
    const running: Running[] = [];
    if (result.policies.length === 0) {
      running.push(this.failed(undefined, result.file, result.problems.map((p) => `${p.path}: ${p.message}`)));
    }
    for (const policy of result.policies) running.push(this.start(policy));
    this.byFile.set(result.file, running);
    for (const r of running) this.report(r.status);
    return running.map((r) => r.status);
  }

  /** Stops the file's policies: detaches their hooks and deletes their counters. */
  removeFile(file: string): void {
    for (const r of this.byFile.get(file) ?? []) this.stop(r);
    this.byFile.delete(file);
  }

  statuses(): PolicyStatus[] {
    return [...this.byFile.values()].flat().map((r) => r.status);
  }

  close(): void {
    for (const file of [...this.byFile.keys()]) this.removeFile(file);
  }

  private report(s: PolicyStatus): void {
    const fields = { policy: s.policy, file: s.file, state: s.state };
    if (s.state === 'error') this.opts.log.error('policy failed', { ...fields, reason: s.reasons.join('; ') });
    else if (s.state === 'partial') this.opts.log.warn('policy loaded in part', { ...fields, reason: s.reasons.join('; ') });
    else this.opts.log.info('policy loaded', { ...fields, hooks: s.hooks.map(describeHook).join('; ') });
  }

  private failed(policy: Policy | undefined, file: string, reasons: string[], hooks: HookResult[] = []): Running {
    return { status: { policy: policy?.name ?? '(unnamed)', file, state: 'error', reasons, hooks }, objects: [], metricIds: [] };
  }

  private start(policy: Policy): Running {
    const unsupported = policy.problems.filter((p) => p.severity !== 'warning').map((p) => `${p.path}: ${p.message}`);
    if (policy.state === 'error' || !policy.name) return this.failed(policy, policy.file, unsupported);
    const name = policy.name;
    const clash = policy.hooks.flatMap((h) => h.metrics).find((m) => m.name !== TETRAGON_EVENTS_METRIC && this.owners.has(m.name));
    if (clash) return this.failed(policy, policy.file, [`metric ${clash.name} is already defined by policy ${this.owners.get(clash.name)}`]);

    // One metric id per metric name of this policy; the hooks feeding it share it.
    const ids = new Map<string, number>();
    const metricIds: number[] = [];
    const idOf = (m: Metric): number => {
      let id = ids.get(m.name);
      if (id === undefined) {
        id = this.freeIds.pop() ?? this.nextId++;
        ids.set(m.name, id);
        metricIds.push(id);
      }
      return id;
    };
    const hookNumber = new Map(policy.hooks.map((h, i) => [h, i] as const));
    const objects: LoadedObject[] = [];
    const results: HookResult[] = [];
    let failure: string | undefined;
    for (const hook of policy.hooks) {
      const ctx: CompileContext = {
        features: this.opts.features,
        syscalls: this.opts.syscalls,
        metricId: idOf,
        constLabel: () => hookNumber.get(hook),
      };
      const { result, loaded } = this.loadHook(hook, ctx);
      results.push(result);
      if (loaded) objects.push(loaded);
      if (!result.program) {
        failure = describeHook(result);
        break;
      }
    }
    if (failure) {
      for (const o of objects) o.object.close();
      this.release(metricIds);
      return this.failed(policy, policy.file, [failure], results);
    }
    // Define the metrics only now: a policy in error exposes nothing.
    for (const [metricName, id] of ids) {
      const m = policy.hooks.flatMap((h) => h.metrics).find((x) => x.name === metricName)!;
      const hook = policy.hooks.find((h) => h.metrics.includes(m))!;
      this.opts.counters.define(this.counterMetric(m, id, hook, policy), this.opts.registry);
      if (metricName !== TETRAGON_EVENTS_METRIC) this.owners.set(metricName, name);
    }
    const state: PolicyState = policy.state === 'partial' ? 'partial' : 'ok';
    return { status: { policy: name, file: policy.file, state, reasons: unsupported, hooks: results }, objects, metricIds };
  }

  private loadHook(hook: Hook, ctx: CompileContext): { result: HookResult; loaded?: LoadedObject } {
    let plan: HookPlan;
    try {
      plan = compileHook(hook, ctx);
    } catch (e) {
      const reason = e instanceof CompileError ? e.message : `compiling: ${(e as Error).message}`;
      return { result: { hook: hook.name, refused: [{ program: '-', attachType: 'unknown', stage: 'load', errno: 0, code: 'EINVAL', reason }] } };
    }
    const probed: AttachAttempt[] = plan.unavailable.map((u) => ({ program: '-', attachType: 'unknown', stage: 'load', errno: 0, code: 'EOPNOTSUPP', reason: `${u.attach}: ${u.reason}` }));
    if (plan.candidates.length === 0) return { result: { hook: hook.name, refused: probed } };
    const keyByBinary = this.opts.filter.includes('binary');
    const keyByCgroup = this.opts.filter.some((l) => l !== 'binary');
    try {
      const loaded = loadObject({
        objectPath: bpfObjectPath(POLICY_OBJECT),
        hooks: [{ hook: hook.name, candidates: plan.candidates.map((c) => ({ programs: c.programs, constants: { pol: c.config } })) }],
        constants: {
          key_by_binary: Buffer.from([keyByBinary ? 1 : 0]),
          key_by_cgroup: Buffer.from([keyByCgroup ? 1 : 0]),
        },
        maxEntries: {
          tally_pol_lpm: Math.max(1, plan.lpm.length),
          tally_pol_binaries: Math.max(1, plan.binaries.length),
          tally_pol_seen: plan.seenCapacity,
        },
        reuseMaps: this.opts.counters.sharedMaps(),
        kernelBtfPath: this.opts.kernelBtfPath,
        beforeAttach: (obj) => {
          const lpm = obj.mapFd('tally_pol_lpm');
          for (const e of plan.lpm) native().mapUpdate(lpm, e.key, u32(e.value));
          const bins = obj.mapFd('tally_pol_binaries');
          for (const k of plan.binaries) native().mapUpdate(bins, k, Buffer.from([1]));
        },
      });
      const result = loaded.hooks[0];
      result.refused.unshift(...probed);
      if (!result.program) {
        loaded.object.close();
        return { result };
      }
      return { result, loaded };
    } catch (e) {
      return { result: { hook: hook.name, refused: [...probed, { program: '-', attachType: 'unknown', stage: 'load', errno: 0, code: 'E?', reason: (e as Error).message }] } };
    }
  }

  /** What KernelCounters needs to label a policy metric's series. */
  private counterMetric(m: Metric, id: number, hook: Hook, policy: Policy): CounterMetric {
    const base = { id, name: m.name, help: m.help, type: m.type, scale: m.value.kind === 'latency' ? 1e-9 : 1 } as const;
    if (Object.keys(m.constLabels).length > 0) {
      const hookNames = policy.hooks.map((h) => h.name);
      return { ...base, labelNames: ['policy', 'hook'], labels: (l0) => ({ policy: policy.name!, hook: hookNames[Number(l0)] ?? 'unknown' }) };
    }
    if (m.labels.length === 0) return base;
    const decoders = m.labels.map((l) => {
      const arg = hook.args.find((a) => a.index === l.arg);
      const signed = !l.field && arg !== undefined && /^(int|int8|int16|int32|int64|long|fd)$/.test(arg.type);
      return (v: bigint): string => {
        if (v === LABEL_OVERFLOW) return l.overflowValue;
        if (l.prefixes) return l.prefixes[Number(v) - 1] ?? l.overflowValue;
        if (l.field === 'exitStatus') return EXIT_STATUSES[Number(v)] ?? l.overflowValue;
        return (signed ? BigInt.asIntN(64, v) : v).toString();
      };
    });
    return {
      ...base,
      labelNames: m.labels.map((l) => l.name),
      labels: (l0, l1) => {
        const out: Record<string, string> = {};
        m.labels.forEach((l, i) => (out[l.name] = decoders[i](i === 0 ? l0 : l1)));
        return out;
      },
    };
  }

  private stop(r: Running): void {
    for (const o of r.objects) o.object.close();
    this.release(r.metricIds);
    for (const [name, owner] of this.owners) if (owner === r.status.policy) this.owners.delete(name);
  }

  private release(ids: number[]): void {
    this.opts.counters.undefine(ids);
    this.freeIds.push(...ids);
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

/** Caps from bpf/policy.h, for messages. */
export const ENGINE_LIMITS = POL;
