/**
 * The cost of an OTLP export, per series, at 10k and 100k series.
 *
 *   1. In process, on synthetic series: turning one read of the kernel
 *      counters into OTLP data (the first export computes each series'
 *      attributes; later ones reuse them) and encoding it as the protobuf
 *      request both exporters send. This is the part that runs on the
 *      agent's event loop, so it is also how long a /metrics scrape may
 *      wait behind an export.
 *   2. The real agent exporting over http/protobuf to a receiver in this
 *      process: N leaf cgroups, each with one series of
 *      tally_tcp_received_bytes_total written straight into the kernel map (as
 *      bench/cardinality.ts does). Per export: wall time (read, build,
 *      encode, send, answer) from the agent's debug log and the request's
 *      size; and a /metrics scrape in the same run. (The agent's CPU over
 *      a window of exports is not shown: sweeps and the agent's own
 *      metrics run in it too; table 1 is the export's own CPU.)
 *
 *   npm run bench:otlp             print the tables
 *   npm run bench:otlp -- --write  also update BENCHMARKS.md
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { hrTime } from '@opentelemetry/core';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { BUCKET_SUM, encodeCounterKey } from '../src/bpf/layout';
import { native, BPF_NOEXIST } from '../src/native/addon';
import { findCgroup2Mount } from '../src/labels/cgroup-mount';
import { labelKey } from '../src/cardinality/series-limiter';
import { CollectedFamily } from '../src/collectors/kernel-counters';
import { kernelMetrics } from '../src/exporters/otlp/kernel-metrics';
import { SeriesMemory } from '../src/exporters/otlp/series-memory';
import { tallyResource } from '../src/exporters/otlp/resource';
import { AgentProcess } from '../test/helpers/agent-process';
import { mapIdsOf } from '../test/helpers/procfs';
import { kernelIdOf, parsePromText, select } from '../test/helpers/prom-text';
import { onExit } from '../test/helpers/cleanup';
import { writeBenchmarksBlock } from './benchmarks-md';

const SIZES = (process.env.BENCH_SERIES ?? '10000,100000').split(',').map(Number);
const EXPORTS = Number(process.env.BENCH_EXPORTS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// --- 1. in process -----------------------------------------------------------

function syntheticFamily(n: number, histogram: boolean): CollectedFamily {
  const series = Array.from({ length: n }, (_, i) => {
    const labels = { workload: `workload-${i}`, binary: `/usr/bin/app${i % 100}` };
    // A histogram series with 8 of its buckets filled, as a busy send-size histogram has.
    const buckets = histogram ? new Map<number, number>([...Array.from({ length: 8 }, (_, k): [number, number] => [4 + k, 10 + k]), [BUCKET_SUM, 123456]]) : undefined;
    return { labels, key: labelKey(labels), value: 1000 + i, buckets };
  });
  const metric = histogram
    ? { id: 17, name: 'tally_tcp_send_size_bytes', help: 'The size of each TCP send, in bytes.', type: 'histogram' as const, unitLog2: 0 }
    : { id: 16, name: 'tally_tcp_sent_bytes_total', help: 'Bytes sent over TCP, by the socket\'s cgroup.', type: 'counter' as const };
  return { metric, series, topBucket: 11 };
}

function inProcess(): string[] {
  const rows: string[] = [];
  const resource = tallyResource({});
  for (const n of SIZES) {
    for (const histogram of [false, true]) {
      const families = [syntheticFamily(n, histogram)];
      const memory = new SeriesMemory(hrTime());
      const build = () => {
        const metrics = kernelMetrics(families, memory, hrTime());
        memory.commit(hrTime());
        return { resource, scopeMetrics: [{ scope: { name: 'tally', version: 'bench' }, metrics }] };
      };
      let t0 = process.hrtime.bigint();
      build();
      const first = ms(t0);
      const builds: number[] = [];
      const encodes: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 5; i++) {
        t0 = process.hrtime.bigint();
        const rm = build();
        builds.push(ms(t0));
        t0 = process.hrtime.bigint();
        const body = ProtobufMetricsSerializer.serializeRequest(rm);
        encodes.push(ms(t0));
        bytes = body?.length ?? 0;
      }
      const steady = median(builds) + median(encodes);
      const us = (x: number): string => ((x * 1000) / n).toFixed(2);
      rows.push(
        `| ${n.toLocaleString('en')} | ${histogram ? 'histogram (8 buckets)' : 'counter'} | ${first.toFixed(0)} | ${median(builds).toFixed(0)} | ${median(encodes).toFixed(0)} | ${us(median(builds))} + ${us(median(encodes))} = ${us(steady)} | ${(bytes / n).toFixed(0)} |`,
      );
      process.stderr.write(`in process ${n} ${histogram ? 'histograms' : 'counters'}: ${steady.toFixed(0)} ms\n`);
    }
  }
  return rows;
}

// --- 2. the real agent ---------------------------------------------------------

const MOUNT = findCgroup2Mount();

/** N leaf cgroups under one parent, removed however the benchmark ends. */
function makeCgroups(n: number, tag: string): { ids: bigint[]; remove(): void } {
  const root = path.join(MOUNT, `tally-bench-otlp-${tag}-${process.pid}`);
  fs.mkdirSync(root);
  const ids: bigint[] = [];
  for (let i = 0; i < n; i++) {
    fs.mkdirSync(path.join(root, `w${i}`));
    ids.push(fs.statSync(path.join(root, `w${i}`), { bigint: true }).ino);
  }
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    for (let i = 0; i < n; i++) {
      try {
        fs.rmdirSync(path.join(root, `w${i}`));
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
  onExit(remove);
  return { ids, remove };
}

/** A collector that answers at once and keeps only the size of each request. */
async function sizeOnlyReceiver(): Promise<{ url: string; sizes: number[]; close(): Promise<void> }> {
  const sizes: number[] = [];
  const server = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      sizes.push(size);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    sizes,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function counterMapFd(pid: number): number {
  for (const id of mapIdsOf(pid)) {
    const fd = native().mapFdById(id);
    if (native().mapInfo(fd).name === 'tally_counters') return fd;
    native().closeFd(fd);
  }
  throw new Error('no tally_counters map in the agent');
}

/** The agent's "OTLP export" debug lines so far: points and ms of each successful export. */
function exportsLogged(agent: AgentProcess): Array<{ points: number; ms: number }> {
  return [...agent.stderr.matchAll(/msg="OTLP export" points=(\d+) ms=(\d+)/g)].map((m) => ({ points: Number(m[1]), ms: Number(m[2]) }));
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function realAgent(): Promise<string[]> {
  const rows: string[] = [];
  const cpus = native().numPossibleCpus();
  for (const n of SIZES) {
    const cgs = makeCgroups(n, `s${n}`);
    const receiver = await sizeOnlyReceiver();
    // The interval leaves room for the export and for the sweeps between.
    const interval = n >= 50_000 ? '5s' : '2s';
    const agent = await AgentProcess.start([
      '--metrics-label-filter', 'workload',
      '--metrics-series-limit', String(n + 1000),
      '--bpf-map-capacity', String(n + 16384),
      '--metrics-series-ttl', '1h',
      '--builtin-policies', 'tcp-bytes',
      '--otlp-endpoint', receiver.url,
      '--otlp-interval', interval,
      '--log-level', 'debug',
    ]);
    try {
      // Received, not sent bytes: sent bytes are read from the send-size histogram's sum and have no entries.
      const received = kernelIdOf(parsePromText(await agent.metricsText()), 'tally_tcp_received_bytes_total');
      const fd = counterMapFd(agent.child.pid!);
      const value = Buffer.alloc(8 * cpus);
      value.writeBigUInt64LE(1000n);
      for (const id of cgs.ids) native().mapUpdate(fd, encodeCounterKey({ cgroupId: id, binaryId: 0n, metric: received, flags: 0 }), value, BPF_NOEXIST);
      native().closeFd(fd);
      // Steady state: every cgroup folded into its label set, then an export that has them all.
      await until(async () => {
        const s = parsePromText(await agent.metricsText());
        return (select(s, 'tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' })[0]?.value ?? 0) >= n;
      }, 'fold-in', 300_000);
      await until(() => exportsLogged(agent).some((e) => e.points >= n), 'an export of every series', 120_000);
      const start = exportsLogged(agent).length;
      await until(() => exportsLogged(agent).length >= start + EXPORTS, `${EXPORTS} exports`, 300_000);
      const window = exportsLogged(agent).slice(start, start + EXPORTS);
      const wall = median(window.map((e) => e.ms));
      const points = window[window.length - 1].points;
      const bytes = median(receiver.sizes.slice(-EXPORTS));
      const scrapes: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        await agent.metricsText();
        scrapes.push(ms(t0));
      }
      rows.push(
        `| ${n.toLocaleString('en')} | ${points.toLocaleString('en')} | ${wall.toFixed(0)} | ${((wall * 1000) / n).toFixed(1)} | ${(bytes / 1024 / 1024).toFixed(1)} | ${median(scrapes).toFixed(0)} |`,
      );
      process.stderr.write(`agent ${n}: export ${wall} ms\n`);
    } catch (e) {
      throw new Error(`${(e as Error).message}; agent said:\n${agent.stderr.split('\n').slice(-15).join('\n')}`);
    } finally {
      await agent.stop();
      await receiver.close();
      cgs.remove();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const synthetic = inProcess();
  const agent = await realAgent();
  const table = [
    `${os.cpus().length} CPUs, kernel ${os.release()}, Node ${process.version}; @opentelemetry/exporter-metrics-otlp-proto 0.223.0.`,
    '',
    '### Building and encoding an export, in process',
    '',
    '| series | kind | first build, ms (attributes computed) | build, ms (median of 5) | encode, ms (median of 5) | µs per series, build + encode | request bytes per series |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...synthetic,
    '',
    `### The agent exporting over http/protobuf (median of ${EXPORTS} exports)`,
    '',
    '| series (leaf cgroups) | points per export | export, ms (read, build, encode, send, answer) | µs per series | request, MiB | a /metrics scrape in the same run, ms (median of 3) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...agent,
  ].join('\n');
  process.stdout.write(table + '\n');
  if (process.argv.includes('--write')) {
    writeBenchmarksBlock('otlp-export', table);
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
