/**
 * What this kernel can attach, learned once at startup by loading and
 * attaching an empty program of each kind (bpf/probe.bpf.c). Hooks then try
 * only attach types that work, and a hook that has none left says exactly
 * which were refused and why.
 */
import * as fs from 'node:fs';
import { AttachTarget, isNativeError, native } from '../native/addon';
import { bpfObjectPath } from '../util/paths';
import { explain } from '../bpf/loader';
import { findCgroup2Mount } from '../labels/cgroup-mount';

export const PROBED = ['fentry', 'kprobe', 'tp_btf', 'raw_tp', 'tracepoint', 'uprobe', 'cgroup_skb'] as const;
export type ProbedAttach = (typeof PROBED)[number];
/** Kernel functions the engine uses where they exist (bpf/probe.bpf.c: probe_kfunc_NAME). */
export const PROBED_KFUNCS = ['bpf_rdonly_cast'] as const;
export type ProbedKfunc = (typeof PROBED_KFUNCS)[number];
/** Helpers the default policy build calls (bpf/probe.bpf.c: probe_helper_NAME); without one, the compat build loads. */
export const PROBED_HELPERS = ['bpf_loop', 'bpf_get_current_task_btf'] as const;
export type ProbedHelper = (typeof PROBED_HELPERS)[number];
export type ProbedFeature = ProbedAttach | ProbedKfunc | ProbedHelper;

/**
 * Features to treat as missing whatever the kernel says, comma-separated
 * (TALLY_KERNEL_WITHOUT=bpf_rdonly_cast,tp_btf): how the tests run the paths
 * an older or locked-down kernel takes.
 */
function pretendMissing(): Set<string> {
  return new Set((process.env.TALLY_KERNEL_WITHOUT ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

const ALL: readonly ProbedFeature[] = [...PROBED, ...PROBED_KFUNCS, ...PROBED_HELPERS];

function programPrefix(kind: ProbedFeature): string {
  if ((PROBED_KFUNCS as readonly string[]).includes(kind)) return 'kfunc_';
  if ((PROBED_HELPERS as readonly string[]).includes(kind)) return 'helper_';
  return '';
}

export interface Support {
  ok: boolean;
  /** Why not: errno code and the kernel's or libbpf's words. */
  reason?: string;
}

export type KernelFeatures = ReadonlyMap<ProbedFeature, Support>;

/** The C library of this process, a uprobe target every Linux host has. */
function libcPath(): string | undefined {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  return /\s(\/\S*libc\.so\.6)$/m.exec(maps)?.[1];
}

export function probeKernel(kernelBtfPath?: string): KernelFeatures {
  const out = new Map<ProbedFeature, Support>();
  const missing = pretendMissing();
  for (const kind of ALL) {
    if (missing.has(kind)) {
      out.set(kind, { ok: false, reason: 'ENOTSUP: left out by TALLY_KERNEL_WITHOUT' });
      continue;
    }
    const program = `probe_${programPrefix(kind)}${kind}`;
    // Kfuncs apart: an object naming one the kernel lacks can fail whole (bpf/probe-kfunc.bpf.c).
    const object = programPrefix(kind) === 'kfunc_' ? 'probe-kfunc' : 'probe';
    const obj = new (native().BpfObject)(bpfObjectPath(object), kernelBtfPath ? { kernelBtfPath } : undefined);
    try {
      for (const p of obj.programs()) obj.setAutoload(p.name, p.name === program);
      obj.load();
      let target: AttachTarget | undefined;
      if (kind === 'uprobe') {
        const libc = libcPath();
        if (!libc) throw new Error('no libc.so.6 mapped in this process to probe uprobes with');
        target = { kind: 'uprobe', path: libc, func: 'getpid', retprobe: false };
      }
      // Attached for a moment to the cgroup v2 root, as packet hooks are: it lets every packet through.
      if (kind === 'cgroup_skb') target = { kind: 'cgroup', path: findCgroup2Mount() };
      obj.attach(program, target);
      out.set(kind, { ok: true });
    } catch (e) {
      const reason = isNativeError(e) ? `${e.code}: ${explain(e.log, program) || e.message}` : (e as Error).message;
      out.set(kind, { ok: false, reason });
    } finally {
      obj.close();
    }
  }
  return out;
}

/**
 * The policy object this kernel loads: the default build; the compat build
 * (bpf/compat.bpf.h) where a helper the default calls is missing; or the
 * default build without kfuncs where bpf_rdonly_cast is missing, since an
 * object that names a kfunc the kernel lacks fails whole without
 * CAP_SYS_ADMIN (bpf/policy.bpf.c).
 */
export function policyObjectName(f: KernelFeatures): 'policy' | 'policy-compat' | 'policy-nokfunc' {
  if (!PROBED_HELPERS.every((h) => f.get(h)?.ok !== false)) return 'policy-compat';
  return f.get('bpf_rdonly_cast')?.ok === false ? 'policy-nokfunc' : 'policy';
}

export function describeFeatures(f: KernelFeatures): string {
  return ALL.map((k) => `${k}=${f.get(k)?.ok ? 'yes' : 'no'}`).join(' ');
}
