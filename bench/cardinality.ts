/**
 * Cardinality at scale, against the real agent and real cgroups.
 *
 *   1. Scrape latency and agent RSS with 1k, 10k and 100k series, and the
 *      cost per series of each exposition format. Each series is a real leaf
 *      cgroup (workload = its name) with one counter entry written straight
 *      into the agent's kernel map, so no traffic is needed to reach 100k.
 *   2. Reading a 100k-entry map: BPF_MAP_LOOKUP_BATCH against key-by-key.
 *   3. Churn: 10k cgroups each send real bytes, then are removed; after the
 *      series TTL, kernel entries, label sets, caches and memory are compared
 *      with the baseline.
 *
 *   npm run bench:cardinality             print the tables
 *   npm run bench:cardinality -- --write  also update BENCHMARKS.md
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { native, BPF_NOEXIST } from '../src/native/addon';
import { encodeCounterKey } from '../src/bpf/layout';
import { findCgroup2Mount } from '../src/labels/cgroup-mount';
import { AgentProcess, waitExit } from '../test/helpers/agent-process';
import { mapIdsOf } from '../test/helpers/procfs';
import { kernelIdOf, select, parsePromText } from '../test/helpers/prom-text';
import { FIXTURE_OBJECT } from '../test/helpers/fixture';
import { onExit } from '../test/helpers/cleanup';
import { HOPPER, SINK } from '../test/helpers/python-peers';
import { writeBenchmarksBlock } from './benchmarks-md';

const MOUNT = findCgroup2Mount();
const SIZES = (process.env.BENCH_SERIES ?? '1000,10000,100000').split(',').map(Number);
const CHURN = Number(process.env.BENCH_CHURN ?? 10000);
const CHURN_CYCLES = Number(process.env.BENCH_CHURN_CYCLES ?? 3);

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** A tree of leaf cgroups under one parent, created and removed in bulk. */
function makeCgroups(n: number, tag: string): { root: string; ids: bigint[]; names: string[]; remove(): void } {
  const root = path.join(MOUNT, `tally-bench-${tag}-${process.pid}`);
  fs.mkdirSync(root);
  const names: string[] = [];
  const ids: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const name = `w${i}`;
    fs.mkdirSync(path.join(root, name));
    names.push(name);
    ids.push(fs.statSync(path.join(root, name), { bigint: true }).ino);
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    for (const name of names) {
      try {
        fs.rmdirSync(path.join(root, name));
      } catch {
        /* already gone */
      }
    }
    try {
      fs.rmdirSync(root);
    } catch {
      /* already gone */
    }
  };
  onExit(remove); // also when the benchmark fails or is interrupted
  return { root, ids, names, remove };
}

function counterMapFd(pid: number): number {
  for (const id of mapIdsOf(pid)) {
    const fd = native().mapFdById(id);
    if (native().mapInfo(fd).name === 'tally_counters') return fd;
    native().closeFd(fd);
  }
  throw new Error('no tally_counters map in the agent');
}

/** The counter the scaling benchmark writes its series under. */
const SYNTHETIC = 'tally_tcp_received_bytes_total';

/** The formats a scraper can negotiate, with the headers that ask for each. */
const FORMATS: Array<[string, Record<string, string>]> = [
  ['text 0.0.4', {}],
  ['text 0.0.4, gzip', { 'accept-encoding': 'gzip' }],
  ['OpenMetrics 1.0', { accept: 'application/openmetrics-text; version=1.0.0' }],
  ['protobuf (native histograms)', { accept: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited' }],
];

/** One scrape as the wire sees it: ms until the last byte, and the bytes. */
function scrapeRaw(port: number, headers: Record<string, string>): Promise<{ ms: number; bytes: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes }));
      })
      .on('error', reject);
  });
}

async function scrapeScaling(): Promise<{ rows: string[]; formats: string[] }> {
  const rows: string[] = [];
  const formats: string[] = [];
  const cpus = native().numPossibleCpus();
  for (const n of SIZES) {
    const cgs = makeCgroups(n, `s${n}`);
    const agent = await AgentProcess.start([
      '--metrics-label-filter', 'workload',
      '--metrics-series-limit', String(n + 1000),
      '--bpf-map-capacity', String(n + 16384),
      '--metrics-series-ttl', '1h',
    ]);
    try {
      const rssIdle = rssMiB(agent.child.pid!);
      const fd = counterMapFd(agent.child.pid!);
      const value = Buffer.alloc(8 * cpus);
      value.writeBigUInt64LE(1000n);
      // The id tcp-bytes' policy counts received bytes under: entries of any other id show nowhere.
      // (Not sent bytes: that counter is read from the send-size histogram's sum and has no entries.)
      const metric = kernelIdOf(await agent.scrape(), SYNTHETIC);
      for (const id of cgs.ids) native().mapUpdate(fd, encodeCounterKey({ cgroupId: id, binaryId: 0n, metric, flags: 0 }), value, BPF_NOEXIST);
      native().closeFd(fd);
      const times: number[] = [];
      const first = process.hrtime.bigint();
      await agent.metricsText();
      times.push(Number(process.hrtime.bigint() - first) / 1e6);
      // Wait for the steady state: every new cgroup folded into its label set.
      const deadline = Date.now() + 120_000;
      for (;;) {
        const s = parsePromText(await agent.metricsText());
        if ((select(s, 'tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' })[0]?.value ?? 0) >= n) break;
        if (Date.now() > deadline) throw new Error('fold-in did not finish in 120 s');
        await new Promise((r) => setTimeout(r, 1000));
      }
      const foldedAfter = Number(process.hrtime.bigint() - first) / 1e9;
      let series = 0;
      let bytes = 0;
      // Seven scrapes as Prometheus would see them, 1 s apart.
      for (let i = 0; i < 7; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        const t0 = process.hrtime.bigint();
        const text = await agent.metricsText();
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        bytes = text.length;
        series = select(parsePromText(text), SYNTHETIC).length;
      }
      // A bench whose series do not show measures an empty scrape: stop rather than report it.
      if (series < n) throw new Error(`only ${series} of ${n} series scraped`);
      const steady = times.slice(1);
      for (const [format, headers] of FORMATS) {
        const runs: Array<{ ms: number; bytes: number }> = [];
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 1000));
          runs.push(await scrapeRaw(agent.port, headers));
        }
        const ms = median(runs.map((r) => r.ms));
        formats.push(`| ${n.toLocaleString('en')} | ${format} | ${ms.toFixed(0)} | ${((ms * 1000) / n).toFixed(1)} | ${(median(runs.map((r) => r.bytes)) / 1024 / 1024).toFixed(2)} |`);
      }
      rows.push(`| ${n.toLocaleString('en')} | ${series.toLocaleString('en')} | ${times[0].toFixed(0)} | ${foldedAfter.toFixed(1)} | ${median(steady).toFixed(0)} | ${Math.max(...steady).toFixed(0)} | ${(median(steady) * 1000 / n).toFixed(1)} | ${(bytes / 1024 / 1024).toFixed(1)} | ${rssIdle.toFixed(0)} | ${rssMiB(agent.child.pid!).toFixed(0)} |`);
      process.stderr.write(`scrape ${n}: ${median(times).toFixed(0)} ms\n`);
    } catch (e) {
      throw new Error(`${(e as Error).message}; agent said:\n${agent.stderr.split('\n').slice(-15).join('\n')}`);
    } finally {
      await agent.stop();
      cgs.remove();
    }
  }
  return { rows, formats };
}

function batchVsKeys(): string[] {
  const n = 100_000;
  const obj = new (native().BpfObject)(FIXTURE_OBJECT);
  try {
    for (const p of obj.programs()) obj.setAutoload(p.name, false);
    obj.setMaxEntries('test_hash', n);
    obj.load();
    const fd = obj.mapFd('test_hash');
    const k = Buffer.alloc(4);
    const v = Buffer.alloc(8);
    for (let i = 0; i < n; i++) {
      k.writeUInt32LE(i);
      native().mapUpdate(fd, k, v);
    }
    const time = (batch: boolean): number => {
      const xs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint();
        const d = native().mapLookupAll(fd, { batch });
        if (d.count !== n) throw new Error(`read ${d.count} of ${n}`);
        xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return median(xs);
    };
    const batched = time(true);
    const walked = time(false);
    return [
      `| BPF_MAP_LOOKUP_BATCH | ${batched.toFixed(1)} | ${(batched * 1e6 / n).toFixed(0)} |`,
      `| key by key (get_next_key + lookup) | ${walked.toFixed(1)} | ${(walked * 1e6 / n).toFixed(0)} |`,
      '',
      `Batch reads are ${(walked / batched).toFixed(1)}× faster.`,
    ];
  } finally {
    obj.close();
  }
}

async function churn(): Promise<string[]> {
  const agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--metrics-series-ttl', '2s', '--metrics-series-limit', String(CHURN * 2)]);
  const health = async (): Promise<Record<string, number>> => {
    const s = parsePromText(await agent.metricsText());
    const one = (name: string, labels: Record<string, string> = {}): number => select(s, name, labels)[0]?.value ?? 0;
    return {
      entries: one('tally_bpf_map_entries', { map: 'tally_counters' }),
      mapped: one('tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' }),
      labelSets: one('tally_label_sets'),
      cache: one('tally_cache_entries', { cache: 'cgroup_path' }),
      series: select(s, 'tally_tcp_sent_bytes_total').length,
      heap: one('nodejs_heap_size_used_bytes') / 1024 / 1024,
      rss: rssMiB(agent.child.pid!),
    };
  };
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const before = await health();
    // Several rounds: memory that creeps up round after round is a leak,
    // a one-off rise after the first is the heap settling.
    const during: Array<Record<string, number>> = [];
    const after: Array<Record<string, number>> = [];
    for (let cycle = 0; cycle < CHURN_CYCLES; cycle++) {
      const cgs = makeCgroups(CHURN, `churn${cycle}`);
      const sink = spawn('/usr/bin/python3', ['-c', SINK], { stdio: ['ignore', 'pipe', 'inherit'] });
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const hop = spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'inherit', 'inherit'] });
      hop.stdin!.end(cgs.names.map((n) => `${path.join(cgs.root, n, 'cgroup.procs')} 100`).join('\n') + '\n');
      await waitExit(hop, 300_000);
      sink.kill();
      await new Promise((r) => setTimeout(r, 1500)); // a sweep or two: fold-in
      during.push(await health());
      cgs.remove();
      await new Promise((r) => setTimeout(r, 6000)); // the TTL, and sweeps after it
      after.push(await health());
    }
    const row = (what: string, f: (h: Record<string, number>) => number, digits = 0): string =>
      `| ${what} | ${[before, during[0], ...after].map((h) => f(h).toFixed(digits)).join(' | ')} |`;
    return [
      row('kernel counter entries', (h) => h.entries),
      row('cgroup -> label-set mappings', (h) => h.mapped),
      row('label sets', (h) => h.labelSets),
      row('cgroup path cache entries', (h) => h.cache),
      row('tally_tcp_sent_bytes_total series', (h) => h.series),
      row('JS heap used, MiB', (h) => h.heap, 1),
      row('RSS, MiB', (h) => h.rss, 1),
    ];
  } finally {
    await agent.stop();
  }
}

async function main(): Promise<void> {
  const { rows: scaling, formats } = await scrapeScaling();
  const batch = batchVsKeys();
  const churned = await churn();
  const table = [
    '### Scrape latency and memory by series count',
    '',
    '| series (leaf cgroups) | series scraped | first scrape, ms (resolves every cgroup) | all folded into label sets after, s | scrape, ms (median of 7, 1 s apart) | slowest of the 7, ms | µs per series | body, MiB | agent RSS idle, MiB | agent RSS after scrapes, MiB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...scaling,
    '',
    '### Scrape cost per series by exposition format',
    '',
    'The same agent and series, each format negotiated as a scraper would (median of 5 scrapes, 1 s apart; time until the last byte).',
    '',
    '| series | format | scrape, ms | µs per series | body, MiB |',
    '| ---: | --- | ---: | ---: | ---: |',
    ...formats,
    '',
    '### Reading 100,000 map entries',
    '',
    '| method | ms (median of 5) | ns per entry |',
    '| --- | ---: | ---: |',
    ...batch,
    '',
    `### Churn: ${CHURN_CYCLES} rounds of ${CHURN.toLocaleString('en')} cgroups (each sends 100 bytes, then is removed; TTL 2 s)`,
    '',
    `| | before | with the cgroups (round 1) | ${Array.from({ length: CHURN_CYCLES }, (_, i) => `6 s after round ${i + 1}`).join(' | ')} |`,
    `| --- | ${Array.from({ length: CHURN_CYCLES + 2 }, () => '---:').join(' | ')} |`,
    ...churned,
  ].join('\n');
  process.stdout.write(table + '\n');
  if (process.argv.includes('--write')) {
    writeBenchmarksBlock('cardinality', table);
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
