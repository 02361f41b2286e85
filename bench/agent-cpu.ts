/**
 * Issue 22's agent CPU goal: at most 1% of one core at 1M events/s with 10k
 * series scraped every 15 s, and flat from 10k to 1M events/s, because no
 * event reaches user space.
 *
 * The agent runs the default built-ins (`npm start`'s flags, plus
 * `--metrics-label-filter workload` and a series limit that holds 10k
 * series). 10,000 leaf cgroups get a counter entry each, written into its
 * kernel map, and are folded into label sets. Then, for each rate, a writer
 * in a cgroup of its own makes 64-byte write(2)s to a file (file-writes
 * counts each) for WINDOW_S seconds while the bench scrapes every 15 s. The
 * agent's CPU is utime + stime from /proc/PID/stat over the window; the
 * writer's bytes, as the agent reports them, prove every event was counted.
 *
 *   npm run bench:cpu        (as root; BENCH_CPU_WINDOW_S, BENCH_CPU_RATES, BENCH_SERIES)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';
import { AgentProcess } from '../test/helpers/agent-process';
import { TestCgroup } from '../test/helpers/cgroup';
import { parsePromText, select } from '../test/helpers/prom-text';
import { makeCgroups, seedCounterEntries, waitFoldedIn } from './memory/cgroup-tree';

const SERIES = Number(process.env.BENCH_SERIES ?? 10_000);
const WINDOW_S = Number(process.env.BENCH_CPU_WINDOW_S ?? 60);
const SCRAPE_EVERY_S = 15;
const SETTLE_S = 30;
const RATES = (process.env.BENCH_CPU_RATES ?? '0,10000,100000,1000000').split(',').map(Number);
const SYSCALLLOOP = path.join(PROJECT_ROOT, 'build', 'bench', 'syscallloop');
const WRITTEN = 'tally_file_written_bytes_total';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const writtenBy = (text: string, workload: string): number =>
  select(parsePromText(text), WRITTEN, { workload }).reduce((n, s) => n + s.value, 0);

interface Row {
  rate: number;
  events: number;
  eventsPerS: number;
  counted: number;
  cpuPct: number;
  scrapeMs: number[];
}

async function measure(agent: AgentProcess, rate: number): Promise<Row> {
  const pid = agent.child.pid!;
  const writer = TestCgroup.create('cpu-writer');
  const file = path.join(os.tmpdir(), `tally-bench-cpu-${process.pid}`);
  try {
    const before = writtenBy(await agent.metricsText(), writer.name);
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    const child = rate > 0 ? writer.spawn(SYSCALLLOOP, ['write-rate', file, String(rate), String(WINDOW_S)]) : undefined;
    let out = '';
    child?.stdout!.on('data', (d) => (out += d));
    const exited = child ? new Promise((r) => child.once('exit', r)) : sleep(WINDOW_S * 1000);
    // Scraped as Prometheus would: every 15 s through the window.
    const scrapeMs: number[] = [];
    for (let s = 0; s * SCRAPE_EVERY_S < WINDOW_S; s++) {
      await sleep(Math.max(0, t0 + s * SCRAPE_EVERY_S * 1000 - Date.now()));
      const a = performance.now();
      await agent.metricsText();
      scrapeMs.push(performance.now() - a);
    }
    await exited;
    const seconds = (Date.now() - t0) / 1000;
    const cpuPct = (100 * (cpuSeconds(pid) - cpu0)) / seconds;
    const [events, took] = rate > 0 ? out.trim().split(' ').map(Number) : [0, seconds];
    // The agent's count of the writer's bytes, once a scrape shows them all (a read sees what the kernel has).
    let counted = 0;
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(500)) {
      counted = (writtenBy(await agent.metricsText(), writer.name) - before) / 64;
      if (counted >= events) break;
    }
    return { rate, events, eventsPerS: events / took, counted, cpuPct, scrapeMs };
  } finally {
    writer.destroy();
    fs.rmSync(file, { force: true });
  }
}

async function main(): Promise<void> {
  const cgs = makeCgroups(SERIES, `cpu${SERIES}`);
  const agent = await AgentProcess.start([
    '--metrics-label-filter', 'workload',
    '--metrics-series-limit', String(SERIES + 1000),
    '--bpf-map-capacity', String(SERIES + 16384),
  ]);
  try {
    await seedCounterEntries(agent, cgs.ids, 'tally_tcp_received_bytes_total', 1000n);
    await waitFoldedIn(agent, SERIES);
    const series = select(parsePromText(await agent.metricsText()), 'tally_tcp_received_bytes_total').length;
    // The fold-in's last sweeps and the reclaim after them are the agent's start, not its steady state.
    await sleep(SETTLE_S * 1000);
    const rows: Row[] = [];
    for (const rate of RATES) {
      const r = await measure(agent, rate);
      rows.push(r);
      process.stderr.write(`rate ${rate}: ${Math.round(r.eventsPerS)} events/s, counted ${r.counted} of ${r.events}, agent CPU ${r.cpuPct.toFixed(2)}%\n`);
    }
    const fmt = (n: number): string => Math.round(n).toLocaleString('en');
    process.stdout.write(
      [
        `${series.toLocaleString('en')} series of tcp-bytes scraped every ${SCRAPE_EVERY_S} s, and the default built-ins; ${WINDOW_S} s per rate; kernel ${os.release()}, ${os.cpus().length} CPUs.`,
        '',
        '| events/s asked | events/s made | counted by the agent | agent CPU, % of one core | goal | scrapes, ms |',
        '| ---: | ---: | ---: | ---: | --- | --- |',
        ...rows.map((r) =>
          `| ${fmt(r.rate)} | ${fmt(r.eventsPerS)} | ${r.events === 0 ? '—' : `${fmt(r.counted)} of ${fmt(r.events)}`} | ${r.cpuPct.toFixed(2)} | ≤ 1%${r.rate > 0 ? ', flat' : ''} | ${r.scrapeMs.map((x) => x.toFixed(0)).join(', ')} |`),
        '',
      ].join('\n'),
    );
  } finally {
    await agent.stop();
    cgs.remove();
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
