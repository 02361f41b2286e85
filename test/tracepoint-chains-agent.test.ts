/**
 * Hooks of several policies on one classic tracepoint past the first 8 run
 * behind one attachment per 32 of them (src/engine/tracepoint-chains.ts,
 * issue 20 §3):
 * 70 hooks on syscalls/sys_enter_getppid, more than the 64 perf-event
 * programs the kernel lets one tracepoint hold, all load and each counts
 * exactly the calls the test makes from its own cgroup; when the policy in
 * the middle goes (its hooks shared two chains with the others'), the
 * others' hooks keep counting exactly. Across a restart (--bpf-pin-dir),
 * chained hooks count while no agent runs, as other hooks do.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, awaitUnloaded, scaled } from './helpers/agent-process';
import { restartState, usePinDir } from './helpers/pin-dir';
import { TestCgroup } from './helpers/cgroup';
import { select, Series } from './helpers/prom-text';
import { policyDocument } from './helpers/test-policies';

const POINT = 'tracepoint:syscalls:sys_enter_getppid';
/**
 * Hooks per policy, loaded in this order: a's first 8 attach alone
 * (ALONE_PER_TRACEPOINT); chain 1 holds a's other 12 and b's first 20,
 * chain 2 b's other 10 and c's 20.
 */
const POLICIES: Array<[string, number]> = [
  ['chain-a', 20],
  ['chain-b', 30],
  ['chain-c', 20],
];

function getppidPolicy(name: string, hooks: number): string {
  const lines: string[] = [];
  for (let i = 0; i < hooks; i++) {
    lines.push('  - subsystem: syscalls', '    event: sys_enter_getppid', '    metrics:', `    - name: ${name.replace(/-/g, '_')}_${i}_total`, `      help: getppid calls, hook ${i}.`, '      type: counter');
  }
  return policyDocument(name, 'tracepoints', lines);
}

const metricsOf = (name: string, hooks: number): string[] => Array.from({ length: hooks }, (_, i) => `${name.replace(/-/g, '_')}_${i}_total`);

/** Makes n getppid calls from the cgroup. */
const getppidCalls = (cg: TestCgroup, n: number): Promise<void> => cg.run('/usr/bin/python3', ['-c', `import os\nfor _ in range(${n}): os.getppid()`]);

/** What each hook of the policy counted for the cgroup. */
const countsOf = (s: Series[], cg: TestCgroup, name: string, hooks: number): number[] =>
  metricsOf(name, hooks).map((m) => select(s, m, { workload: cg.name }).reduce((n, x) => n + x.value, 0));

describe('hooks of many policies on one classic tracepoint', () => {
  let dir: string;
  let agent: AgentProcess;
  let cg: TestCgroup;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-chains-'));
    cg = TestCgroup.create('chains');
    agent = await AgentProcess.start(['--policy-dir', dir, '--builtin-policies', 'none', '--metrics-label-filter', 'workload']);
  });
  after(async () => {
    await agent?.stop();
    cg?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const calls = (n: number) => getppidCalls(cg, n);
  const counts = (s: Series[], name: string, hooks: number): number[] => countsOf(s, cg, name, hooks);

  const gauge = (s: Series[], metric: string): number | undefined => select(s, metric, { hook: POINT })[0]?.value;

  it('70 hooks load, take 10 attachments, and each counts every call', async () => {
    let s: Series[] = [];
    for (const [name, hooks] of POLICIES) {
      fs.writeFileSync(path.join(dir, `${name}.yaml`), getppidPolicy(name, hooks));
      s = await agent.scrapeUntil((x) => select(x, 'tally_policy_state', { policy: name, state: 'ok' })[0]?.value === 1, `${name} loads`, scaled(120000));
    }
    assert.equal(gauge(s, 'tally_bpf_chained_hooks'), 62);
    assert.equal(gauge(s, 'tally_bpf_hook_attachments'), 10, '8 alone, then one dispatcher per 32 hooks');

    await calls(1234);
    s = await agent.scrape();
    for (const [name, hooks] of POLICIES) assert.deepEqual(counts(s, name, hooks), Array(hooks).fill(1234), name);
  });

  it('the policy in the middle removed leaves the others in its chains counting exactly', async () => {
    fs.rmSync(path.join(dir, 'chain-b.yaml'));
    let s = await agent.scrapeUntil((x) => select(x, 'tally_policy_state', { policy: 'chain-b' }).length === 0, 'chain-b goes', scaled(60000));
    assert.equal(gauge(s, 'tally_bpf_chained_hooks'), 32);
    assert.equal(gauge(s, 'tally_bpf_hook_attachments'), 10, 'each chain keeps what is left of it');

    await calls(1000);
    s = await agent.scrape();
    assert.deepEqual(counts(s, 'chain-a', 20), Array(20).fill(2234));
    assert.deepEqual(counts(s, 'chain-c', 20), Array(20).fill(2234));
    assert.deepEqual(select(s, 'chain_b_0_total'), []);
  });

  it('with every policy gone, nothing stays at the tracepoint', async () => {
    for (const [name] of POLICIES) fs.rmSync(path.join(dir, `${name}.yaml`), { force: true });
    const s = await agent.scrapeUntil((x) => select(x, 'tally_policy_state').length === 0, 'the policies go', scaled(60000));
    assert.equal(gauge(s, 'tally_bpf_chained_hooks'), undefined);
    assert.equal(gauge(s, 'tally_bpf_hook_attachments'), undefined);
  });
});

/**
 * A classic tracepoint's program is attached through a BPF link, which can be
 * pinned, from 5.15; before, by a perf-event ioctl, and the handover fails
 * (docs/restart.md).
 */
const [major, minor] = os.release().split('.').map(Number);
const PERF_LINKS = major > 5 || (major === 5 && minor >= 15);
/** 8 hooks alone and 2 in a chain. */
const RESTART_HOOKS = 10;

describe('chained hooks across a restart', { skip: PERF_LINKS ? false : `kernel ${os.release()} attaches tracepoints without a BPF link (5.15+): a handover cannot pin them (docs/restart.md)` }, () => {
  const agents: AgentProcess[] = [];
  let dir: string;
  let cg: TestCgroup;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-chains-restart-'));
    cg = TestCgroup.create('chains-restart');
  });
  after(async () => {
    for (const a of agents) await a.stop();
    cg?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts every call made before, between and after two agents, in hooks alone and chained', async (tc) => {
    const pins = usePinDir(tc);
    fs.writeFileSync(path.join(dir, 'chain-r.yaml'), getppidPolicy('chain-r', RESTART_HOOKS));
    const flags = ['--policy-dir', dir, '--builtin-policies', 'none', '--metrics-label-filter', 'workload', '--bpf-pin-dir', pins];
    const calls = (n: number) => getppidCalls(cg, n);
    const counts = (s: Series[]): number[] => countsOf(s, cg, 'chain-r', RESTART_HOOKS);

    const a = await AgentProcess.start(flags);
    agents.push(a);
    await a.scrapeUntil((x) => select(x, 'tally_policy_state', { policy: 'chain-r', state: 'ok' })[0]?.value === 1, 'chain-r loads', scaled(60000));
    await calls(300);
    assert.deepEqual(counts(await a.scrape()), Array(RESTART_HOOKS).fill(300));
    const aPrograms = a.programIds();
    assert.equal((await a.stop()).code, 0);

    await calls(500); // no agent runs: A's pinned chain counts these

    const b = await AgentProcess.start(flags);
    agents.push(b);
    const first = await b.scrape();
    assert.deepEqual(restartState(first), { adopted: 1 });
    assert.deepEqual(counts(first), Array(RESTART_HOOKS).fill(800), `B's log:\n${b.stderr}`);
    // A's chain, dispatcher and hook programs with it, goes once B has taken over.
    assert.deepEqual(await awaitUnloaded(aPrograms), [], "the previous agent's programs are detached once taken over");

    await calls(200);
    assert.deepEqual(counts(await b.scrape()), Array(RESTART_HOOKS).fill(1000));
  });
});
