/**
 * Loading and removing a policy of many hooks does not stall the agent, and
 * costs it what runs, not what was opened (issue 20 §2, §3): the kernel
 * verifies each hook on a worker thread and the policy manager yields to
 * the event loop between hooks, so /metrics, /healthz and /readyz keep
 * answering; a running hook holds one program fd and one link fd, no map
 * fds, and next to no memory; removed, it leaves nothing;
 * tally_bpf_hook_attachments counts its programs at each tracepoint.
 *
 * The latency bound is generous on purpose (this is not a benchmark; see
 * BENCHMARKS.md, "What each policy hook costs the agent"): when loading ran
 * on the event loop, the first probe sent during a 48-hook load waited for
 * all of it, about 10 s. Answers take about 10 ms here, 0.2-0.4 s at the
 * 99th percentile on a loaded 2-CPU machine, as they do with nothing loading.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, scaled } from './helpers/agent-process';
import { parsePromText, select } from './helpers/prom-text';
import { manyHookPolicy, SCHED_EVENTS } from './helpers/test-policies';

const HOOKS = 48;
const POLICY = 'stall-test';
/** The slowest answer allowed while hooks load or go. */
const BOUND_MS = 3000;

interface BpfFds {
  progs: number;
  links: number;
  maps: number;
}

function bpfFds(pid: number): BpfFds {
  const n: BpfFds = { progs: 0, links: 0, maps: 0 };
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    if (target === 'anon_inode:bpf-prog') n.progs++;
    else if (target === 'anon_inode:bpf_link') n.links++;
    else if (target === 'anon_inode:bpf-map') n.maps++;
  }
  return n;
}

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** The C heap's bytes in use, as glibc counts them over all arenas (tally_malloc_bytes). */
const mallocInUseMiB = (text: string): number => select(parsePromText(text), 'tally_malloc_bytes', { state: 'in_use' })[0].value / 2 ** 20;
/**
 * How far the C heap in use may stand above its level after the warm-up. What it holds besides hooks moves a few
 * hundred KiB between readings (Node's buffers not yet collected). Each load allocates megabytes for a moment (the
 * kernel's BTF, instructions, relocations) and keeps about 17 KiB per hook: a leak of the former stands far above
 * this margin, and a hook's kept object cannot leak without its fds, which the test counts exactly.
 */
const LEAK_MARGIN_MIB = 2;

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

describe('a policy of many hooks, loaded and removed while the agent serves', () => {
  let dir: string;
  let agent: AgentProcess;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-stall-'));
    agent = await AgentProcess.start(['--policy-dir', dir, '--builtin-policies', 'none']);
  });
  after(async () => {
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Probes /healthz, /readyz and /metrics in turn, one at a time, until
   * `done` holds of a scrape; returns how long each answer took.
   */
  async function probeUntil(done: (text: string) => boolean, what: string): Promise<{ ms: number[]; tookMs: number; last: string }> {
    const ms: number[] = [];
    const started = Date.now();
    const deadline = started + scaled(180000);
    for (let i = 0; ; i++) {
      const p = ['/healthz', '/readyz', '/metrics'][i % 3];
      const t0 = Date.now();
      let res: Response;
      let text: string;
      try {
        res = await fetch(agent.url(p), { signal: AbortSignal.timeout(scaled(BOUND_MS)) });
        text = await res.text();
      } catch (e) {
        throw new Error(`${p} did not answer within ${scaled(BOUND_MS)} ms while ${what} (${(e as Error).message}; ${ms.length} probes answered before)`);
      }
      ms.push(Date.now() - t0);
      assert.equal(res.status, 200, `${p} answered ${res.status} while ${what}: ${text}`);
      if (p === '/metrics' && done(text)) return { ms, tookMs: Date.now() - started, last: text };
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('answers every probe within the bound while 48 hooks load and go, and holds two fds per hook', async (t) => {
    const pid = agent.child.pid!;
    const idleText = await agent.metricsText();
    const idle = bpfFds(pid);
    /** Loads the policy while probing, then removes it while probing: the same steps each time, so RSS read at the same point is comparable. */
    const cycle = async (name: string) => {
      fs.writeFileSync(path.join(dir, `${name}.yaml`), manyHookPolicy(name, HOOKS));
      const loading = await probeUntil((t) => select(parsePromText(t), 'tally_policy_state', { policy: name, state: 'ok' })[0]?.value === 1, `${name} loads`);
      const loaded = bpfFds(pid);
      const rssLoaded = rssMiB(pid);
      const mallocLoaded = mallocInUseMiB(await agent.metricsText());
      fs.rmSync(path.join(dir, `${name}.yaml`));
      const removing = await probeUntil((t) => select(parsePromText(t), 'tally_policy_state', { policy: name }).length === 0, `${name} goes`);
      return { loading, removing, loaded, gone: bpfFds(pid), rssLoaded, mallocLoaded, rssGone: rssMiB(pid), mallocInUse: mallocInUseMiB(await agent.metricsText()) };
    };
    // The same policy loaded and removed once first. The first loads grow the C heap of each thread that loads (glibc
    // keeps the top of a thread's arena) and V8's heap to a high-water mark that later loads reuse: once per process, not
    // per hook. RSS after that first removal is the baseline; RSS after the second must come back to it, or hooks leak.
    const warm = await cycle('warm-up');
    const rssBefore = warm.rssGone;
    const { loading, removing, loaded, gone, rssLoaded, mallocLoaded } = await cycle(POLICY);
    // What hooks would leak is the C side: libbpf's objects, the kernel's BTF, program instructions (megabytes per load).
    // RSS cannot show it reliably: outside V8's heap it swung 40 -> 58 MiB between identical cycles, on which thread's
    // arena kept what. glibc's own count of bytes in use (tally_malloc_bytes) is the C heap without that layout.
    const inUseBefore = warm.mallocInUse;
    const inUse = async () => mallocInUseMiB(await agent.metricsText());
    // Removal frees the objects as their last links close; give the agent a moment to finish.
    let inUseAfter = await inUse();
    for (const deadline = Date.now() + scaled(30000); inUseAfter > inUseBefore + LEAK_MARGIN_MIB && Date.now() < deadline; inUseAfter = await inUse()) {
      await new Promise((r) => setTimeout(r, 500));
    }
    const rssAfter = rssMiB(pid);

    // Each tracepoint holds the hooks of the policy on it: 48 spread over 4, whichever attach type this kernel gives them.
    const attachments = (text: string): Record<string, number> =>
      Object.fromEntries(select(parsePromText(text), 'tally_bpf_hook_attachments').map((x) => [x.labels.hook.replace(/^[a-z_]+:/, ''), x.value]));
    const before = attachments(idleText); // the agent's own (cgroup_rmdir)
    assert.deepEqual(attachments(loading.last), { ...before, ...Object.fromEntries(SCHED_EVENTS.map((e) => [e, HOOKS / SCHED_EVENTS.length])) });
    assert.deepEqual(attachments(removing.last), before);

    const all = [...loading.ms, ...removing.ms];
    const summary = `load ${loading.tookMs} ms (${loading.ms.length} probes), removal ${removing.tookMs} ms (${removing.ms.length}); answers: p50 ${quantile(all, 0.5)} ms, p99 ${quantile(all, 0.99)} ms, slowest ${Math.max(...all)} ms`;
    t.diagnostic(summary);
    t.diagnostic(`C heap in use: ${inUseBefore.toFixed(1)} MiB after the warm-up, ${mallocLoaded.toFixed(1)} with ${HOOKS} hooks, ${inUseAfter.toFixed(1)} after removal`);
    t.diagnostic(`RSS ${rssBefore.toFixed(1)} MiB, ${rssLoaded.toFixed(1)} with ${HOOKS} hooks, ${rssAfter.toFixed(1)} after removal; bpf fds ${JSON.stringify(idle)} -> ${JSON.stringify(loaded)} -> ${JSON.stringify(gone)}`);
    assert.ok(loading.ms.length >= 10, `the load was long enough to probe during it: ${summary}`);
    assert.ok(Math.max(...all) <= scaled(BOUND_MS), `every probe answered within ${scaled(BOUND_MS)} ms: ${summary}`);

    // One program and one link per hook; its maps are held by its program in the kernel, not by fds here.
    assert.deepEqual(loaded, { progs: idle.progs + HOOKS, links: idle.links + HOOKS, maps: idle.maps }, 'fds while loaded');
    assert.deepEqual(gone, idle, 'fds after removal');
    // ≤ 0.5 MiB per hook (issue 20's goal), and the C heap back to where it was once removed.
    assert.ok(rssLoaded - rssBefore <= HOOKS * 0.5, `RSS grew ${(rssLoaded - rssBefore).toFixed(1)} MiB for ${HOOKS} hooks (${rssBefore.toFixed(1)} -> ${rssLoaded.toFixed(1)})`);
    assert.ok(inUseAfter <= inUseBefore + LEAK_MARGIN_MIB, `C heap in use after removal ${inUseAfter.toFixed(1)} MiB, after the warm-up ${inUseBefore.toFixed(1)} MiB`);
  });
});
