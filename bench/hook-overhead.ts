/**
 * What each built-in policy's hooks cost per event, measured side by side in
 * one run against the same loop with no probe, with empty programs on the
 * same hooks (the floor: the price of the hook itself), and with bpftrace
 * doing the same aggregation.
 *
 * Workloads, each a tight loop pinned to CPU 1:
 *   tcp-bytes         sends of 64 bytes over loopback (build/bench/sendloop)
 *   file-writes       write(2)s of 64 bytes to a file on tmpfs (build/bench/syscallloop)
 *   syscall fallback  getpid(2)s: what hooking syscall tracepoints, as
 *                     file-writes must on a kernel without fentry and
 *                     kprobes, costs every other syscall (none of the
 *                     programs runs for it, so no run time per event)
 *   process           exec of /bin/true in a loop: too slow per event to time,
 *                     so only the programs' own run time is reported, per
 *                     process, median of rounds
 *   uprobe            calls of a function of the loop binary, counted (uprobe)
 *                     and timed (uprobe+uretprobe) by policy files
 *   tcp-retransmits   a transfer between two network namespaces through
 *                     nftables dropping 15% of packets: retransmits come
 *                     from timers and softirq, so again only run time, per
 *                     retransmitted segment
 * Configurations run in a shuffled order every round, so drift hits them all
 * alike; the added cost is the median over rounds of a configuration's time
 * minus the same round's "none". A first pass turns on the
 * kernel's BPF statistics (BPF_ENABLE_STATS) and reports each program's run
 * time per event.
 *
 *   npm run bench                        print the tables
 *   npm run bench -- --write             also update BENCHMARKS.md (with
 *                                        workloads named: only their tables)
 *   npm run bench -- file-writes         one workload
 *   BENCH_ROUNDS=20 BENCH_CALLS=2000000 npm run bench
 *   BENCH_CONFIGS="floor (tp_btf),tally,tally + udp-peers" npm run bench -- tcp-bytes
 *                                        some configurations only (none always)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { AttachTarget, native, NativeBpfObject } from '../src/native/addon';
import * as os from 'node:os';
import { PROJECT_ROOT } from '../src/util/paths';
import { AgentProcess, waitExit } from '../test/helpers/agent-process';
import { programIdsOf } from '../test/helpers/procfs';
import { NetnsPair } from '../test/helpers/netns';
import { mergeTables } from './tables';
import { probeKernel, ProbedFeature } from '../src/engine/kernel-features';
import { writeBenchmarksBlock } from './benchmarks-md';
import { findCgroup2Mount } from '../src/labels/cgroup-mount';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const CALLS = Number(process.env.BENCH_CALLS ?? 1_000_000);
const SIZE = 64;
const SENDLOOP = path.join(PROJECT_ROOT, 'build', 'bench', 'sendloop');
/** The empty cgroup_skb programs attach where udp-peers' do: the cgroup v2 root. */
const SKB_TARGETS: Record<string, AttachTarget> = {
  empty_skb_egress: { kind: 'cgroup', path: findCgroup2Mount() },
  empty_skb_ingress: { kind: 'cgroup', path: findCgroup2Mount() },
};

const SYSCALLLOOP = path.join(PROJECT_ROOT, 'build', 'bench', 'syscallloop');
const EMPTY = path.join(PROJECT_ROOT, 'build', 'bench-bpf', 'empty.bpf.o');
const SHM_FILE = '/dev/shm/tally-bench-writes';

/*
 * bpftrace keys by what tally keys by: the cgroup, and the executable, whose
 * identity in the kernel is its inode and device (tally labels series with
 * the path, which it learns once per binary). bpftrace has no builtin for
 * either, so it reads both from curtask. `comm`, the thread's 15-character
 * name, is not the binary (every python script is "python3", a thread can
 * rename itself) but is cheaper: the "by comm" rows show it, for reference.
 */
const BY_BINARY = { exe: '$exe = curtask->mm->exe_file->f_inode; ', key: 'cgroup, $exe->i_ino, $exe->i_sb->s_dev' };
const BY_COMM = { exe: '', key: 'cgroup, comm' };
type Keying = typeof BY_BINARY;
/* A script whose EXE; sets up the key and KEY is it. */
const keyed = (lines: string[], k: Keying): string => lines.join('\n').replaceAll('EXE;', k.exe).replaceAll('KEY', k.key);

const BPFTRACE = {
  tcpBytes: [
    'tracepoint:sock:sock_send_length /(args->protocol == 6 || args->protocol == 262) && args->ret > 0/ { EXE; @sent[KEY] = sum(args->ret); @size[KEY] = hist(args->ret); }',
    'tracepoint:sock:sock_recv_length /(args->protocol == 6 || args->protocol == 262) && args->ret > 0 && !(args->flags & 2)/ { EXE; @recv[KEY] = sum(args->ret); }',
    'END { clear(@sent); clear(@size); clear(@recv); }',
  ],
  /*
   * The same aggregation as file-writes: regular files only. Like tally it
   * hooks sys_exit alone and finds the fd in the registers the task saved
   * at entry, here at the top of its kernel stack (x86-64: THREAD_SIZE 16 KiB,
   * struct pt_regs 168 bytes), which bpftrace 0.17 has no builtin for.
   */
  fileWrites: [
    'tracepoint:syscalls:sys_exit_write, tracepoint:syscalls:sys_exit_pwrite64, tracepoint:syscalls:sys_exit_writev, tracepoint:syscalls:sys_exit_pwritev, tracepoint:syscalls:sys_exit_pwritev2 /args->ret > 0/ {',
    '  $regs = (struct pt_regs *)((uint64)curtask->stack + 16384 - 168);',
    '  $f = *(curtask->files->fdt->fd + $regs->di);',
    '  if (($f->f_inode->i_mode & 0xf000) == 0x8000) { EXE; @written[KEY] = sum(args->ret); }',
    '}',
    'END { clear(@written); }',
  ],
  /* For reference: every write counted, whatever the fd is (less work than file-writes does). */
  anyWrites: [
    'tracepoint:syscalls:sys_exit_write, tracepoint:syscalls:sys_exit_pwrite64, tracepoint:syscalls:sys_exit_writev, tracepoint:syscalls:sys_exit_pwritev, tracepoint:syscalls:sys_exit_pwritev2 /args->ret > 0/ { EXE; @written[KEY] = sum(args->ret); }',
    'END { clear(@written); }',
  ],
  /* Keyed by the socket's cgroup, as tally keys it: a retransmit fires from timers and softirq, whatever task is on the CPU. */
  retransmits: [
    'tracepoint:tcp:tcp_retransmit_skb /args->err == 0/ { $sk = (struct sock *)args->skaddr; @retransmits[$sk->sk_cgrp_data.cgroup->kn->id] = count(); }',
    'END { clear(@retransmits); }',
  ],
  /* Exit status in tally's three classes: killed by a signal, another status, 0. */
  process: [
    'tracepoint:sched:sched_process_exec { EXE; @execs[KEY] = count(); }',
    'tracepoint:sched:sched_process_exit /args->group_dead/ { EXE; $c = curtask->exit_code; @exits[KEY, ($c & 0x7f) ? 2 : ((($c >> 8) & 0xff) ? 1 : 0)] = count(); }',
    'END { clear(@execs); clear(@exits); }',
  ],
};

/** A probe configuration: set up, then tear down; programIds for the stats pass. */
interface Running {
  programIds(): number[];
  stop(): Promise<void>;
}
interface Config {
  name: string;
  start(): Promise<Running>;
}

function floor(programs: string[], targets: Record<string, AttachTarget> = {}): () => Promise<Running> {
  return async () => {
    const obj: NativeBpfObject = new (native().BpfObject)(EMPTY);
    for (const p of obj.programs()) obj.setAutoload(p.name, programs.includes(p.name));
    obj.load();
    for (const p of programs) obj.attach(p, targets[p]);
    return {
      programIds: () => programs.map((p) => obj.programInfo(p)!.id),
      stop: async () => obj.close(),
    };
  };
}

/**
 * The loops run on CPU 1; the daemons (the agent, bpftrace) live on CPU 0,
 * every thread of them, so their housekeeping does not land in the timed
 * loop and each row measures what the probes add per event.
 */
function offMeasuredCpu(pid: number): void {
  execFileSync('taskset', ['-apc', '0', String(pid)], { stdio: 'ignore' });
}

function bpftrace(lines: string[], k: Keying = BY_BINARY): () => Promise<Running> {
  return () => startBpftrace(keyed(lines, k));
}

const BY_COMM_ROW = 'bpftrace, by comm (less work)';

async function startBpftrace(program: string): Promise<Running> {
  const child: ChildProcess = spawn('bpftrace', ['-e', program], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30000;
  while (!/Attaching \d+ probes/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`bpftrace did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300)); // attached after the banner
  offMeasuredCpu(child.pid!);
  return {
    programIds: () => programIdsOf(child.pid!),
    stop: async () => {
      child.kill('SIGINT');
      // bpftrace 0.17 is sometimes slow to exit; never leave its programs behind.
      await waitExit(child, 90000).catch(async () => {
        child.kill('SIGKILL');
        await waitExit(child, 10000);
      });
    },
  };
}

/*
 * The agent's steady state, which is what a long-running agent is in: its
 * cgroup resolved to a label set and the keys it counts promoted
 * (src/bpf/promoted-counters.ts). A sweep does both, so the agent sweeps
 * every second (--metrics-series-ttl 4s) and a short warm-up of the workload
 * runs until no more keys are promoted; only then is anything measured.
 */
const WARMUPS: Record<string, () => Promise<unknown>> = {
  'tcp-bytes': () => sendLoop(20_000),
  'tcp-bytes,tcp-peers': () => sendLoop(20_000),
  'tcp-bytes,udp-peers': () => sendLoop(20_000),
  'udp-peers': () => udpSendLoop(20_000),
  'file-writes': () => syscallLoop(['write', SHM_FILE, '20000', String(SIZE)]),
  process: async () => void execFileSync('taskset', ['-c', '1', '/bin/sh', '-c', 'for i in $(seq 100); do /bin/true; done']),
  'tcp-retransmits': () => lossyTransfer(1_000_000),
  uprobe: () => syscallLoop(['call', '20000']),
};

async function promotedKeys(agent: AgentProcess): Promise<number> {
  const m = /^tally_bpf_promoted_counters (\d+)$/m.exec(await agent.metricsText());
  return m ? Number(m[1]) : 0;
}

async function warmUp(agent: AgentProcess, policy: string): Promise<void> {
  let last = -1;
  for (let i = 0; i < 15; i++) {
    await WARMUPS[policy]();
    await new Promise((r) => setTimeout(r, 2500));
    const n = await promotedKeys(agent);
    if (n > 0 && n === last) return;
    last = n;
  }
  throw new Error(`the number of counters the agent promoted did not settle during the warm-up of ${policy} (last read: ${last})`);
}

function tally(policy: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): () => Promise<Running> {
  return async () => {
    const agent = await AgentProcess.start(['--builtin-policies', policy, '--metrics-series-ttl', '4s', ...flags], { env });
    offMeasuredCpu(agent.child.pid!);
    try {
      await warmUp(agent, policy);
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return { programIds: () => agent.programIds(), stop: async () => void (await agent.stop()) };
  };
}

/** The agent with no built-in and one policy file; warmed up by the workload named. */
function tallyWithPolicy(yaml: string, warmup: string): () => Promise<Running> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-policy-'));
    fs.writeFileSync(path.join(dir, 'bench.yaml'), yaml);
    let agent: AgentProcess | undefined;
    try {
      agent = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', dir, '--metrics-series-ttl', '4s']);
      offMeasuredCpu(agent.child.pid!);
      await warmUp(agent, warmup);
    } catch (e) {
      await agent?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const running = agent;
    return { programIds: () => running.programIds(), stop: async () => void (await running.stop(), fs.rmSync(dir, { recursive: true, force: true })) };
  };
}

const NONE: Config = { name: 'none', start: async () => ({ programIds: () => [], stop: async () => undefined }) };

interface Workload {
  name: string;
  what: string;
  configs: Config[];
  /** ns per call; undefined: too slow to time, only run time per event is reported. */
  loop?: () => Promise<number>;
  /** Drives events for the run-time pass when there is no timed loop. */
  drive?: () => Promise<void>;
  /** false: the probes do not run for the loop's calls, so their run time says nothing of it. */
  runTime?: boolean;
  /** The sentence under the table, from each configuration's added ns per call; by default tally against bpftrace. */
  summary?: (added: (config: string) => number) => string;
  /** Without a timed loop: what the run time is reported per, and how many of those one drive makes (default: per program run). */
  per?: { what: string; events?: number };
  /** The configuration the added costs are compared with (default bpftrace). */
  relativeTo?: string;
}

/* Processes the process workload starts: its run time is reported per process, whatever number of programs each runs. */
const PROCESSES = 2000;
/* file-writes' hook here: the sys_exit tracepoint of the syscall, as the floor. */
const syscallFloor: Config = { name: 'floor (tracepoint sys_exit_write)', start: floor(['empty_sys_exit_write']) };
/* What a syscall hook costs where it must take the raw syscall tracepoints (no fentry, no kprobes, and a latency to measure). */
const rawSyscallFloor: Config = { name: 'floor (raw_tp sys_enter+sys_exit)', start: floor(['empty_sys_enter', 'empty_sys_exit']) };

/* The agent with the kernel's BPF statistics on: what they cost every program run. */
const STATS_ON = (policy: string): Config => ({ name: 'tally, --bpf-stats on', start: tally(policy, ['--bpf-stats', 'on']) });

/*
 * file-writes on each attach path a syscall hook can take, forced by leaving
 * the better ones out (TALLY_KERNEL_WITHOUT); only those this kernel has.
 * Run on the kernel matrix's guests (scripts/kernels/bench-attach-paths.sh),
 * whose TCG timings are only comparable within one table.
 */
const ATTACH_PATHS: Array<{ name: string; needs: ProbedFeature; without: string }> = [
  { name: 'tally via fentry+fexit', needs: 'fentry', without: '' },
  { name: 'tally via kprobe+kretprobe', needs: 'kprobe', without: 'fentry' },
  { name: 'tally via tracepoint sys_exit_write', needs: 'tracepoint', without: 'fentry,kprobe' },
  { name: 'tally via raw_tp sys_enter+sys_exit', needs: 'raw_tp', without: 'fentry,kprobe,tracepoint' },
];

function attachPathConfigs(): Config[] {
  const features = probeKernel();
  return ATTACH_PATHS.filter((p) => features.get(p.needs)?.ok).map((p) => ({ name: p.name, start: tally('file-writes', [], { TALLY_KERNEL_WITHOUT: p.without }) }));
}

/*
 * The uprobe workload: calls of a function of the loop binary, counted by a
 * uprobe policy (calls by the default labels), and timed by one that also
 * takes the return (a latency histogram). The floors are empty programs on
 * the same entry, and entry and return.
 */
const UPROBE_FUNC = 'tally_bench_target';
const uprobeTarget = (retprobe: boolean): AttachTarget => ({ kind: 'uprobe', path: SYSCALLLOOP, func: UPROBE_FUNC, retprobe });
const uprobeFloor: Config = { name: 'floor (uprobe)', start: floor(['empty_uprobe'], { empty_uprobe: uprobeTarget(false) }) };
function uprobePolicy(latency: boolean): string {
  const metric = latency
    ? '{name: bench_call_seconds, help: Time in the function., unit: seconds, type: histogram, value: latency}'
    : '{name: bench_calls_total, help: Calls of the function., type: counter}';
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: bench-uprobe}
spec:
  uprobes:
  - path: ${SYSCALLLOOP}
    symbols: [${UPROBE_FUNC}]
    return: ${latency}
    metrics: [${metric}]
`;
}
/* bpftrace 0.17 knows no kernel types in a uprobe-only script (curtask->mm->… fails), so these key by comm. */
const BPFTRACE_UPROBE = {
  calls: [`uprobe:${SYSCALLLOOP}:${UPROBE_FUNC} { EXE; @calls[KEY] = count(); }`, 'END { clear(@calls); }'],
  latency: [
    `uprobe:${SYSCALLLOOP}:${UPROBE_FUNC} { @start[tid] = nsecs; }`,
    `uretprobe:${SYSCALLLOOP}:${UPROBE_FUNC} /@start[tid]/ { EXE; @ns[KEY] = hist(nsecs - @start[tid]); delete(@start[tid]); }`,
    'END { clear(@start); clear(@ns); }',
  ],
};

/* The retransmits workload: a transfer through a lossy link. */
const RETRANSMIT_BYTES = 12_000_000;
const DROP_PERCENT = 15;

const WORKLOADS: Workload[] = [
  {
    name: 'tcp-bytes',
    what: `a send(2) of ${SIZE} bytes over loopback, received by a sink on the same CPU`,
    configs: [NONE, { name: 'floor (tp_btf)', start: floor(['empty_send_btf', 'empty_recv_btf']) }, { name: 'bpftrace', start: bpftrace(BPFTRACE.tcpBytes) }, { name: BY_COMM_ROW, start: bpftrace(BPFTRACE.tcpBytes, BY_COMM) }, { name: 'tally', start: tally('tcp-bytes') }, STATS_ON('tcp-bytes'), { name: 'tally + tcp-peers', start: tally('tcp-bytes,tcp-peers') },
      // udp-peers' programs see every packet, TCP's too: what they add to a TCP send, where they count nothing.
      { name: 'tally + udp-peers', start: tally('tcp-bytes,udp-peers') }],
    loop: sendLoop,
  },
  {
    name: 'udp-peers',
    what: `a sendto(2) of a ${SIZE}-byte UDP datagram over loopback, from an unconnected socket, received by a sink on the same CPU`,
    // No bpftrace row: bpftrace 0.17 attaches no cgroup_skb program, and no tracepoint has an unconnected datagram's peer.
    configs: [NONE, { name: 'floor (cgroup_skb)', start: floor(['empty_skb_egress', 'empty_skb_ingress'], SKB_TARGETS) }, { name: 'tally', start: tally('udp-peers') }],
    loop: udpSendLoop,
    relativeTo: 'floor (cgroup_skb)',
    summary: (added) => `udp-peers adds ${added('tally').toFixed(0)} ns per datagram (sent and received), ${(added('tally') / added('floor (cgroup_skb)')).toFixed(2)}× what two empty cgroup_skb programs add (${added('floor (cgroup_skb)').toFixed(0)} ns).`,
  },
  {
    name: 'file-writes',
    what: `a write(2) of ${SIZE} bytes to a file on tmpfs`,
    configs: [
      NONE,
      syscallFloor,
      { name: 'bpftrace', start: bpftrace(BPFTRACE.fileWrites) },
      { name: BY_COMM_ROW, start: bpftrace(BPFTRACE.fileWrites, BY_COMM) },
      { name: 'bpftrace, any fd (less work)', start: bpftrace(BPFTRACE.anyWrites) },
      { name: 'tally', start: tally('file-writes') },
      // Where its hooks are on classic tracepoints (no fentry, no kprobes), each alone there: what a chain would add.
      { name: 'tally, hooks chained', start: tally('file-writes', [], { TALLY_TRACEPOINT_CHAINS: 'always' }) },
      STATS_ON('file-writes'),
    ],
    loop: () => syscallLoop(['write', SHM_FILE, String(CALLS), String(SIZE)]),
  },
  {
    name: 'syscall fallback',
    what: 'a getpid(2), which no policy is about, while file-writes hooks the tracepoints of its syscalls',
    configs: [NONE, syscallFloor, rawSyscallFloor, { name: 'bpftrace', start: bpftrace(BPFTRACE.fileWrites) }, { name: 'tally', start: tally('file-writes') }],
    loop: () => syscallLoop(['getpid', String(CALLS)]),
    runTime: false,
  },
  {
    name: 'attach paths',
    what: `a write(2) of ${SIZE} bytes to a file on tmpfs, file-writes attached each way this kernel offers`,
    configs: [NONE, syscallFloor, ...(process.argv.includes('attach paths') ? attachPathConfigs() : [])],
    loop: () => syscallLoop(['write', SHM_FILE, String(CALLS), String(SIZE)]),
    relativeTo: syscallFloor.name,
  },
  {
    name: 'uprobe',
    what: `a call of a user function (${UPROBE_FUNC}) in a tight loop, counted and timed by uprobe policies`,
    configs: [
      NONE,
      uprobeFloor,
      { name: 'floor (uprobe+uretprobe)', start: floor(['empty_uprobe', 'empty_uretprobe'], { empty_uprobe: uprobeTarget(false), empty_uretprobe: uprobeTarget(true) }) },
      { name: 'bpftrace, calls by comm', start: bpftrace(BPFTRACE_UPROBE.calls, BY_COMM) },
      { name: 'tally via uprobe, calls', start: tallyWithPolicy(uprobePolicy(false), 'uprobe') },
      { name: 'bpftrace, latency by comm', start: bpftrace(BPFTRACE_UPROBE.latency, BY_COMM) },
      { name: 'tally via uprobe+uretprobe, latency', start: tallyWithPolicy(uprobePolicy(true), 'uprobe') },
    ],
    loop: () => syscallLoop(['call', String(CALLS)]),
    relativeTo: uprobeFloor.name,
  },
  {
    name: 'process',
    what: `an exec and an exit of /bin/true, ${PROCESSES} times`,
    configs: [
      { name: 'floor (tp_btf)', start: floor(['empty_exec_btf', 'empty_exit_btf']) },
      { name: 'bpftrace', start: bpftrace(BPFTRACE.process) },
      { name: BY_COMM_ROW, start: bpftrace(BPFTRACE.process, BY_COMM) },
      { name: 'tally', start: tally('process') },
    ],
    drive: async () => void execFileSync('taskset', ['-c', '1', '/bin/sh', '-c', `for i in $(seq ${PROCESSES}); do /bin/true; done`]),
    // + the snapshot's own process (runStats).
    per: { what: 'process (exec and exit)', events: PROCESSES + 1 },
  },
  {
    name: 'tcp-retransmits',
    what: `a transfer of ${RETRANSMIT_BYTES / 1e6} MB between two network namespaces, nftables dropping ${DROP_PERCENT}% of its packets`,
    configs: [
      { name: 'floor (tp_btf)', start: floor(['empty_retransmit_btf']) },
      { name: 'bpftrace', start: bpftrace(BPFTRACE.retransmits, BY_COMM) },
      { name: 'tally', start: tally('tcp-retransmits') },
    ],
    drive: lossyTransfer,
    per: { what: 'retransmitted segment' },
  },
];

const SINK = 'import socket, sys\nls = socket.socket(); ls.bind((sys.argv[1], 5555)); ls.listen(8)\nprint("listening", flush=True)\nc, _ = ls.accept()\nwhile c.recv(65536): pass';
const SENDER = 'import socket, sys\ns = socket.create_connection((sys.argv[1], 5555))\ns.sendall(b"r" * int(sys.argv[2]))\ns.shutdown(socket.SHUT_WR)\nwhile s.recv(65536): pass';

/* Retransmits are timer and softirq work: too rare to time, so only their programs' run time is reported. */
async function lossyTransfer(bytes = RETRANSMIT_BYTES): Promise<void> {
  const net = new NetnsPair();
  try {
    const rules = `table inet tally_loss {
      chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 5555 numgen random mod 100 < ${DROP_PERCENT} drop
      }
    }`;
    net.exec(net.b, 'nft', ['-f', '-'], rules);
    const sink = spawn('ip', ['netns', 'exec', net.b, 'python3', '-c', SINK, net.addrB], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => sink.stdout!.once('data', resolve));
    execFileSync('ip', ['netns', 'exec', net.a, 'taskset', '-c', '1', 'python3', '-c', SENDER, net.addrB, String(bytes)]);
    await waitExit(sink);
  } finally {
    net.destroy();
  }
}

async function syscallLoop(args: string[]): Promise<number> {
  return Number(execFileSync('taskset', ['-c', '1', SYSCALLLOOP, ...args], { encoding: 'utf8' }).trim());
}

/**
 * One timed loop. Sender and sink share CPU 1: on two CPUs that is far less
 * noisy than splitting them, and the time per send then includes the
 * receiving side's work (and probes) for the same bytes. Returns ns per send.
 */
async function udpSendLoop(calls = CALLS): Promise<number> {
  const sink = spawn('taskset', ['-c', '1', SENDLOOP, 'udpsink'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => sink.stdout!.once('data', (d) => resolve(String(d).trim())));
  const out = execFileSync('taskset', ['-c', '1', SENDLOOP, 'udpsend', port, String(calls), String(SIZE)], { encoding: 'utf8' });
  await waitExit(sink);
  return Number(out.trim());
}

async function sendLoop(calls = CALLS): Promise<number> {
  const sink = spawn('taskset', ['-c', '1', SENDLOOP, 'sink'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => sink.stdout!.once('data', (d) => resolve(String(d).trim())));
  const out = execFileSync('taskset', ['-c', '1', SENDLOOP, 'send', port, String(calls), String(SIZE)], { encoding: 'utf8' });
  await waitExit(sink);
  return Number(out.trim());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function shuffled<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

interface ProgStats {
  run_time_ns?: number;
  run_cnt?: number;
}

/**
 * The summed run time and run count of a configuration's programs, in one
 * bpftool call: each call is an exec and an exit, which process' hooks see,
 * so between two snapshots there is exactly one more process than the
 * workload started (the exit of the first call, the exec of the second).
 */
function runStats(ids: number[]): { ns: number; cnt: number } {
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as (ProgStats & { id: number })[];
  let ns = 0;
  let cnt = 0;
  for (const p of all) {
    if (!ids.includes(p.id)) continue;
    ns += p.run_time_ns ?? 0;
    cnt += p.run_cnt ?? 0;
  }
  return { ns, cnt };
}

/**
 * Run time of each configuration's programs, from the kernel's BPF run-time
 * statistics: per program run, or with `per` the total over that many
 * events (when one event runs several programs, and not as many in each
 * configuration). The statistics are on while an fd from BPF_ENABLE_STATS
 * is open, not through the kernel.bpf_stats_enabled sysctl: a benchmark
 * killed mid-pass then leaves them off, where a sysctl it set would stay on
 * and slow every BPF program on the host.
 */
async function statsPass(w: Workload, per?: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const statsFd = native().enableBpfStats();
  try {
    for (const c of shuffled(w.configs.filter((c) => c.name !== 'none'))) {
      const r = await c.start();
      try {
        const ids = r.programIds();
        const first = runStats(ids);
        if (w.loop) await w.loop();
        else await w.drive!();
        const last = runStats(ids);
        const ns = last.ns - first.ns;
        const cnt = last.cnt - first.cnt;
        out.set(c.name, per ? ns / per : cnt ? ns / cnt : NaN);
      } finally {
        await r.stop();
      }
    }
  } finally {
    native().closeFd(statsFd);
  }
  return out;
}

const fmt = (x: number | undefined): string => (x === undefined || isNaN(x) ? '—' : x.toFixed(0));

async function measure(w: Workload): Promise<string> {
  if (!w.loop) {
    // Per process (or per event), whatever number of programs each configuration runs for one.
    const perProcess = new Map<string, number[]>(w.configs.map((c) => [c.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      const pass = await statsPass(w, w.per?.events);
      for (const [name, ns] of pass) perProcess.get(name)!.push(ns);
      process.stderr.write(`${w.name} round ${round}/${ROUNDS}: ${[...pass].map(([n, ns]) => `${n}=${ns.toFixed(0)}`).join(' ')}\n`);
    }
    const inKernel = new Map([...perProcess].map(([name, xs]) => [name, median(xs)]));
    const bt = inKernel.get('bpftrace')!;
    const rows = w.configs.map((c) => `| ${c.name} | ${fmt(inKernel.get(c.name))} | ${(inKernel.get(c.name)! / bt).toFixed(2)} |`);
    const what = w.per?.what ?? 'event';
    return [
      `#### ${w.name}: ${w.what}`, '',
      `| configuration | BPF run time per ${what}, ns, median of rounds | relative to bpftrace |`, '| --- | ---: | ---: |', ...rows, '',
      `tally's programs run ${((inKernel.get('tally')! / bt) * 100).toFixed(0)}% as long per ${what} as bpftrace's.`,
    ].join('\n');
  }
  const inKernel = w.runTime === false ? new Map<string, number>() : await statsPass(w);
  const samples = new Map<string, number[]>(w.configs.map((c) => [c.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of shuffled(w.configs)) {
      const r = await c.start();
      try {
        samples.get(c.name)!.push(await w.loop());
      } finally {
        await r.stop();
      }
    }
    process.stderr.write(`${w.name} round ${round}/${ROUNDS}: ${w.configs.map((c) => `${c.name}=${samples.get(c.name)!.at(-1)!.toFixed(0)}`).join(' ')}\n`);
  }
  const none = samples.get('none')!;
  // Paired with the same round's baseline, so slow drift cancels out.
  // NaN for a configuration BENCH_CONFIGS left out (its ratios print as NaN).
  const added = (name: string): number => {
    const xs = samples.get(name);
    return xs ? median(xs.map((x, i) => x - none[i])) : NaN;
  };
  const base = w.relativeTo ?? 'bpftrace';
  const bt = added(base);
  const rows = w.configs.map((c) => {
    const a = added(c.name);
    const first = c.name === 'none';
    return `| ${c.name} | ${median(samples.get(c.name)!).toFixed(0)} | ${first ? '—' : a.toFixed(0)} | ${first ? '—' : (a / bt).toFixed(2)} | ${fmt(inKernel.get(c.name))} |`;
  });
  const summary = w.summary
    ? w.summary(added)
    : w.relativeTo
    ? `Relative to ${base}: what each way of attaching adds over an empty program on the cheapest hook.`
    : `tally adds ${((added('tally') / bt) * 100).toFixed(0)}% of what bpftrace adds (${added('tally').toFixed(0)} ns against ${bt.toFixed(0)} ns).`;
  return [
    `#### ${w.name}: ${w.what}`, '',
    `| configuration | ns per call (median) | added ns per call | added, relative to ${base} | BPF run time per event, ns |`,
    '| --- | ---: | ---: | ---: | ---: |', ...rows, '',
    summary,
  ].join('\n');
}

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const tables: string[] = [];
  // BENCH_CONFIGS="tally,tally + udp-peers": only those configurations (and none, which every row is paired with).
  const configs = process.env.BENCH_CONFIGS?.split(',').map((c) => c.trim());
  for (const w of WORKLOADS.filter((w) => only.length === 0 || only.includes(w.name))) {
    tables.push(await measure(configs ? { ...w, configs: w.configs.filter((c) => c.name === 'none' || configs.includes(c.name)) } : w));
  }
  fs.rmSync(SHM_FILE, { force: true });
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const text = [
    `${ROUNDS} rounds × ${CALLS.toLocaleString('en')} calls per timed loop, configurations shuffled each round; kernel ${kernel}, ${native().numPossibleCpus()} CPUs. Each tally row runs the agent with only that built-in policy (\`--builtin-policies\`), the uprobe rows with only their policy file.`,
    '', ...tables.flatMap((t) => [t, '']),
  ].join('\n').trimEnd();
  process.stdout.write(text + '\n');

  if (process.argv.includes('--write')) {
    // A run of some workloads replaces their tables and keeps the others'.
    writeBenchmarksBlock('hook-overhead', (old) => (only.length === 0 ? text : mergeTables(old, text)));
    process.stderr.write('updated BENCHMARKS.md\n');
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
