/**
 * What tally asks of the Kubernetes API server at cluster scale: N
 * simulated nodes (default 1,000), each running tally's real PodWatcher
 * (list+watch of its pods, owner lookups, backoff, resync), in this
 * process, against the test API server (test/helpers/fake-kube-api.ts) in a
 * child process (bench/kube-load/api-process.ts). Every number is counted at
 * the server, on its clock.
 *
 *   1. Steady state, with pod churn: requests per node per minute, by kind.
 *      Time is compressed (BENCH_KUBE_TIME_SCALE, default 10): the watch
 *      timeout, the resync period and the owner cache's TTL are divided by
 *      it and churn multiplied by it, so 60 s of run is 10 minutes of a
 *      node's life; the rates are reported per simulated minute.
 *   2. A 60 s outage (an API server restart: connections reset, then its
 *      watch history gone) with tally's defaults, in real time: when each
 *      node comes back after the server answers again (5th to 95th
 *      percentile), and the most requests, and reconnects, in any 100 ms.
 *   3. The same outage with the jitter taken out of the backoff (each wait
 *      at the top of its step), as tally retried before: the herd.
 *
 *   npm run bench:kube             print the table
 *   npm run bench:kube -- --write  also update BENCHMARKS.md
 *   BENCH_KUBE_NODES, BENCH_KUBE_STEADY_SECONDS, BENCH_KUBE_OUTAGE_SECONDS,
 *   BENCH_KUBE_TIME_SCALE, BENCH_KUBE_BASELINE=0 (skip 3) shorten a run.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fork, ChildProcess } from 'node:child_process';
import * as diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PodWatcher, PodWatcherOptions } from '../src/labels/kube/pod-watcher';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Backoff, DEFAULT_BACKOFF } from '../src/labels/kube/backoff';
import { Logger } from '../src/util/log';
import { PROJECT_ROOT } from '../src/util/paths';
import { onExit } from '../test/helpers/cleanup';
import { ChurnRate, ClusterShape, nodeName, RequestRecord } from './kube-load/api-process';
import { busiestWindow, modelReconnects, quantile } from './kube-load/stats';

const env = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name}=${v}: expected a positive number`);
  return n;
};
const NODES = env('BENCH_KUBE_NODES', 1000);
const SCALE = env('BENCH_KUBE_TIME_SCALE', 10);
const STEADY_S = env('BENCH_KUBE_STEADY_SECONDS', 60);
const OUTAGE_S = env('BENCH_KUBE_OUTAGE_SECONDS', 60);
const BASELINE = process.env.BENCH_KUBE_BASELINE !== '0';
const SHAPE: ClusterShape = { nodes: NODES, podsPerNode: 20, deployments: 300 };
/** One pod replaced per node every 5 minutes; 1 new pod in 10 is of a new ReplicaSet (a rollout). */
const CHURN: ChurnRate = { podsPerNodePerMinute: 0.2, newReplicaSetShare: 0.1 };
/** Nodes start over this long, as a DaemonSet rolls out, not all in one instant. */
const START_SPREAD_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Every request the simulated nodes send, when they send it (ms since the
 * epoch), and for which node: what tally does, before the API server's own
 * queue (on a busy machine, a burst at the server may be a backlog).
 */
const sent: Array<{ at: number; node: string }> = [];
diagnostics.subscribe('http.client.request.start', (message) => {
  const req = (message as { request: ClientRequest }).request;
  const selector = new URL(req.path, 'http://x').searchParams.get('fieldSelector') ?? '';
  sent.push({ at: performance.timeOrigin + performance.now(), node: /^spec\.nodeName=(.*)$/.exec(selector)?.[1] ?? '' });
});

/** Each node's first request at or after t, in ms after t. */
function firstAfter(records: Array<{ at: number; node: string }>, t: number): Map<string, number> {
  const first = new Map<string, number>();
  for (const r of records) if (r.node && r.at >= t && !first.has(r.node)) first.set(r.node, r.at - t);
  return first;
}

/** The API server process and its IPC calls. */
class ApiServer {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(`api server: ${m.error}`));
      else w?.resolve(m.result);
    });
  }

  static start(): ApiServer {
    const child = fork(path.join(__dirname, 'kube-load', 'api-process.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    onExit(() => child.kill('SIGKILL'));
    return new ApiServer(child);
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  async requests(from: number): Promise<RequestRecord[]> {
    return (await this.call<{ records: RequestRecord[] }>('requests', { from })).records;
  }

  stop(): void {
    this.child.disconnect();
  }
}

/** Counts the lines each outage logs (they must be one at its start and one at its end, per node). */
class LogCount {
  started = 0;
  ended = 0;
  other = 0;
  readonly logger = new Logger('info', (line) => {
    if (line.includes('the API server request failed')) this.started++;
    else if (line.includes('the API server answers again')) this.ended++;
    else this.other++;
  });
}

async function startNodes(kubeconfig: string, opts: Omit<PodWatcherOptions, 'nodeName'>, log: Logger): Promise<PodWatcher[]> {
  const kc = (await loadKubeConfig(kubeconfig))!;
  const nodes: PodWatcher[] = [];
  for (let i = 0; i < NODES; i++) {
    const w = new PodWatcher(kc, { ...opts, nodeName: nodeName(i) }, log);
    nodes.push(w);
    await w.start();
    await sleep(START_SPREAD_MS / NODES);
  }
  await waitUntil(() => nodes.every((n) => n.connectedSince !== undefined), 60_000, 'every node to list and watch');
  return nodes;
}

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

interface Steady {
  minutes: number;
  perNodePerMinute: { list: number; rewatch: number; renewal: number; get: number; failed: number };
  churned: number;
}

async function steadyState(api: ApiServer, kubeconfig: string): Promise<Steady> {
  await api.call('churn', { rate: { ...CHURN, podsPerNodePerMinute: CHURN.podsPerNodePerMinute * SCALE } });
  const log = new LogCount();
  const nodes = await startNodes(kubeconfig, { resyncMs: 300_000 / SCALE, watchTimeoutSeconds: 300 / SCALE, ownerCacheTtlMs: 1_800_000 / SCALE }, log.logger);
  await sleep(5_000); // start-up's lists and lookups are over
  const from = await api.call<{ now: number; requests: number; churned: number }>('now');
  await sleep(STEADY_S * 1000);
  const to = await api.call<{ now: number; churned: number }>('now');
  const seen = (await api.requests(from.requests)).filter((r) => r.at < to.now);
  await Promise.all(nodes.map((n) => n.stop()));
  const minutes = ((to.now - from.now) / 60_000) * SCALE;
  const rate = (f: (r: RequestRecord) => boolean): number => seen.filter(f).length / NODES / minutes;
  // A watch right after its node's list belongs to that relist; any other watch renews one the server ended.
  const afterList = new Set<RequestRecord>();
  const last = new Map<string, RequestRecord>();
  for (const r of seen) {
    if (!r.node) continue;
    if (r.kind === 'watch' && last.get(r.node)?.kind === 'list') afterList.add(r);
    last.set(r.node, r);
  }
  const ok = (r: RequestRecord): boolean => r.status === 200 || (r.kind === 'get' && r.status === 404);
  return {
    minutes,
    perNodePerMinute: {
      list: rate((r) => r.kind === 'list' && ok(r)),
      rewatch: rate((r) => afterList.has(r) && ok(r)),
      renewal: rate((r) => r.kind === 'watch' && !afterList.has(r) && ok(r)),
      get: rate((r) => r.kind === 'get' && ok(r)),
      failed: rate((r) => !ok(r)),
    },
    churned: to.churned - from.churned,
  };
}

interface Outage {
  /** When each node sent its first request after the server answered again, ms. */
  back: { p5: number; p50: number; p95: number; max: number };
  lateNodes: number;
  busiestRequests: number;
  /** The most first requests in any 100 ms: as the nodes sent them, and as the server received them. */
  busiestReconnects: number;
  busiestReconnectsReceived: number;
  requestsPerNode: number;
  /** How late the nodes' event loop ran (p99, max, ms) while they came back: timers due together then fire together. */
  loopDelay: { p99: number; max: number };
  warningsPerNode: number;
  endsPerNode: number;
}

async function outage(api: ApiServer, kubeconfig: string, jitter: boolean): Promise<Outage> {
  await api.call('churn', { rate: CHURN });
  const log = new LogCount();
  const nodes = await startNodes(kubeconfig, jitter ? {} : { backoff: { random: () => 0.999 } }, log.logger);
  await sleep(5_000);
  const { requests: from } = await api.call<{ requests: number }>('now');
  sent.length = 0;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const restarted = api.call<{ upAt: number }>('restart', { downMs: OUTAGE_S * 1000 });
  await sleep(OUTAGE_S * 1000 - 1000);
  loop.enable();
  const { upAt } = await restarted;
  const capMs = DEFAULT_BACKOFF.capMs;
  await waitUntil(() => nodes.every((n) => n.connectedSince !== undefined), capMs + 30_000, 'every node to be back').catch((e: Error) => process.stderr.write(`${e.message}\n`));
  loop.disable();
  await sleep(2_000);
  const after = (await api.requests(from)).filter((r) => r.at >= upAt);
  await Promise.all(nodes.map((n) => n.stop()));
  const back = [...firstAfter(sent, upAt).values()];
  return {
    back: { p5: quantile(back, 0.05), p50: quantile(back, 0.5), p95: quantile(back, 0.95), max: Math.max(...back) },
    lateNodes: NODES - back.filter((ms) => ms <= capMs).length,
    busiestRequests: busiestWindow(after.map((r) => r.at), 100),
    busiestReconnects: busiestWindow(back, 100),
    busiestReconnectsReceived: busiestWindow([...firstAfter(after, upAt).values()], 100),
    requestsPerNode: after.filter((r) => r.at - upAt <= capMs + 2_000).length / NODES,
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    warningsPerNode: log.started / NODES,
    endsPerNode: log.ended / NODES,
  };
}

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const sec = (ms: number): string => (ms / 1000).toFixed(1);
const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');

/** The busiest 100 ms of the backoff alone for n nodes, as a share of them: the median of 20 draws. */
function modelBusiest(n: number): number {
  const shares = Array.from({ length: 20 }, () => busiestWindow(modelReconnects(n, OUTAGE_S * 1000, () => new Backoff(DEFAULT_BACKOFF)), 100) / n);
  return quantile(shares, 0.5);
}

function table(steady: Steady, jittered: Outage, baseline?: Outage): string {
  const p = steady.perNodePerMinute;
  const base = p.list + p.rewatch + p.failed;
  const all = base + p.renewal + p.get;
  const pct = (n: number): string => `${n0(n)} (${f1((100 * n) / NODES)}% of nodes)`;
  const rows = [
    `${n0(NODES)} simulated nodes (tally's PodWatcher each) in one process, the test API server in another; ${SHAPE.podsPerNode} pods per node from ${SHAPE.deployments} Deployments; ${os.cpus().length} CPUs, Node ${process.version}.`,
    '',
    `#### Steady state: ${f1(steady.minutes)} simulated minutes (time compressed ${SCALE}×), churn ${CHURN.podsPerNodePerMinute} pods per node per minute (${n0(steady.churned)} replaced), ${100 * CHURN.newReplicaSetShare}% of new pods from a new ReplicaSet`,
    '',
    '| requests per node per minute | measured | goal | 5,000 nodes, per second |',
    '| --- | ---: | ---: | ---: |',
    `| list pods (resync every 5–7.5 min) | ${f2(p.list)} | | ${f1((p.list * 5000) / 60)} |`,
    `| watch pods, after each list | ${f2(p.rewatch)} | | ${f1((p.rewatch * 5000) / 60)} |`,
    `| failed requests (retried) | ${f2(p.failed)} | | ${f1((p.failed * 5000) / 60)} |`,
    `| **all but watch renewals and owner lookups** | **${f2(base)}** | **≤ 1** | **${f1((base * 5000) / 60)}** |`,
    `| watch renewals (each watch's own timeout, 5–10 min) | ${f2(p.renewal)} | | ${f1((p.renewal * 5000) / 60)} |`,
    `| owner lookups (get replicasets, for new pods) | ${f2(p.get)} | | ${f1((p.get * 5000) / 60)} |`,
    `| all | ${f2(all)} | | ${f1((all * 5000) / 60)} |`,
    '',
    `#### After a ${OUTAGE_S} s outage (API server restart, its watch history lost: 410 Gone), real time, tally's defaults (backoff 0.5 s doubling to a 30 s cap)`,
    '',
    `| | jittered (tally) | goal |${baseline ? ' no jitter (before) |' : ''}`,
    `| --- | ---: | ---: |${baseline ? ' ---: |' : ''}`,
  ];
  const row = (what: string, f: (o: Outage) => string, goal: string): string => `| ${what} | ${f(jittered)} | ${goal} |${baseline ? ` ${f(baseline)} |` : ''}`;
  rows.push(
    row('a node\'s first request after the server answers: 5th percentile, s', (o) => sec(o.back.p5), ''),
    row('median, s', (o) => sec(o.back.p50), ''),
    row('95th percentile, s', (o) => sec(o.back.p95), ''),
    row('last node, s', (o) => sec(o.back.max), '≤ 30'),
    row('spread, 5th to 95th percentile, s', (o) => sec(o.back.p95 - o.back.p5), ''),
    row('nodes back later than the 30 s cap', (o) => n0(o.lateNodes), '0'),
    row('most reconnects in any 100 ms, as the nodes sent them', (o) => pct(o.busiestReconnects), `≤ ${n0(NODES * 0.02)} (2%)`),
    row('most reconnects in any 100 ms, as the API server received them', (o) => pct(o.busiestReconnectsReceived), ''),
    `| the backoff alone (a model without I/O, median of 20 draws): most reconnects in any 100 ms | ${f1(100 * modelBusiest(NODES))}% of ${n0(NODES)} nodes; ${f1(100 * modelBusiest(5000))}% of 5,000 | ≤ 2% |${baseline ? ' 100% |' : ''}`,
    row('most requests the API server received in any 100 ms', (o) => n0(o.busiestRequests), ''),
    row('the nodes\' event loop late by (p99, max), ms: reconnects due together fire together', (o) => `${n0(o.loopDelay.p99)}, ${n0(o.loopDelay.max)}`, ''),
    row('requests per node to recover (watch, 410, list, watch; owner lookups)', (o) => f1(o.requestsPerNode), ''),
    row('outage log lines per node (start, end)', (o) => `${f1(o.warningsPerNode)}, ${f1(o.endsPerNode)}`, '1, 1'),
  );
  return rows.join('\n');
}

async function main(): Promise<void> {
  const api = ApiServer.start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-kube-'));
  onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { port } = await api.call<{ port: number }>('start');
  await api.call('setup', { shape: SHAPE });
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'bench',
    clusters: [{ name: 'bench', cluster: { server: `http://127.0.0.1:${port}` } }],
    users: [{ name: 'bench', user: { token: 'bench' } }],
    contexts: [{ name: 'bench', context: { cluster: 'bench', user: 'bench' } }],
  }));
  process.stderr.write(`steady state: ${NODES} nodes, ${STEADY_S} s…\n`);
  const steady = await steadyState(api, kubeconfig);
  process.stderr.write(`outage, jittered: ${OUTAGE_S} s…\n`);
  const jittered = await outage(api, kubeconfig, true);
  let baseline: Outage | undefined;
  if (BASELINE) {
    process.stderr.write(`outage, without jitter: ${OUTAGE_S} s…\n`);
    baseline = await outage(api, kubeconfig, false);
  }
  await api.call('close');
  api.stop();
  const text = table(steady, jittered, baseline);
  process.stdout.write(text + '\n');
  if (process.argv.includes('--write')) {
    const file = path.join(PROJECT_ROOT, 'BENCHMARKS.md');
    const md = fs.readFileSync(file, 'utf8');
    const re = /(<!-- kube-load:begin -->\n)[\s\S]*?(<!-- kube-load:end -->)/;
    if (!re.test(md)) throw new Error('BENCHMARKS.md has no <!-- kube-load:begin --> … <!-- kube-load:end --> block');
    fs.writeFileSync(file, md.replace(re, `$1${text}\n$2`));
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench failed: ${e.stack}\n`);
  process.exit(1);
});
