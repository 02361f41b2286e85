/**
 * What a probe on the TCP send path costs each send(2) call.
 *
 * One run, configurations interleaved in a shuffled order every round, so
 * drift of the machine hits them all alike:
 *   none                 no probe at all
 *   floor (tp_btf)       empty programs on tally's hooks: the price of the hook itself
 *   floor (tracepoint)   empty programs on the classic tracepoints bpftrace uses
 *   bpftrace             summing the same bytes by (cgroup, comm), send and receive
 *   tally                the agent, default label filter (cgroup and binary keys)
 *
 * The workload is build/bench/sendloop: N sends of 64 bytes over loopback,
 * sender and sink pinned to one CPU. The added cost of a configuration is the
 * median over rounds of its time minus the same round's "none". A second pass turns on
 * kernel.bpf_stats_enabled to report each program's own run time per event.
 *
 *   npm run bench                   print the table
 *   npm run bench -- --write        also update BENCHMARKS.md
 *   BENCH_ROUNDS=20 BENCH_SENDS=2000000 npm run bench
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { native, NativeBpfObject } from '../src/native/addon';
import { PROJECT_ROOT } from '../src/util/paths';
import { AgentProcess, waitExit } from '../test/helpers/agent-process';
import { programIdsOf } from '../test/helpers/procfs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SENDS = Number(process.env.BENCH_SENDS ?? 1_000_000);
const SIZE = 64;
const SENDLOOP = path.join(PROJECT_ROOT, 'build', 'bench', 'sendloop');
const EMPTY = path.join(PROJECT_ROOT, 'build', 'bench-bpf', 'empty.bpf.o');

const BPFTRACE_PROGRAM = [
  'tracepoint:sock:sock_send_length /args->protocol == 6 && args->ret > 0/ { @sent[cgroup, comm] = sum(args->ret); }',
  'tracepoint:sock:sock_recv_length /args->protocol == 6 && args->ret > 0 && !(args->flags & 2)/ { @recv[cgroup, comm] = sum(args->ret); }',
  'END { clear(@sent); clear(@recv); }',
].join('\n');

/** A probe configuration: set up, then tear down; programIds for the stats pass. */
interface Running {
  programIds(): number[];
  stop(): Promise<void>;
}
interface Config {
  name: string;
  start(): Promise<Running>;
}

function floor(programs: string[]): () => Promise<Running> {
  return async () => {
    const obj: NativeBpfObject = new (native().BpfObject)(EMPTY);
    for (const p of obj.programs()) obj.setAutoload(p.name, programs.includes(p.name));
    obj.load();
    for (const p of programs) obj.attach(p);
    return {
      programIds: () => programs.map((p) => obj.programInfo(p)!.id),
      stop: async () => obj.close(),
    };
  };
}

async function startBpftrace(): Promise<Running> {
  const child: ChildProcess = spawn('bpftrace', ['-e', BPFTRACE_PROGRAM], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30000;
  while (!/Attaching \d+ probes/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`bpftrace did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300)); // attached after the banner
  return {
    programIds: () => programIdsOf(child.pid!),
    stop: async () => {
      child.kill('SIGINT');
      await waitExit(child, 20000);
    },
  };
}

async function startTally(): Promise<Running> {
  const agent = await AgentProcess.start();
  return {
    programIds: () => agent.programIds(),
    stop: async () => {
      await agent.stop();
    },
  };
}

const CONFIGS: Config[] = [
  { name: 'none', start: async () => ({ programIds: () => [], stop: async () => undefined }) },
  { name: 'floor (tp_btf)', start: floor(['empty_send_btf', 'empty_recv_btf']) },
  { name: 'floor (tracepoint)', start: floor(['empty_send_tp', 'empty_recv_tp']) },
  { name: 'bpftrace', start: startBpftrace },
  { name: 'tally', start: startTally },
];

/**
 * One timed loop. Sender and sink share CPU 1: on two CPUs that is far less
 * noisy than splitting them, and the time per send then includes the
 * receiving side's work (and probes) for the same bytes. Returns ns per send.
 */
async function sendLoop(): Promise<number> {
  const sink = spawn('taskset', ['-c', '1', SENDLOOP, 'sink'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => sink.stdout!.once('data', (d) => resolve(String(d).trim())));
  const out = execFileSync('taskset', ['-c', '1', SENDLOOP, 'send', port, String(SENDS), String(SIZE)], { encoding: 'utf8' });
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

async function statsPass(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const before = fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  fs.writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  try {
    for (const c of CONFIGS.filter((c) => c.name !== 'none')) {
      const r = await c.start();
      try {
        await sendLoop();
        let ns = 0;
        let cnt = 0;
        for (const id of r.programIds()) {
          const p = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(id), '--json'], { encoding: 'utf8' })) as ProgStats & { name?: string };
          // Only the send/receive hooks run per send; exec hooks do not.
          if (p.name && /exec/.test(p.name)) continue;
          ns += p.run_time_ns ?? 0;
          cnt += p.run_cnt ?? 0;
        }
        out.set(c.name, cnt ? ns / cnt : NaN);
      } finally {
        await r.stop();
      }
    }
  } finally {
    fs.writeFileSync('/proc/sys/kernel/bpf_stats_enabled', before);
  }
  return out;
}

async function main(): Promise<void> {
  const samples = new Map<string, number[]>(CONFIGS.map((c) => [c.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of shuffled(CONFIGS)) {
      const r = await c.start();
      try {
        samples.get(c.name)!.push(await sendLoop());
      } finally {
        await r.stop();
      }
    }
    process.stderr.write(`round ${round}/${ROUNDS}: ${CONFIGS.map((c) => `${c.name}=${samples.get(c.name)!.at(-1)!.toFixed(0)}`).join(' ')}\n`);
  }
  const inKernel = await statsPass();

  const none = samples.get('none')!;
  // Paired with the same round's baseline, so slow drift cancels out.
  const added = (name: string): number => median(samples.get(name)!.map((x, i) => x - none[i]));
  const bt = added('bpftrace');
  const rows = CONFIGS.map((c) => {
    const m = median(samples.get(c.name)!);
    const a = added(c.name);
    const prog = inKernel.get(c.name);
    return `| ${c.name} | ${m.toFixed(0)} | ${c.name === 'none' ? '—' : a.toFixed(0)} | ${c.name === 'none' ? '—' : (a / bt).toFixed(2)} | ${prog === undefined || isNaN(prog) ? '—' : prog.toFixed(0)} |`;
  });
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const table = [
    `${ROUNDS} rounds × ${SENDS.toLocaleString('en')} sends of ${SIZE} bytes, configurations shuffled each round; kernel ${kernel}, ${native().numPossibleCpus()} CPUs.`,
    '',
    '| configuration | ns per send (median) | added ns per send | added, relative to bpftrace | BPF run time per event, ns |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `tally adds ${(added('tally') / bt * 100).toFixed(0)}% of what bpftrace adds per send ` +
      `(${added('tally').toFixed(0)} ns against ${bt.toFixed(0)} ns).`,
  ].join('\n');
  process.stdout.write(table + '\n');

  if (process.argv.includes('--write')) {
    const file = path.join(PROJECT_ROOT, 'BENCHMARKS.md');
    const text = fs.readFileSync(file, 'utf8');
    const re = /(<!-- tcp-send-overhead:begin -->\n)[\s\S]*?(\n<!-- tcp-send-overhead:end -->)/;
    if (!re.test(text)) throw new Error('BENCHMARKS.md lacks the tcp-send-overhead markers');
    fs.writeFileSync(file, text.replace(re, `$1${table}$2`));
    process.stderr.write(`updated ${file}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
