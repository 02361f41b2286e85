/**
 * A real Prometheus (Debian's 2.42) for tests: its own config, storage and
 * port, scraping the targets a test gives it every second, killed and
 * removed when the suite ends, whatever happens.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { onExit } from './cleanup';
import { waitExit } from './agent-process';

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

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
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

  /** Starts Prometheus scraping `targets` (host:port) as job "tally"; resolves once it is ready. */
  static async start(targets: string[], opts: { features?: string[]; ruleFiles?: string[] } = {}): Promise<PrometheusServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-prom-'));
    const config = [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      ...(opts.ruleFiles?.length ? ['rule_files:', ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
      'scrape_configs:',
      '  - job_name: tally',
      `    static_configs: [{targets: ${JSON.stringify(targets)}}]`,
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

  /** The scrape target's health as Prometheus reports it (lastError included). */
  async targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string }>> {
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/targets`);
    const body = (await res.json()) as { data: { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> } };
    return body.data.activeTargets;
  }

  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await waitExit(this.child, 10000).catch(() => this.child.kill('SIGKILL'));
    }
    if (!opts.keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
