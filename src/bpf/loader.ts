/**
 * Loads one BPF object and attaches each of its hooks with the best attach
 * type the running kernel accepts.
 *
 * A hook lists candidate programs in order of preference (fentry > kprobe >
 * tp_btf > raw_tp > tracepoint). The loader enables one candidate per hook,
 * loads, and attaches; when the kernel refuses a candidate at load or attach
 * time, that candidate is recorded with the kernel's reason, the object is
 * reopened with the next candidate, and the hooks that worked are unaffected.
 * A hook with no candidate left is reported as failed; the rest run.
 */
import { AttachTarget, isNativeError, native, NativeBpfObject, NativeProgramInfo } from '../native/addon';
import { CPU_INDEXED_MAPS } from './layout';
import { ChainJoiner, ChainPlaces } from './chain-places';

export type { ChainJoiner } from './chain-places';

/** Attach types, most preferred first. */
export const ATTACH_PREFERENCE = ['fentry', 'fexit', 'kprobe', 'kretprobe', 'tp_btf', 'raw_tp', 'tracepoint', 'uprobe', 'uretprobe', 'usdt', 'cgroup_skb'] as const;
export type AttachType = (typeof ATTACH_PREFERENCE)[number];

/** One program of a candidate, and what it attaches to when its section does not say. */
export interface CandidateProgram {
  name: string;
  target?: AttachTarget;
  /** fentry/fexit: the kernel function, set before load. */
  attachTo?: string;
  /**
   * A classic tracepoint program that can run in a chain (bpf/chain.h): the
   * `const volatile` that holds its slot. With LoadOptions.chains it joins
   * the tracepoint's chain instead of attaching there itself.
   */
  chainSlot?: string;
}

/**
 * A way to run a hook: one program, or several that only work together (a
 * kprobe and its kretprobe), loaded and attached together.
 */
export type Candidate = string | { programs: CandidateProgram[]; constants?: Record<string, Buffer> };

export interface HookSpec {
  /** Stable name of what is hooked, e.g. "sock:sock_send_length". */
  hook: string;
  /** Most preferred first. */
  candidates: Candidate[];
}

function programsOf(c: Candidate): CandidateProgram[] {
  return typeof c === 'string' ? [{ name: c }] : c.programs;
}

/** The program a candidate is known by in reports: its first. */
function nameOf(c: Candidate): string {
  return programsOf(c)[0].name;
}

/**
 * A hook's cost in the kernel: the run time of all its programs (entry and
 * return), and the runs of the first, so that time over runs is per event.
 */
function hookProgramInfo(obj: NativeBpfObject, programs: string[]): NativeProgramInfo | null {
  const infos = programs.map((p) => obj.programInfo(p));
  if (infos.some((i) => i === null)) return null;
  const [first, ...rest] = infos as NativeProgramInfo[];
  return rest.reduce((a, i) => ({ ...a, runTimeNs: a.runTimeNs + i.runTimeNs, recursionMisses: a.recursionMisses + i.recursionMisses }), first);
}

export interface AttachAttempt {
  program: string;
  attachType: AttachType | 'unknown';
  stage: 'load' | 'attach';
  errno: number;
  code: string;
  /** The kernel's and libbpf's explanation: verifier log tail or attach message. */
  reason: string;
}

export interface HookResult {
  hook: string;
  /** The program that runs, or undefined when no candidate could be used. */
  program?: string;
  attachType?: AttachType | 'unknown';
  /** Candidates that were refused, in the order they were tried. */
  refused: AttachAttempt[];
  /** The kernel's run time (all the hook's programs) and run count (its first), while its object is loaded. */
  programInfo?: () => NativeProgramInfo | null;
  /** Where in the kernel (or a binary) each of its programs is attached: attachPointOf. */
  attachPoints?: string[];
}

/**
 * The kernel's attach point of a program, named by how it attaches there:
 * "tracepoint:syscalls:sys_exit_write", "raw_tp:sys_exit", "tp_btf:sched_process_exec",
 * "kprobe:tcp_sendmsg", "kretprobe:…", "fentry:…", "uprobe:/bin/bash:readline",
 * "usdt:/usr/bin/python3.11:python:gc__start".
 * Programs of any policy on one point add up there: the kernel caps a
 * tracepoint at 64 perf-event programs (BPF_TRACE_MAX_PROGS), for every tool
 * on the host together.
 */
export function attachPointOf(p: CandidateProgram, section: string): string {
  const t = p.target;
  if (t?.kind === 'kprobe') return `${t.retprobe ? 'kretprobe' : 'kprobe'}:${t.func}`;
  if (t?.kind === 'uprobe') return `${t.retprobe ? 'uretprobe' : 'uprobe'}:${t.path}:${t.func}`;
  if (t?.kind === 'usdt') return `usdt:${t.path}:${t.provider}:${t.name}`;
  if (t?.kind === 'tracepoint') return `tracepoint:${t.category}:${t.name}`;
  if (t?.kind === 'raw_tp') return `raw_tp:${t.name}`;
  if (t?.kind === 'cgroup') return `${section.replace('/', ':')}:${t.path}`;
  const [, ...rest] = section.split('/');
  return `${attachTypeOf(section)}:${p.attachTo ?? rest.join(':')}`;
}

export interface LoadOptions {
  objectPath: string;
  hooks: HookSpec[];
  /** `const volatile` globals, already encoded. */
  constants?: Record<string, Buffer>;
  /** Map capacities to set before load. */
  maxEntries?: Record<string, number>;
  kernelBtfPath?: string;
  /** Maps to share with other objects instead of creating them: name -> fd. */
  reuseMaps?: Record<string, number>;
  /** Runs after load and before any attach, e.g. to seed maps. */
  beforeAttach?: (obj: NativeBpfObject) => void;
  /** Once attached, keep only the links and programs (NativeBpfObject.freeObject): its maps are not needed by name again. */
  freeAfterAttach?: boolean;
  /** Tracepoint chains for programs with a chainSlot; without, they attach where they run. */
  chains?: ChainJoiner;
}

export interface LoadedObject {
  object: NativeBpfObject;
  hooks: HookResult[];
  /** Leaves the tracepoint chains it joined, then closes the object. (object.close() alone leaves them running: a handover.) */
  close(): void;
}

export function attachTypeOf(section: string): AttachType | 'unknown' {
  const prefix = section.split('/')[0];
  if (prefix === 'tp') return 'tracepoint';
  if (prefix === 'raw_tracepoint') return 'raw_tp';
  return (ATTACH_PREFERENCE as readonly string[]).includes(prefix) ? (prefix as AttachType) : 'unknown';
}

/** The lines of a libbpf log that explain a failure, without its noise. */
export function explain(log: string[], program: string): string {
  const begin = log.findIndex((l) => l.includes('-- BEGIN PROG LOAD LOG --'));
  const end = log.findIndex((l) => l.includes('-- END PROG LOAD LOG --'));
  if (begin >= 0 && end > begin) {
    // The verifier's conclusion is at the end of its log.
    return log.slice(Math.max(begin + 1, end - 6), end).map((l) => l.trim()).join(' | ');
  }
  // libbpf suggests raising RLIMIT_MEMLOCK on any EPERM; kernels since 5.11
  // account BPF memory to the cgroup instead, so the hint only misleads.
  const own = log.filter((l) => (l.includes(`'${program}'`) || !l.startsWith('libbpf: prog')) && !l.includes("ulimit -l"));
  return own.slice(-4).map((l) => l.replace(/^libbpf: /, '').trim()).join(' | ');
}

/** Which program a failed bpf_object__load() was refused on, per libbpf's log. */
export function failedProgram(log: string[]): string | undefined {
  for (const line of log) {
    const m = /prog '([^']+)': (?:failed to load|BPF program load failed|failed to attach)/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The attempts of a load, as steps for a driver (Step): open the object,
 * then load it configured for the current candidates; on a refusal, again
 * with the next. One sequence for both ways of loading (loadObject on the
 * event loop, loadObjectAsync off it).
 */
function* attempts(opts: LoadOptions): Generator<Step, LoadedObject, unknown> {
  const addon = native();
  const choice = new Map<string, number>(opts.hooks.map((h) => [h.hook, 0]));
  const refused = new Map<string, AttachAttempt[]>(opts.hooks.map((h) => [h.hook, []]));
  // Which hook a program serves: a failure names the program, the fallback is the hook's.
  const owner = new Map<string, HookSpec>();
  for (const h of opts.hooks) for (const c of h.candidates) for (const p of programsOf(c)) owner.set(p.name, h);

  const active = (h: HookSpec): Candidate | undefined => h.candidates[choice.get(h.hook)!];
  const refuse = (program: string, stage: 'load' | 'attach', e: unknown, sections: Map<string, string>): void => {
    const hook = owner.get(program)!;
    const err = isNativeError(e) ? e : undefined;
    refused.get(hook.hook)!.push({
      program,
      attachType: attachTypeOf(sections.get(program) ?? ''),
      stage,
      errno: err?.errno ?? 0,
      code: err?.code ?? 'E?',
      reason: err ? explain(err.log, program) || err.message : String(e),
    });
    choice.set(hook.hook, choice.get(hook.hook)! + 1);
  };

  const maxAttempts = opts.hooks.reduce((n, h) => n + h.candidates.length, 0) + 1;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const obj = (yield { open: opts.objectPath, options: opts.kernelBtfPath ? { kernelBtfPath: opts.kernelBtfPath } : undefined }) as NativeBpfObject;
    const sections = new Map(obj.programs().map((p) => [p.name, p.section]));
    let places: ChainPlaces | undefined;
    try {
      for (const h of opts.hooks) for (const c of h.candidates) for (const p of programsOf(c)) {
        if (!sections.has(p.name)) throw new Error(`hook ${h.hook}: no program named '${p.name}' in ${opts.objectPath}`);
      }
      const chosen = opts.hooks.map(active).filter((c): c is Candidate => c !== undefined).flatMap(programsOf);
      const enabled = new Set(chosen.map((p) => p.name));
      for (const p of sections.keys()) obj.setAutoload(p, enabled.has(p));
      const attachTargets = Object.fromEntries(chosen.filter((p) => p.attachTo).map((p) => [p.name, p.attachTo!]));
      const constants = { ...opts.constants };
      for (const h of opts.hooks) {
        const c = active(h);
        if (c && typeof c !== 'string') Object.assign(constants, c.constants);
      }
      for (const [name, bytes] of Object.entries(constants)) obj.setConstant(name, bytes);
      for (const [name, n] of Object.entries(opts.maxEntries ?? {})) obj.setMaxEntries(name, n);
      for (const m of obj.maps()) if (CPU_INDEXED_MAPS.includes(m.name)) obj.setMaxEntries(m.name, addon.numPossibleCpus());
      for (const [name, fd] of Object.entries(opts.reuseMaps ?? {})) obj.reuseMap(name, fd);
      places = new ChainPlaces(opts.chains, chosen, obj);
      const chain = places;

      const loadError = yield { load: obj, attachTargets };
      if (loadError !== undefined) {
        const e = loadError;
        const prog = isNativeError(e) ? failedProgram(e.log) : undefined;
        chain.giveBack();
        if (!prog || !enabled.has(prog)) throw e; // not a program we can fall back from
        refuse(prog, 'load', e, sections);
        obj.close();
        continue;
      }
      opts.beforeAttach?.(obj);

      let attachFailed = false;
      for (const p of chosen) {
        try {
          if (!chain.join(p.name, obj)) obj.attach(p.name, p.target);
        } catch (e) {
          refuse(p.name, 'attach', e, sections);
          attachFailed = true;
          break;
        }
      }
      if (attachFailed) {
        chain.giveBack();
        obj.close();
        continue;
      }
      // The kernel holds what runs; libbpf's copy of the object is megabytes that nothing reads again.
      if (opts.freeAfterAttach) obj.freeObject();
      let closed = false;
      return {
        object: obj,
        close: () => {
          if (closed) return;
          closed = true;
          // The chains first: the program array holds chained programs, not this object.
          chain.giveBack();
          obj.close();
        },
        hooks: opts.hooks.map((h) => {
          const c = active(h);
          const program = c ? nameOf(c) : undefined;
          return {
            hook: h.hook,
            program,
            attachType: program ? attachTypeOf(sections.get(program)!) : undefined,
            refused: refused.get(h.hook)!,
            // A chained program's runs are its dispatcher's: the kernel times the chain whole (TracepointChains.stats).
            programInfo: c && !programsOf(c).some((p) => chain.chained(p.name)) ? () => hookProgramInfo(obj, programsOf(c).map((p) => p.name)) : undefined,
            attachPoints: c ? programsOf(c).filter((p) => !chain.chained(p.name)).map((p) => attachPointOf(p, sections.get(p.name)!)) : [],
          };
        }),
      };
    } catch (e) {
      places?.giveBack();
      obj.close();
      throw e;
    }
  }
  throw new Error(`loading ${opts.objectPath}: gave up after ${maxAttempts} attempts`);
}

/**
 * What an attempt asks of its driver: an object opened (the driver answers
 * with it), or one configured and loaded with its fentry/fexit/tp_btf attach
 * targets, which are set with the load since resolving one parses the
 * kernel's BTF (the driver answers with the load's error, or undefined).
 */
type Step = { open: string; options?: { kernelBtfPath?: string } } | { load: NativeBpfObject; attachTargets: Record<string, string> };

/** Loads and attaches on the event loop: for small objects (the core, the probes). */
export function loadObject(opts: LoadOptions): LoadedObject {
  const gen = attempts(opts);
  let step = gen.next();
  while (!step.done) {
    const s = step.value;
    if ('open' in s) {
      step = gen.next(new (native().BpfObject)(s.open, s.options));
      continue;
    }
    let failure: unknown;
    try {
      for (const [program, func] of Object.entries(s.attachTargets)) s.load.setAttachTarget(program, func);
      s.load.load();
    } catch (e) {
      failure = e ?? new Error('load failed');
    }
    step = gen.next(failure);
  }
  return step.value;
}

/**
 * Loads and attaches with the object's open and the kernel's verification
 * on a worker thread (openAsync, loadAsync): what a policy hook costs,
 * 100-250 ms, is not spent on the event loop. The caller loads one object
 * at a time.
 */
export async function loadObjectAsync(opts: LoadOptions): Promise<LoadedObject> {
  const gen = attempts(opts);
  let step = gen.next();
  while (!step.done) {
    const s = step.value;
    if ('open' in s) {
      step = gen.next(await native().BpfObject.openAsync(s.open, s.options));
      continue;
    }
    let failure: unknown;
    try {
      await s.load.loadAsync(s.attachTargets);
    } catch (e) {
      failure = e ?? new Error('load failed');
    }
    step = gen.next(failure);
  }
  return step.value;
}
