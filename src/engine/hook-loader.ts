/**
 * One policy hook compiled and loaded into its own instance of
 * bpf/policy.bpf.o, attached with the best attach type that works. The
 * agent shares its counter maps with it (reuseMaps); `tally policy check
 * --load` lets it have maps of its own, loads, attaches and lets go.
 *
 * The kernel verifies it on a worker thread (loadObjectAsync), and once it
 * is attached libbpf's copy of the object is freed: a running hook holds a
 * link and a program fd here, and nothing of the 6 MB object.
 */
import { AttachAttempt, attachTypeOf, ChainJoiner, HookResult, loadObjectAsync, LoadedObject } from '../bpf/loader';
import { isNativeError, native } from '../native/addon';
import { bpfObjectPath } from '../util/paths';
import { LabelFilter } from '../labels/label-filter';
import { Hook } from '../policy/model';
import { compileHook, CompileContext, CompileError, HookPlan } from './compile';
import { policyObjectName } from './kernel-features';


export interface HookLoadOptions {
  filter: LabelFilter;
  kernelBtfPath?: string;
  /** Maps shared with the agent's other counting objects, by name. */
  reuseMaps?: Record<string, number>;
  /** tally_owner_epoch of its programs (bpf/counters.bpf.h): they count while tally_epoch holds it. */
  ownerEpoch?: number;
  /** Keep libbpf's object after attach, to reach the hook's own maps by name (tests); by default it is freed. */
  keepObject?: boolean;
  /** Tracepoint chains to run classic tracepoint programs in (tracepoint-chains.ts); without, they attach alone. */
  chains?: ChainJoiner;
}

/** A refusal that is not the kernel's: the compiler's, or the startup probe's. */
function refusal(code: string, reason: string): AttachAttempt {
  return { program: '-', attachType: 'unknown', stage: 'load', errno: 0, code, reason };
}

export async function loadPolicyHook(hook: Hook, ctx: CompileContext, opts: HookLoadOptions): Promise<{ result: HookResult; loaded?: LoadedObject }> {
  let plan: HookPlan;
  try {
    plan = compileHook(hook, ctx);
  } catch (e) {
    const reason = e instanceof CompileError ? e.message : `compiling: ${(e as Error).message}`;
    return { result: { hook: hook.name, refused: [refusal('EINVAL', reason)] } };
  }
  const probed = plan.unavailable.map((u): AttachAttempt => ({ ...refusal('EOPNOTSUPP', u.reason), attachType: attachTypeOf(u.attach.split(/[+ ]/)[0]), program: 'probe' }));
  if (plan.candidates.length === 0) return { result: { hook: hook.name, refused: probed } };
  // A USDT hook's program lives in an object of its own (Makefile: policy-usdt.bpf.o).
  const object = hook.kind === 'uprobe' && hook.usdt ? 'policy-usdt' : policyObjectName(ctx.features);
  try {
    const loaded = await loadObjectAsync({
      objectPath: bpfObjectPath(object),
      hooks: [{ hook: hook.name, candidates: plan.candidates.map((c) => ({ programs: c.programs, constants: { pol: c.config } })) }],
      constants: {
        key_by_binary: Buffer.from([opts.filter.keyByBinary ? 1 : 0]),
        key_by_cgroup: Buffer.from([opts.filter.keyByCgroup ? 1 : 0]),
        // Only the default build names the kfunc (bpf/policy.bpf.c); the others must not take that path.
        have_rdonly_cast: Buffer.from([object === 'policy' && ctx.features.get('bpf_rdonly_cast')?.ok ? 1 : 0]),
        tally_owner_epoch: u64(opts.ownerEpoch ?? 0),
      },
      maxEntries: {
        tally_pol_lpm: Math.max(1, plan.lpm.length),
        tally_pol_binaries: Math.max(1, plan.binaries.length),
        tally_pol_seen: plan.seenCapacity,
        tally_pol_groups_ended: plan.groupEndsCapacity,
        tally_pol_inflight: plan.inflightCapacity,
        tally_pol_binary_paths: plan.binaryPathsCapacity,
      },
      reuseMaps: opts.reuseMaps,
      kernelBtfPath: opts.kernelBtfPath,
      freeAfterAttach: !opts.keepObject,
      chains: opts.chains,
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
      loaded.close();
      return { result };
    }
    return { result, loaded };
  } catch (e) {
    return { result: { hook: hook.name, refused: [...probed, refusal(isNativeError(e) ? e.code : 'E?', (e as Error).message)] } };
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
