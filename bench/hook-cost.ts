/**
 * What each policy hook costs the agent: time to open, load (vmlinux BTF,
 * relocation, verifier) and attach its BPF object, and the RSS, fds, maps
 * and programs it holds; then what is left once every hook is removed.
 *
 * It loads, in this process and as the agent does (the core object's shared
 * maps reused by every hook), one policy of N counting hooks on raw
 * tracepoints of the scheduler, spread over a few tracepoints so that no one
 * reaches the kernel's limit of programs per tracepoint. Then it closes
 * them all and measures again.
 *
 *   node dist/bench/hook-cost.js            48 hooks
 *   BENCH_HOOKS=100 node dist/bench/hook-cost.js
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { native, NativeBpfObject } from '../src/native/addon';
import { CoreObject } from '../src/collectors/core-object';
import { SHARED_MAPS } from '../src/collectors/shared-maps';
import { loadPolicyText } from '../src/policy/load';
import { probeKernel } from '../src/engine/kernel-features';
import { loadSyscalls } from '../src/engine/syscalls';
import { WIDEST_LABEL_FILTER } from '../src/labels/label-filter';
import { loadPolicyHook } from '../src/engine/hook-loader';
import { manyHookPolicy, SCHED_EVENTS } from '../test/helpers/test-policies';
import { HookResult, LoadedObject } from '../src/bpf/loader';
import { CompileContext } from '../src/engine/compile';
import { HookLoadOptions } from '../src/engine/hook-loader';
import { Hook } from '../src/policy/model';

async function loadPolicyHooks(hooks: Hook[], ctx: CompileContext, opts: HookLoadOptions): Promise<{ results: HookResult[]; loaded: LoadedObject[] }> {
  const results: HookResult[] = [];
  const loaded: LoadedObject[] = [];
  for (const h of hooks) {
    const r = await loadPolicyHook(h, ctx, opts);
    results.push(r.result);
    if (r.loaded) loaded.push(r.loaded);
  }
  return { results, loaded };
}

function releaseHooks(loaded: LoadedObject[]): void {
  for (const l of loaded) l.object.close();
}

const HOOKS = Number(process.env.BENCH_HOOKS ?? 48);

interface Usage {
  rssMiB: number;
  /** Kernel memory (bytes_memlock) of every BPF map and program on the host, as bpftool reports it. */
  kernelMiB: number;
  fds: number;
  maps: number;
  progs: number;
  links: number;
}

function usage(): Usage {
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
  const u: Usage = { rssMiB: rss, kernelMiB: 0, fds: 0, maps: 0, progs: 0, links: 0 };
  const progIds = new Set<number>();
  const mapIds = new Set<number>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    u.fds++;
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const id = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1]);
    if (target === 'anon_inode:bpf-map') {
      u.maps++;
      mapIds.add(id('map_id'));
    } else if (target === 'anon_inode:bpf-prog') {
      u.progs++;
      progIds.add(id('prog_id'));
    }
    else if (target === 'anon_inode:bpf_link' || target.startsWith('anon_inode:[perf_event]')) u.links++;
  }
  u.kernelMiB = kernelBytes(progIds, mapIds) / 1048576;
  return u;
}

/**
 * Kernel memory (bytes_memlock, as bpftool reports it) of the programs this
 * process holds, of the maps they use, and of the maps it holds: a freed
 * object's maps are held by its program only.
 */
function kernelBytes(progIds: Set<number>, mapIds: Set<number>): number {
  const show = (what: 'map' | 'prog'): Array<{ id: number; bytes_memlock?: number; map_ids?: number[] }> =>
    JSON.parse(execFileSync('bpftool', [what, 'show', '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 }));
  let bytes = 0;
  const maps = new Set(mapIds);
  for (const p of show('prog')) {
    if (!progIds.has(p.id)) continue;
    bytes += p.bytes_memlock ?? 0;
    for (const m of p.map_ids ?? []) maps.add(m);
  }
  for (const m of show('map')) if (maps.has(m.id)) bytes += m.bytes_memlock ?? 0;
  return bytes;
}

/** Times every call of the native object, by method, in ms. */
function timeNativeCalls(): Map<string, number> {
  const spent = new Map<string, number>();
  const add = (k: string, t0: bigint): void => void spent.set(k, (spent.get(k) ?? 0) + Number(process.hrtime.bigint() - t0) / 1e6);
  const addon = native();
  const Original = addon.BpfObject;
  const instrument = (obj: NativeBpfObject): NativeBpfObject => {
    for (const m of ['load', 'loadAsync', 'freeObject', 'attach', 'close', 'programs', 'maps', 'setConstant', 'setMaxEntries', 'reuseMap', 'setAutoload', 'mapFd'] as const) {
      const f = obj[m].bind(obj) as (...a: unknown[]) => unknown;
      // The addon's methods are read-only on its prototype: shadow them on the instance.
      Object.defineProperty(obj, m, {
        value: (...a: unknown[]) => {
          const t = process.hrtime.bigint();
          const r = f(...a);
          if (r instanceof Promise) return r.finally(() => add(m, t));
          add(m, t);
          return r;
        },
      });
    }
    return obj;
  };
  const Timed = function (path: string, opts?: { kernelBtfPath?: string }): NativeBpfObject {
    const t0 = process.hrtime.bigint();
    const obj = new Original(path, opts);
    add('open', t0);
    return instrument(obj);
  } as unknown as typeof addon.BpfObject;
  Timed.openAsync = async (path, opts) => {
    const t0 = process.hrtime.bigint();
    const obj = await Original.openAsync(path, opts);
    add('open', t0);
    return instrument(obj);
  };
  addon.BpfObject = Timed;
  return spent;
}

function row(label: string, u: Usage, base: Usage): string {
  const d = (n: number, b: number, digits = 0): string => `${n.toFixed(digits)} (${n - b >= 0 ? '+' : ''}${(n - b).toFixed(digits)})`;
  return `| ${label} | ${d(u.rssMiB, base.rssMiB, 1)} | ${d(u.kernelMiB, base.kernelMiB, 1)} | ${d(u.fds, base.fds)} | ${d(u.maps, base.maps)} | ${d(u.progs, base.progs)} | ${d(u.links, base.links)} |`;
}

async function main(): Promise<void> {
  const features = probeKernel();
  const syscalls = loadSyscalls();
  const core = new CoreObject({ counterCapacity: 65536 });
  const reuseMaps = Object.fromEntries(SHARED_MAPS.map((m) => [m, core.loaded.object.mapFd(m)]));
  const policy = loadPolicyText(manyHookPolicy('bench-hooks', HOOKS), 'bench.yaml').policies[0];
  if (!policy || policy.state === 'error') throw new Error(`bench policy refused: ${JSON.stringify(policy?.problems)}`);

  // The kernel's BTF parsed once, alone: what every open of an object pays again when nothing shares it.
  let t0 = process.hrtime.bigint();
  native().btfArity('tracepoint', 'sched_process_exec');
  const btfMs = Number(process.hrtime.bigint() - t0) / 1e6;

  // Warm up: the first hooks pay for code paths and caches that later ones reuse, and grow the C heap of
  // each libuv thread that loads one to a high-water mark (glibc does not trim the top of a thread's arena).
  const warm = await loadPolicyHooks(policy.hooks.slice(0, 16), { features, syscalls, metricId: () => 16, pendingMetricId: () => 0 }, { filter: WIDEST_LABEL_FILTER, reuseMaps });
  releaseHooks(warm.loaded);
  native().mallocTrim();
  const base = usage();

  // The same measure with nothing loading, for reference: on a busy machine the loop waits for a CPU too.
  const idleDelay = monitorEventLoopDelay({ resolution: 10 });
  idleDelay.enable();
  await new Promise((r) => setTimeout(r, 3000));
  idleDelay.disable();

  const spent = timeNativeCalls();
  // How long the event loop went without a turn while hooks loaded: what a scrape would have waited.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  t0 = process.hrtime.bigint();
  const { results, loaded } = await loadPolicyHooks(policy.hooks, { features, syscalls, metricId: (m) => 16 + Number(/_(\d+)_total$/.exec(m.name)![1]), pendingMetricId: () => 0 }, { filter: WIDEST_LABEL_FILTER, reuseMaps });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  loopDelay.disable();
  const failed = results.filter((r) => !r.program);
  if (failed.length) throw new Error(`${failed.length} hooks failed: ${JSON.stringify(failed[0])}`);
  const withHooks = usage();
  native().mallocTrim();
  const withHooksTrimmed = usage();

  t0 = process.hrtime.bigint();
  releaseHooks(loaded);
  const closeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const removed = usage();
  native().mallocTrim();
  const trimmed = usage();
  core.close();

  const per = (ms: number | undefined): string => `${((ms ?? 0) / HOOKS).toFixed(2)}`;
  const out = [
    `hook-cost: ${HOOKS} hooks (raw tracepoints ${SCHED_EVENTS.join(', ')}), libbpf ${native().libbpfVersion}, ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`,
    '',
    `| time (ms) | total | per hook |`,
    `| --- | --- | --- |`,
    `| load ${HOOKS} hooks | ${loadMs.toFixed(0)} | ${per(loadMs)} |`,
    `| · open (ELF, object BTF) | ${(spent.get('open') ?? 0).toFixed(0)} | ${per(spent.get('open'))} |`,
    `| · load (vmlinux BTF, relocations, verifier) | ${(spent.get('load') ?? spent.get('loadAsync') ?? 0).toFixed(0)} | ${per(spent.get('load') ?? spent.get('loadAsync'))} |`,
    `| · attach | ${(spent.get('attach') ?? 0).toFixed(0)} | ${per(spent.get('attach'))} |`,
    `| remove ${HOOKS} hooks | ${closeMs.toFixed(0)} | ${per(closeMs)} |`,
    `| parse vmlinux BTF once (reference) | ${btfMs.toFixed(0)} | |`,
    `| event loop delay while loading: p99, longest | ${(loopDelay.percentile(99) / 1e6).toFixed(0)}, ${(loopDelay.max / 1e6).toFixed(0)} | |`,
    `| event loop delay, 3 s idle (reference): p99, longest | ${(idleDelay.percentile(99) / 1e6).toFixed(0)}, ${(idleDelay.max / 1e6).toFixed(0)} | |`,
    '',
    `| state | RSS MiB | kernel MiB (its programs and maps) | fds | map fds | prog fds | link fds |`,
    `| --- | --- | --- | --- | --- | --- | --- |`,
    row('core object, no hooks', base, base),
    row(`${HOOKS} hooks loaded`, withHooks, base),
    row(`${HOOKS} hooks loaded, malloc_trim`, withHooksTrimmed, base),
    row('all removed', removed, base),
    row('all removed, malloc_trim', trimmed, base),
    '',
    `RSS per hook: ${((withHooks.rssMiB - base.rssMiB) / HOOKS).toFixed(2)} MiB; left after removal: ${(trimmed.rssMiB - base.rssMiB).toFixed(1)} MiB`,
  ];
  console.log(out.join('\n'));
  if (process.env.BENCH_VERBOSE) console.log(Object.fromEntries([...spent].map(([k, v]) => [k, (v / HOOKS).toFixed(2)])));
}

if (require.main === module || process.env.BENCH_RUN_MAIN) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
