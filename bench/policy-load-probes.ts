/**
 * Issue 20 §2: /healthz, /readyz and /metrics must keep answering within
 * 100 ms (p99) while any amount of policy loads or goes. The agent
 * (`--builtin-policies none`) is probed every 50 ms, the three in turn, one
 * at a time: first idle (the reference this machine gives), then while
 * files of single-hook policies are added, then while they are removed.
 *
 *   node dist/bench/policy-load-probes.js [POLICIES] [raw|chained]
 *
 * raw: hooks on four raw scheduler tracepoints (tp_btf), one program each;
 * chained: every hook on the classic tracepoint syscalls/sys_enter_getppid,
 * 32 to a chain behind one dispatcher (src/engine/tracepoint-chains.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from '../test/helpers/agent-process';
import { parsePromText, select } from '../test/helpers/prom-text';
import { policyDocument, SCHED_EVENTS } from '../test/helpers/test-policies';
import { anonByRegion, procMemory } from './memory/procfs-memory';
import { RECLAIM_AFTER_MS } from '../src/util/reclaim-memory';

const POLICIES = Number(process.argv[2] ?? 200);
const KIND = (process.argv[3] ?? 'raw') as 'raw' | 'chained';
const PER_FILE = 100; // policiesPerFile
const PROBE_EVERY_MS = 50;

function policy(i: number): string {
  const hook =
    KIND === 'raw'
      ? ['  - subsystem: sched', `    event: ${SCHED_EVENTS[i % SCHED_EVENTS.length]}`, '    raw: true']
      : ['  - subsystem: syscalls', '    event: sys_enter_getppid'];
  return policyDocument(`probe-${i}`, 'tracepoints', [...hook, '    metrics:', `    - name: probe_${i}_total`, `      help: Events of policy ${i}.`, '      type: counter']);
}

const rssMiB = (pid: number): number => procMemory(pid).rssMiB;
const fds = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function probeUntil(agent: AgentProcess, done: (text: string) => boolean, maxMs: number): Promise<{ ms: number[]; tookMs: number }> {
  const ms: number[] = [];
  const started = Date.now();
  for (let i = 0; ; i++) {
    const p = ['/healthz', '/readyz', '/metrics'][i % 3];
    const t0 = performance.now();
    const res = await fetch(agent.url(p));
    const text = await res.text();
    ms.push(performance.now() - t0);
    if (p === '/metrics' && done(text)) return { ms, tookMs: Date.now() - started };
    if (Date.now() - started > maxMs) return { ms, tookMs: Date.now() - started };
    await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
  }
}

const row = (what: string, r: { ms: number[]; tookMs: number }, extra: string): string =>
  `| ${what} | ${(r.tookMs / 1000).toFixed(1)} s | ${r.ms.length} | ${quantile(r.ms, 0.5).toFixed(0)} | ${quantile(r.ms, 0.99).toFixed(0)} | ${Math.max(...r.ms).toFixed(0)} | ${extra} |`;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-probes-'));
  const agent = await AgentProcess.start(['--policy-dir', dir, '--builtin-policies', 'none']);
  const pid = agent.child.pid!;
  try {
    const states = (text: string, state: string): number => select(parsePromText(text), 'tally_policy_state', { state }).filter((s) => s.value === 1).length;
    const idle = await probeUntil(agent, () => false, 10_000);
    const before = { rss: rssMiB(pid), fds: fds(pid) };
    const idleText = await agent.metricsText();
    const idleRegions = anonByRegion(pid);
    const files = Math.ceil(POLICIES / PER_FILE);
    for (let f = 0; f < files; f++) {
      const docs = [];
      for (let i = f * PER_FILE; i < Math.min(POLICIES, (f + 1) * PER_FILE); i++) docs.push(policy(i));
      fs.writeFileSync(path.join(dir, `probes-${f}.yaml`), docs.join('---\n'));
    }
    const load = await probeUntil(agent, (t) => states(t, 'ok') + states(t, 'error') >= POLICIES, 900_000);
    const text = await agent.metricsText();
    const loaded = { rss: rssMiB(pid), fds: fds(pid), ok: states(text, 'ok') };
    const attachments = select(parsePromText(text), 'tally_bpf_hook_attachments').reduce((n, s) => n + s.value, 0);
    for (let f = 0; f < files; f++) fs.rmSync(path.join(dir, `probes-${f}.yaml`));
    const removal = await probeUntil(agent, (t) => select(parsePromText(t), 'tally_policy_state').length === 0, 300_000);
    // The last policy's series go before its objects close: give the agent a moment to finish.
    for (const t0 = Date.now(); fds(pid) > before.fds && Date.now() - t0 < 10_000; ) await new Promise((r) => setTimeout(r, 100));
    // The agent gives memory back once the changes are over (src/util/reclaim-memory.ts).
    await new Promise((r) => setTimeout(r, RECLAIM_AFTER_MS + Number(process.env.BENCH_SETTLE_MS ?? 5000)));
    const after = { rss: rssMiB(pid), fds: fds(pid) };
    if (process.env.BENCH_MEMORY_DETAIL) {
      const mem = (t: string): string => ['tally_malloc_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes', 'nodejs_heap_space_size_total_bytes']
        .map((m) => `${m}=${select(parsePromText(t), m).map((x) => `${x.labels.state ?? x.labels.space ?? ''}${(x.value / 2 ** 20).toFixed(1)}`).join('/')}`).join(' ');
      process.stderr.write(`idle: ${mem(idleText)}\nloaded: ${mem(text)}\nremoved: ${mem(await agent.metricsText())}\n`);
      const r = (x: ReturnType<typeof anonByRegion>): string => Object.entries(x).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ');
      process.stderr.write(`anon idle: ${r(idleRegions)}\nanon removed: ${r(anonByRegion(pid))}\nfile-backed idle->removed: ${JSON.stringify(procMemory(pid))}\n`);
    }
    process.stdout.write(
      [
        `${POLICIES} single-hook policies (${KIND}) in ${files} files; kernel ${os.release()}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)} at the end`,
        '',
        '| phase | took | probes | p50 ms | p99 ms | slowest ms | |',
        '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
        row('idle (reference)', idle, `RSS ${before.rss.toFixed(0)} MiB, ${before.fds} fds`),
        row('load', load, `${loaded.ok} ok; RSS ${loaded.rss.toFixed(0)} MiB, ${loaded.fds} fds, ${attachments} kernel attachments`),
        row('removal', removal, `RSS ${after.rss.toFixed(0)} MiB, ${after.fds} fds`),
        '',
      ].join('\n'),
    );
  } finally {
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
