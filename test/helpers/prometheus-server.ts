/**
 * A real Prometheus (Debian's 2.42) for tests: its own config, storage and
 * port, scraping the targets a test gives it every second, killed and
 * removed when the suite ends, whatever happens.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { onExit } from './cleanup';
import { waitExit } from './agent-process';
import { freePort } from './ports';

const running = new Set<ChildProcess>();
onExit(() => {
  for (const c of running) c.kill('SIGKILL');
});

export interface PromResult {
  metric: Record<string, string>;
  value?: [number, string];
  /** Native histograms: [time, {count, sum, buckets: [[boundaryRule, lower, upper, count], ...]}]. */
  histogram?: [number, { count: string; sum: string; buckets?: Array<[number, string, string, string]> }];
}

/** An HTTP API answer, as Prometheus gives it. */
export interface PromAnswer {
  status: string;
  error?: string;
  errorType?: string;
  warnings?: string[];
  data?: any;
}

/** One series of a query's answer, with its samples. */
/** A native histogram sample as the HTTP API gives it: count, sum, and [boundary rule, lower, upper, count] buckets. */
export interface PromHistogram {
  count: string;
  sum: string;
  buckets?: Array<[number, string, string, string]>;
}

export interface PromSeries {
  metric: Record<string, string>;
  /** Float samples. */
  values: Array<[number, string]>;
  /** Native histogram samples (Prometheus answers them apart from floats). */
  histograms?: Array<[number, PromHistogram]>;
}

function seriesOf(a: PromAnswer): PromSeries[] {
  if (a.status !== 'success' || !a.data) return [];
  const { resultType, result } = a.data as { resultType: string; result: any };
  if (resultType === 'matrix') {
    return (result as Array<PromSeries & { values?: PromSeries['values'] }>).map((x) => ({ metric: x.metric, values: x.values ?? [], ...(x.histograms ? { histograms: x.histograms } : {}) }));
  }
  if (resultType === 'vector') {
    return (result as Array<{ metric: Record<string, string>; value?: [number, string]; histogram?: [number, PromHistogram] }>).map((x) => ({
      metric: x.metric,
      values: x.value ? [x.value] : [],
      ...(x.histogram ? { histograms: [x.histogram] } : {}),
    }));
  }
  if (resultType === 'scalar') return [{ metric: {}, values: [result as [number, string]] }];
  return [];
}

/** Whether a series has a sample that is a finite number (not NaN, not ±Inf), or a native histogram with a finite count. */
export function hasFiniteValue(s: PromSeries): boolean {
  return s.values.some(([, v]) => Number.isFinite(Number(v))) || (s.histograms ?? []).some(([, h]) => Number.isFinite(Number(h.count)));
}

export class PrometheusServer {
  log = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {
    running.add(child);
    child.stderr!.on('data', (d) => (this.log += d));
    child.once('exit', () => running.delete(child));
  }

  /**
   * Starts Prometheus scraping `targets` (host:port) as job "tally"; resolves once it is ready.
   * `jobs` adds scrape configs of the test's own, each with its YAML lines beside
   * job_name and static_configs (scheme, tls_config, basic_auth); with them, job "tally"
   * is left out when `targets` is empty.
   */
  static async start(
    targets: string[],
    opts: { features?: string[]; ruleFiles?: string[]; jobs?: Array<{ name: string; targets: string[]; lines: string[] }> } = {},
  ): Promise<PrometheusServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-prom-'));
    const config = [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      ...(opts.ruleFiles?.length ? ['rule_files:', ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
      'scrape_configs:',
      ...(targets.length || !opts.jobs?.length ? ['  - job_name: tally', `    static_configs: [{targets: ${JSON.stringify(targets)}}]`] : []),
      ...(opts.jobs ?? []).flatMap((j) => [`  - job_name: ${JSON.stringify(j.name)}`, `    static_configs: [{targets: ${JSON.stringify(j.targets)}}]`, ...j.lines.map((l) => `    ${l}`)]),
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), config + '\n');
    // A port taken between freePort() and the bind makes Prometheus exit: try again.
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const child = spawn(
        '/usr/bin/prometheus',
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          ...(opts.features?.length ? [`--enable-feature=${opts.features.join(',')}`] : []),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const p = new PrometheusServer(child, port, dir);
      try {
        await p.waitReady();
        return p;
      } catch (e) {
        await p.stop({ keepDir: true });
        if (attempt >= 2) {
          fs.rmSync(dir, { recursive: true, force: true });
          throw e;
        }
      }
    }
  }

  private async waitReady(timeoutMs = 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${this.port}/-/ready`).catch(() => undefined);
      if (res?.status === 200) return;
      if (this.child.exitCode !== null) throw new Error(`prometheus exited with ${this.child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`prometheus not ready after ${timeoutMs} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** An instant query; throws with Prometheus's own error text when it fails. */
  async query(expr: string): Promise<PromResult[]> {
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: PromResult[] } };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
    return body.data!.result;
  }

  /** Polls a query until `ok` accepts its result; fails with the last result seen. */
  async queryUntil(expr: string, ok: (r: PromResult[]) => boolean, timeoutMs = 30000): Promise<PromResult[]> {
    const deadline = Date.now() + timeoutMs;
    let last: PromResult[] = [];
    for (;;) {
      last = await this.query(expr);
      if (ok(last)) return last;
      if (Date.now() > deadline) throw new Error(`query ${expr}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The scrape targets' health as Prometheus reports it (lastError included), with their job (scrapePool). */
  async targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string; scrapePool: string }>> {
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/targets`);
    const body = (await res.json()) as { data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string; scrapePool: string }> } };
    return body.data.activeTargets;
  }

  /** GET an API path with query parameters: the parsed answer, whatever its status. */
  async api(p: string, params: Array<[string, string]> = []): Promise<PromAnswer> {
    const res = await fetch(`http://127.0.0.1:${this.port}${p}?${new URLSearchParams(params)}`);
    const text = await res.text();
    try {
      return JSON.parse(text) as PromAnswer;
    } catch {
      return { status: 'error', error: `HTTP ${res.status}: ${text}` };
    }
  }

  /**
   * Evaluates a query at `time`, or over [start, end] every `step` seconds:
   * its series (samples of a vector, a matrix or a scalar alike), and
   * Prometheus's status and error, without throwing.
   */
  async evaluate(expr: string, at: { time: number } | { start: number; end: number; step: number }): Promise<PromAnswer & { series: PromSeries[] }> {
    const a =
      'time' in at
        ? await this.api('/api/v1/query', [['query', expr], ['time', String(at.time)]])
        : await this.api('/api/v1/query_range', [['query', expr], ['start', String(at.start)], ['end', String(at.end)], ['step', String(at.step)]]);
    return { ...a, series: seriesOf(a) };
  }

  /** The values of a label among the series matching `selector` in [start, end]: what Grafana's label_values(selector, label) asks. */
  async labelValues(label: string, selector: string, start: number, end: number): Promise<PromAnswer & { values: string[] }> {
    const a = await this.api(`/api/v1/label/${encodeURIComponent(label)}/values`, [['match[]', selector], ['start', String(start)], ['end', String(end)]]);
    return { ...a, values: a.status === 'success' ? (a.data as string[]) : [] };
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await waitExit(this.child, 10000).catch(() => this.child.kill('SIGKILL'));
    }
    if (!opts.keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
