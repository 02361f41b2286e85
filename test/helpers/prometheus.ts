/**
 * A real Prometheus (/usr/bin/prometheus) for tests: a temporary config and
 * storage directory, an ephemeral port on 127.0.0.1, and its HTTP API. The
 * process is killed and its directory removed by stop(), and whatever
 * happens when the test process exits.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import * as yaml from 'js-yaml';
import { onExit } from './cleanup';
import { waitExit } from './agent-process';

export const PROMETHEUS = '/usr/bin/prometheus';

const running = new Set<{ child: ChildProcess; dir: string }>();
onExit(() => {
  for (const r of running) {
    r.child.kill('SIGKILL');
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
});

export interface ScrapeJob {
  job: string;
  targets: string[];
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** scrape_interval and evaluation_interval, in seconds. */
  intervalS: number;
  /** Rule files to load (absolute paths). */
  ruleFiles?: string[];
}

/** One series of a query's answer: a vector's sample, or a matrix's samples. */
export interface PromSeries {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

export interface PromAnswer {
  status: string;
  error?: string;
  errorType?: string;
  warnings?: string[];
  data?: { resultType: string; result: any };
}

/** A port that was free a moment ago (the kernel chose it). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export class PrometheusServer {
  stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Starts Prometheus and waits until /-/ready answers 200. Retries on another port if the one picked was taken. */
  static async start(opts: PrometheusOptions, timeoutMs = 20000): Promise<PrometheusServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-dash-prom-'));
    const config = {
      global: { scrape_interval: `${opts.intervalS}s`, scrape_timeout: `${opts.intervalS}s`, evaluation_interval: `${opts.intervalS}s` },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: opts.jobs.map((j) => ({ job_name: j.job, static_configs: [{ targets: j.targets }] })),
    };
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), yaml.dump(config));
    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const child = spawn(
        PROMETHEUS,
        [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
        { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const entry = { child, dir };
      running.add(entry);
      const prom = new PrometheusServer(child, dir, port);
      child.stderr!.on('data', (d) => (prom.stderr = (prom.stderr + d).slice(-20000)));
      child.once('exit', () => running.delete(entry));
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        const res = await fetch(prom.url('/-/ready')).catch(() => undefined);
        if (res?.status === 200) return prom;
        if (Date.now() > deadline) {
          await prom.kill();
          throw new Error(`prometheus did not become ready within ${timeoutMs} ms:\n${prom.stderr}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      lastError = prom.stderr;
      if (!/address already in use/.test(prom.stderr)) break;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`prometheus exited at startup:\n${lastError}`);
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  /** GET an API path with query parameters; the parsed answer, whatever its status. */
  async api(p: string, params: Array<[string, string]>): Promise<PromAnswer> {
    const qs = new URLSearchParams(params).toString();
    const res = await fetch(this.url(`${p}?${qs}`));
    const text = await res.text();
    try {
      return JSON.parse(text) as PromAnswer;
    } catch {
      return { status: 'error', error: `HTTP ${res.status}: ${text}` };
    }
  }

  /** An instant query at `time` (seconds); vector and scalar answers as PromSeries. */
  async query(expr: string, time: number): Promise<PromAnswer & { series: PromSeries[] }> {
    const a = await this.api('/api/v1/query', [['query', expr], ['time', String(time)]]);
    return { ...a, series: toSeries(a) };
  }

  async queryRange(expr: string, start: number, end: number, stepS: number): Promise<PromAnswer & { series: PromSeries[] }> {
    const a = await this.api('/api/v1/query_range', [['query', expr], ['start', String(start)], ['end', String(end)], ['step', String(stepS)]]);
    return { ...a, series: toSeries(a) };
  }

  /** GET /api/v1/label/NAME/values?match[]=SELECTOR, as label_values(SELECTOR, NAME) asks it. */
  async labelValues(label: string, selector: string, start: number, end: number): Promise<PromAnswer & { values: string[] }> {
    const a = await this.api(`/api/v1/label/${encodeURIComponent(label)}/values`, [['match[]', selector], ['start', String(start)], ['end', String(end)]]);
    return { ...a, values: a.status === 'success' ? (a.data as unknown as string[]) : [] };
  }

  private async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await waitExit(this.child, 10000);
    }
  }

  /** Stops Prometheus (SIGTERM, then SIGKILL after 5 s) and removes its directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      try {
        await waitExit(this.child, 5000);
      } catch {
        await this.kill();
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function toSeries(a: PromAnswer): PromSeries[] {
  if (a.status !== 'success' || !a.data) return [];
  const { resultType, result } = a.data;
  if (resultType === 'matrix') return result as PromSeries[];
  if (resultType === 'vector') return (result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((s) => ({ metric: s.metric, values: [s.value] }));
  if (resultType === 'scalar') return [{ metric: {}, values: [result as [number, string]] }];
  return [];
}

/** Whether a series has a sample that is a finite number (not NaN, not ±Inf). */
export function hasFiniteValue(s: PromSeries): boolean {
  return s.values.some(([, v]) => Number.isFinite(Number(v)));
}
