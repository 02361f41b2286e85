/**
 * The agent's memory against issue 22's goals, in one run:
 *
 *   1. Idle: the default `npm start` configuration (all built-ins, host mode),
 *      IDLE_S seconds after /readyz: RSS, the V8 heap after a full collection,
 *      where the anonymous memory lives, and the descriptors by kind.
 *   2. 100k series: real leaf cgroups, one counter entry each written into
 *      the agent's kernel map (as bench/cardinality.ts does), folded into label
 *      sets and scraped 7 times: RSS after, and the peak.
 *   3. Churn: ROUNDS rounds of CHURN cgroups that each send 100 bytes and are
 *      removed; after each round's TTL, the heap (after a full collection) and
 *      RSS against the baseline.
 *
 * The agent runs as npm start runs it (tests/helpers' AGENT_NODE_FLAGS), with
 * bench/memory/heap-probe preloaded: a forced collection on SIGUSR2, nothing
 * else.
 *
 *   npm run bench:memory             print the tables
 *   npm run bench:memory -- --write  also update BENCHMARKS.md
 *   BENCH_MEMORY_PARTS=idle,churn    run some parts only (idle, series, churn)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { AgentProcess, waitExit } from '../test/helpers/agent-process';
import { parsePromText, select } from '../test/helpers/prom-text';
import { HOPPER, SINK } from '../test/helpers/python-peers';
import { anonByRegion, fdKinds, procMemory } from './memory/procfs-memory';
import { makeCgroups, seedCounterEntries, waitFoldedIn } from './memory/cgroup-tree';
import { writeBenchmarksBlock } from './benchmarks-md';

const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20);
const SERIES = Number(process.env.BENCH_SERIES ?? 100_000);
const CHURN = Number(process.env.BENCH_CHURN ?? 10_000);
const ROUNDS = Number(process.env.BENCH_CHURN_ROUNDS ?? 5);
const PARTS = new Set((process.env.BENCH_MEMORY_PARTS ?? 'idle,series,churn').split(','));

const GOAL = { idleRssMiB: 80, seriesRssMiB: 160, churnGrowth: 0.1 };
const REPRODUCE = 'npm run bench:memory -- --write';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number): number => bytes / 1024 / 1024;

interface HeapSample {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  spaces: Record<string, { size: number; used: number }>;
}

/** An agent with the heap probe preloaded; `heap()` collects and reads its heap. */
async function startProbedAgent(flags: string[]): Promise<{ agent: AgentProcess; heap(): Promise<HeapSample> }> {
  const out = path.join(os.tmpdir(), `tally-heap-probe-${process.pid}-${Date.now()}.json`);
  const probe = path.join(PROJECT_ROOT, 'dist/bench/memory/heap-probe.js');
  const agent = await AgentProcess.start(flags, {
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${probe}`.trim(), TALLY_HEAP_PROBE_OUT: out },
    timeoutMs: 120_000,
  });
  const heap = async (): Promise<HeapSample> => {
    fs.rmSync(out, { force: true });
    process.kill(agent.child.pid!, 'SIGUSR2');
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(out)) {
      if (Date.now() > deadline) throw new Error('the agent did not answer the heap probe');
      await sleep(50);
    }
    return JSON.parse(fs.readFileSync(out, 'utf8')) as HeapSample;
  };
  return { agent, heap };
}

async function idle(): Promise<{ rss: number; lines: string[] }> {
  const { agent, heap } = await startProbedAgent([]);
  try {
    await sleep(IDLE_S * 1000);
    const pid = agent.child.pid!;
    const mem = procMemory(pid); // before any forced collection: what a user sees
    const regions = anonByRegion(pid);
    const fds = fdKinds(pid);
    const h = await heap();
    const fdTotal = [...fds.values()].reduce((a, b) => a + b, 0);
    const fdList = [...fds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join(', ');
    return {
      rss: mem.rssMiB,
      lines: [
        `| RSS | ${mem.rssMiB.toFixed(1)} (peak during start ${mem.peakMiB.toFixed(1)}) |`,
        `| · file-backed (node's binary and libraries, shared) | ${mem.fileMiB.toFixed(1)} |`,
        `| · anonymous | ${mem.anonMiB.toFixed(1)} |`,
        `| · · glibc main heap | ${regions.mallocMainMiB.toFixed(1)} |`,
        `| · · glibc arenas of other threads | ${regions.mallocThreadArenasMiB.toFixed(1)} |`,
        `| · · V8 heap, mmapped blocks, stacks | ${regions.otherAnonMiB.toFixed(1)} |`,
        `| V8 heap after a full collection: used / committed | ${mib(h.heapUsed).toFixed(1)} / ${mib(h.heapTotal).toFixed(1)} |`,
        `| V8 external (of it array buffers) | ${mib(h.external).toFixed(1)} (${mib(h.arrayBuffers).toFixed(1)}) |`,
        `| descriptors | ${fdTotal}: ${fdList} |`,
      ],
    };
  } finally {
    await agent.stop();
  }
}

async function atSeries(): Promise<{ rss: number; peak: number; scraped: number }> {
  const cgs = makeCgroups(SERIES, `mem${SERIES}`);
  const { agent } = await startProbedAgent([
    '--metrics-label-filter', 'workload',
    '--metrics-series-limit', String(SERIES + 1000),
    '--bpf-map-capacity', String(SERIES + 16384),
    '--metrics-series-ttl', '1h',
  ]);
  try {
    const pid = agent.child.pid!;
    await seedCounterEntries(agent, cgs.ids, 'tally_tcp_received_bytes_total', 1000n);
    // Scraped once a second, as bench/cardinality.ts does, until every cgroup is folded into its label set.
    await waitFoldedIn(agent, SERIES);
    let scraped = 0;
    for (let i = 0; i < 7; i++) {
      await sleep(1000);
      scraped = select(parsePromText(await agent.metricsText()), 'tally_tcp_received_bytes_total').length;
    }
    if (scraped < SERIES) throw new Error(`only ${scraped} of ${SERIES} series scraped`);
    const mem = procMemory(pid);
    return { rss: mem.rssMiB, peak: mem.peakMiB, scraped };
  } catch (e) {
    throw new Error(`${(e as Error).message}; agent said:\n${agent.stderr.split('\n').slice(-15).join('\n')}`);
  } finally {
    await agent.stop();
    cgs.remove();
  }
}

async function churn(): Promise<{ base: HeapSample; rounds: HeapSample[]; forgottenAfterS: number[]; stillRemembered: number[]; rememberedBefore: number }> {
  const { agent, heap } = await startProbedAgent(['--metrics-label-filter', 'workload', '--metrics-series-ttl', '2s', '--metrics-series-limit', String(CHURN * 2)]);
  try {
    await sleep(3000);
    // One scrape: the churned series shown, and the removed cgroups whose labels are remembered.
    const look = async (): Promise<{ series: number; remembered: number; mallocInUse: number; mallocFree: number }> => {
      const s = parsePromText(await agent.metricsText());
      return {
        mallocInUse: select(s, 'tally_malloc_bytes', { state: 'in_use' })[0]?.value ?? NaN,
        mallocFree: select(s, 'tally_malloc_bytes', { state: 'free' })[0]?.value ?? NaN,
        series: select(s, 'tally_tcp_sent_bytes_total').length,
        remembered: select(s, 'tally_cache_entries', { cache: 'removed_cgroup_labels' })[0]?.value ?? 0,
      };
    };
    const before = await look(); // a scrape before the baseline too: every round is scraped
    const seriesBefore = before.series;
    const rememberedBefore = before.remembered;
    const base = await heap();
    const b = await look();
    process.stderr.write(`before churn: C heap (mallinfo2) in use ${mib(b.mallocInUse).toFixed(1)} MiB, free ${mib(b.mallocFree).toFixed(1)} MiB, anon ${Object.entries(anonByRegion(agent.child.pid!)).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}\n`);
    const rounds: HeapSample[] = [];
    const forgottenAfterS: number[] = [];
    const stillRemembered: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const cgs = makeCgroups(CHURN, `memchurn${round}`);
      const sink = spawn('/usr/bin/python3', ['-c', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const hop = spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'inherit', 'inherit'] });
      hop.stdin!.end(cgs.names.map((n) => `${path.join(cgs.root, n, 'cgroup.procs')} 100`).join('\n') + '\n');
      await waitExit(hop, 300_000);
      sink.kill();
      await sleep(1500); // a sweep or two: fold-in
      const during = (await look()).series;
      if (during < CHURN) throw new Error(`round ${round + 1}: ${during} series of ${CHURN} cgroups`);
      cgs.remove();
      const removedAt = Date.now();
      // The TTL (2 s) and the sweeps after it: the churned cgroups' series must
      // be gone; the host's own (this benchmark's, sshd's) may come and go.
      // Then what the agent remembers of removed cgroups for late events,
      // forgotten REMOVED_MEMORY_TTLS TTLs after the last read that needed it.
      const deadline = removedAt + 60_000;
      // A few of the removed may still be needed: a socket of theirs still counting (late events) refreshes them.
      for (;;) {
        const now = await look();
        if (now.series <= seriesBefore + 2 && now.remembered <= rememberedBefore + CHURN / 100) break;
        if (Date.now() > deadline) throw new Error(`round ${round + 1}: ${now.series} series and ${now.remembered} removed cgroups' labels left 60 s after removal, ${seriesBefore} and ${rememberedBefore} before`);
        await sleep(1000);
      }
      forgottenAfterS.push((Date.now() - removedAt) / 1000);
      await sleep(2000); // a sweep or more after that: the removals' memory is forgotten in the same sweep
      const after = await look();
      stillRemembered.push(after.remembered);
      process.stderr.write(`churn round ${round + 1}: C heap (mallinfo2) in use ${mib(after.mallocInUse).toFixed(1)} MiB, free ${mib(after.mallocFree).toFixed(1)} MiB\n`);
      rounds.push(await heap());
      const h = rounds[round];
      const where = Object.entries(anonByRegion(agent.child.pid!)).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
      process.stderr.write(`churn round ${round + 1}: heap ${mib(h.heapUsed).toFixed(1)}/${mib(h.heapTotal).toFixed(1)} MiB (new ${mib(h.spaces.new_space.size).toFixed(1)}, old ${mib(h.spaces.old_space.size).toFixed(1)}), external ${mib(h.external).toFixed(1)}, RSS ${mib(h.rss).toFixed(1)} MiB (${where})\n`);
    }
    return { base, rounds, forgottenAfterS, stillRemembered, rememberedBefore };
  } catch (e) {
    throw new Error(`${(e as Error).message}; agent said:\n${agent.stderr.split('\n').slice(-15).join('\n')}`);
  } finally {
    await agent.stop();
  }
}

const verdict = (ok: boolean): string => (ok ? 'met' : '**not met**');
const pct = (x: number, base: number): string => `${x >= base ? '+' : ''}${(((x - base) / base) * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  const goals: string[] = [];
  const sections: string[] = [];
  if (PARTS.has('idle')) {
    const r = await idle();
    process.stderr.write(`idle: ${r.rss.toFixed(1)} MiB\n`);
    goals.push(`| RSS idle, \`npm start\` defaults, ${IDLE_S} s after ready | ≤ ${GOAL.idleRssMiB} MiB | ${r.rss.toFixed(1)} MiB | ${verdict(r.rss <= GOAL.idleRssMiB)} |`);
    sections.push(`#### The idle agent (\`npm start\` defaults, ${IDLE_S} s after ready), MiB`, '', '| | |', '| --- | ---: |', ...r.lines, '');
  }
  if (PARTS.has('series')) {
    const what = `RSS at ${SERIES.toLocaleString('en')} series (after fold-in and 7 scrapes`;
    try {
      const r = await atSeries();
      process.stderr.write(`${SERIES} series: ${r.rss.toFixed(1)} MiB, peak ${r.peak.toFixed(1)}\n`);
      goals.push(`| ${what}; peak ${r.peak.toFixed(0)} MiB) | ≤ ${GOAL.seriesRssMiB} MiB | ${r.rss.toFixed(1)} MiB | ${verdict(r.rss <= GOAL.seriesRssMiB)} |`);
    } catch (e) {
      // An agent that dies on the way is this row's result, not the end of the run.
      const msg = (e as Error).message;
      const oom = /JavaScript heap out of memory/.test(msg);
      process.stderr.write(`${SERIES} series failed: ${msg}\n`);
      goals.push(`| ${what}) | ≤ ${GOAL.seriesRssMiB} MiB | ${oom ? 'the agent ran out of its V8 heap (384 MiB) before the fold-in finished' : `failed: ${msg.split('\n')[0]}`} | **not met** |`);
    }
  }
  if (PARTS.has('churn')) {
    const { base, rounds, forgottenAfterS, stillRemembered, rememberedBefore } = await churn();
    const last = rounds[rounds.length - 1];
    const heapOk = last.heapUsed <= base.heapUsed * (1 + GOAL.churnGrowth);
    const rssOk = last.rss <= base.rss * (1 + GOAL.churnGrowth);
    goals.push(`| heap used after ${ROUNDS} churn rounds of ${CHURN.toLocaleString('en')} cgroups (after a full collection), against before | ≤ +10% | ${mib(base.heapUsed).toFixed(1)} → ${mib(last.heapUsed).toFixed(1)} MiB (${pct(last.heapUsed, base.heapUsed)}) | ${verdict(heapOk)} |`);
    goals.push(`| RSS after ${ROUNDS} churn rounds, against before | ≤ +10% | ${mib(base.rss).toFixed(1)} → ${mib(last.rss).toFixed(1)} MiB (${pct(last.rss, base.rss)}) | ${verdict(rssOk)} |`);
    const cell = (f: (h: HeapSample) => number): string => [base, ...rounds].map((h) => mib(f(h)).toFixed(1)).join(' | ');
    sections.push(
      `#### Churn: ${ROUNDS} rounds of ${CHURN.toLocaleString('en')} cgroups (each sends 100 bytes, then is removed; \`--metrics-label-filter workload --metrics-series-ttl 2s\`), MiB after a full collection`,
      '',
      `| | before | ${rounds.map((_, i) => `after round ${i + 1}`).join(' | ')} |`,
      `| --- | ${[base, ...rounds].map(() => '---:').join(' | ')} |`,
      `| heap used | ${cell((h) => h.heapUsed)} |`,
      `| heap committed | ${cell((h) => h.heapTotal)} |`,
      `| external | ${cell((h) => h.external)} |`,
      `| · V8 new space committed | ${cell((h) => h.spaces.new_space.size)} |`,
      `| · V8 old space committed | ${cell((h) => h.spaces.old_space.size)} |`,
      `| RSS | ${cell((h) => h.rss)} |`,
      `| removed cgroups whose labels are remembered (tally_cache_entries) | ${[rememberedBefore, ...stillRemembered].join(' | ')} |`,
      '',
      `Each round's sample is taken once the round's series are gone and the labels of its removed cgroups forgotten (${forgottenAfterS.map((x) => x.toFixed(0)).join(', ')} s after their removal), and 2 s more.`,
      '',
    );
  }
  const table = [
    `Kernel ${os.release()}, ${os.cpus().length} CPUs. Reproduce: \`${REPRODUCE}\` (as root).`,
    '',
    '| goal (issue 22) | target | measured | |',
    '| --- | ---: | ---: | --- |',
    ...goals,
    '',
    ...sections,
  ].join('\n').trimEnd();
  process.stdout.write(`${table}\n`);
  if (process.argv.includes('--write')) {
    writeBenchmarksBlock('memory', table);
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
