/**
 * Runs the real agent (dist/src/cli/main.js) as a child process on an
 * ephemeral port, the way a user would, and tears it down even when a test
 * fails.
 */
import * as path from 'node:path';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../../src/util/paths';
import { parsePromText, Series } from './prom-text';
import { programIdsOf } from './procfs';
import { onExit } from './cleanup';
import { MEMORY_FLAGS } from '../../src/cli/heap';

export const MAIN = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
/**
 * The node flags npm start and bin/tally run the agent with, and for a
 * profile of the agent a bench runs, TALLY_AGENT_NODE_FLAGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof"; node refuses these in NODE_OPTIONS).
 */
export const AGENT_NODE_FLAGS = [...MEMORY_FLAGS, ...(process.env.TALLY_AGENT_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '')];

const running = new Set<ChildProcess>();
onExit(() => {
  for (const c of running) c.kill('SIGKILL');
});

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
}

/**
 * Waits scale by TALLY_TEST_TIME_SCALE (default 1): the kernel matrix's
 * guests run under software emulation, tens of times slower than a host,
 * and every wait of the suite stretches with it.
 */
export const TIME_SCALE = Math.max(1, Number(process.env.TALLY_TEST_TIME_SCALE ?? 1) || 1);
export const scaled = (ms: number): number => ms * TIME_SCALE;

export function waitExit(child: ChildProcess, timeoutMs = 10000): Promise<Exit> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
      return;
    }
    const t = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${scaled(timeoutMs)} ms`)), scaled(timeoutMs));
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, ms: Date.now() - started });
    });
  });
}

export class AgentProcess {
  stderr = '';
  port = 0;

  private constructor(readonly child: ChildProcess) {
    running.add(child);
    child.stderr!.on('data', (d) => (this.stderr += d));
    child.once('exit', () => running.delete(child));
  }

  /**
   * Starts the agent on 127.0.0.1:0 with extra flags and waits for /readyz,
   * or with `until: 'started'` for its "agent started" line (a test of an
   * agent that is not meant to be ready).
   */
  static async start(flags: string[] = [], opts: { timeoutMs?: number; shellPrefix?: string; env?: NodeJS.ProcessEnv; until?: 'ready' | 'started' } = {}): Promise<AgentProcess> {
    // A loaded 2-CPU machine has taken 16 s to load the built-ins.
    const timeoutMs = scaled(opts.timeoutMs ?? 60000);
    const argv = [...AGENT_NODE_FLAGS, MAIN, '--metrics-server', '127.0.0.1:0', ...flags];
    // shellPrefix runs first in a shell that then execs the agent, e.g. to
    // rearrange mounts inside `unshare --mount`.
    const env = { ...process.env, ...opts.env };
    const child = opts.shellPrefix
      ? spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${opts.shellPrefix} && exec "$0" "$@"`, process.execPath, ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env,
        })
      : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const agent = new AgentProcess(child);
    const deadline = Date.now() + timeoutMs;
    while (!agent.port) {
      const m = /msg="serving metrics".* port=(\d+)/.exec(agent.stderr);
      if (m) agent.port = Number(m[1]);
      else if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${agent.stderr}`);
      else if (Date.now() > deadline) throw new Error(`agent did not start: ${agent.stderr}`);
      else await new Promise((r) => setTimeout(r, 25));
    }
    for (;;) {
      if (opts.until === 'started' && agent.stderr.includes('msg="agent started"')) break;
      const res = opts.until === 'started' ? undefined : await fetch(agent.url('/readyz')).catch(() => undefined);
      if (res?.status === 200) break;
      if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${agent.stderr}`);
      if (Date.now() > deadline) throw new Error(`agent not ready: ${res ? await res.text() : 'no answer'}\n${agent.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return agent;
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  async metricsText(): Promise<string> {
    let res: Response;
    try {
      res = await fetch(this.url('/metrics')).catch((e) => {
        // The agent closes a keep-alive connection idle for --web.idle-timeout; a request sent on it just then finds it
        // closed. A GET is idempotent, so send it again on a new connection, as Prometheus's client (Go's) does. In the
        // kernel matrix's slow guests this hit one scrape in a few hundred.
        if (/other side closed|ECONNRESET|socket hang up/.test(String((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message))) return fetch(this.url('/metrics'));
        throw e;
      });
    } catch (e) {
      // "fetch failed" alone does not say whether the agent died: say so, with what it logged last.
      const state = this.child.exitCode !== null || this.child.signalCode !== null ? `the agent exited (${this.child.exitCode ?? this.child.signalCode})` : 'the agent is running';
      throw new Error(`/metrics: ${(e as Error).message} (${(e as Error & { cause?: Error }).cause?.message ?? 'no cause'}); ${state}; its log ends:\n${this.stderr.slice(-3000)}`);
    }
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${await res.text()}`);
    return res.text();
  }

  async scrape(): Promise<Series[]> {
    return parsePromText(await this.metricsText());
  }

  /** Scrapes every 100 ms until `cond` holds of a scrape, which it returns; throws naming `what` on timeout. */
  async scrapeUntil(cond: (s: Series[]) => boolean, what: string, timeoutMs = 15000): Promise<Series[]> {
    timeoutMs = scaled(timeoutMs);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.scrape();
      if (cond(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** BPF program ids held open by the agent. */
  programIds(): number[] {
    return programIdsOf(this.child.pid!);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return waitExit(this.child);
    this.child.kill(signal);
    return waitExit(this.child);
  }
}

/** Ids of all BPF programs currently loaded in the kernel, as bpftool (an independent witness) lists them. */
export function loadedProgramIds(): Set<number> {
  const out = execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return new Set((JSON.parse(out) as Array<{ id: number }>).map((p) => p.id));
}

/** Waits until none of ids is loaded (the kernel frees programs after an RCU grace period); returns those left. */
export async function awaitUnloaded(ids: number[], timeoutMs = 5000): Promise<number[]> {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    const loaded = loadedProgramIds();
    const left = ids.filter((id) => loaded.has(id));
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
