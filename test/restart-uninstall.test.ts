/**
 * Restart or uninstall (--bpf-pin-daemonset, docs/restart.md), end to end:
 * real BPF, the real agent, and the test API server holding (or not) the
 * agent's DaemonSet. A stop hands over while the DaemonSet exists; once it
 * is deleted, or reading it is refused after being allowed, the stop leaves
 * nothing pinned and nothing attached; with the API server gone it hands over.
 */
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, awaitUnloaded } from './helpers/agent-process';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { select } from './helpers/prom-text';
import { ISOLATED, restartState, usePinDir } from './helpers/pin-dir';

const NS = 'monitoring';

describe('restart or uninstall (--bpf-pin-daemonset)', () => {
  const agents: AgentProcess[] = [];
  let api: FakeKubeApi;
  let tmp: string;
  let kubeconfig: string;
  before(async () => {
    api = await new FakeKubeApi().start();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-uninstall-'));
    kubeconfig = api.writeKubeconfig(tmp);
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await api.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * A pin dir, and the flags of an agent of DaemonSet NS/name using it. The
   * test's agents stop before the pin dir is removed (hooks run in the order
   * added): an agent stopping later would pin into a directory no longer a bpffs.
   */
  const setup = (tc: TestContext, name: string): { dir: string; flags: string[] } => {
    tc.after(async () => {
      for (const a of agents.splice(0)) await a.stop();
    });
    const dir = usePinDir(tc);
    api.addDaemonSet(NS, name);
    return { dir, flags: ['--bpf-pin-dir', dir, '--kubeconfig', kubeconfig, '--node-name', 'test-node', '--bpf-pin-daemonset', `${NS}/${name}`, ...ISOLATED] };
  };

  /** Starts an agent and waits for its start check to have read the DaemonSet (counted as a get of daemonsets, 200). */
  const start = async (flags: string[]): Promise<AgentProcess> => {
    const a = await AgentProcess.start(flags);
    agents.push(a);
    await a.scrapeUntil((s) => select(s, 'tally_kube_requests_total', { verb: 'get', resource: 'daemonsets', code: '200' }).length === 1, 'the start check of the DaemonSet');
    return a;
  };

  /** The stop's decision line. */
  const decision = (a: AgentProcess): string => {
    const lines = a.stderr.split('\n').filter((l) => l.includes(' decision='));
    assert.equal(lines.length, 1, `one decision line in:\n${a.stderr}`);
    return lines[0];
  };

  const leftNothing = async (a: AgentProcess, dir: string, programs: number[]): Promise<void> => {
    assert.ok(!fs.existsSync(dir), `the pin directory is gone: ${fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).join(', ') : ''}\n${a.stderr}`);
    assert.deepEqual(await awaitUnloaded(programs), [], 'no program of the agent is left attached');
    assert.match(a.stderr, /msg="cleared the pin directory: nothing is left counting"/);
    assert.doesNotMatch(a.stderr, /counters pinned for the next agent/);
  };

  it('hands over while the DaemonSet exists; once it is deleted, the stop leaves nothing pinned or attached, and the next agent starts fresh', async (tc) => {
    const { dir, flags } = setup(tc, 'rollout');
    const a = await start(flags);
    assert.deepEqual(restartState(await a.scrape()), { fresh: 1 });
    assert.equal((await a.stop()).code, 0);
    assert.match(decision(a), /level=info msg="a restart: handing the counters over to the next agent" decision=hand_over reason="DaemonSet monitoring\/rollout exists: a restart"/);
    assert.ok(fs.existsSync(path.join(dir, 'state')), 'the state is pinned');
    assert.ok(fs.readdirSync(path.join(dir, 'links')).length > 0, 'the links are pinned');

    const b = await start(flags);
    assert.deepEqual(restartState(await b.scrape()), { adopted: 1 });
    api.deleteDaemonSet(NS, 'rollout');
    const bPrograms = b.programIds();
    assert.ok(bPrograms.length > 0);
    assert.equal((await b.stop()).code, 0);
    assert.match(decision(b), /decision=uninstall reason="DaemonSet monitoring\/rollout is gone \(HTTP 404\)"/);
    await leftNothing(b, dir, bPrograms);

    api.addDaemonSet(NS, 'rollout');
    const c = await start(flags);
    assert.deepEqual(restartState(await c.scrape()), { fresh: 1 });
  });

  it('reading the DaemonSet refused at stop (its RBAC deleted with it) after being allowed at start: the same as deleted', async (tc) => {
    const { dir, flags } = setup(tc, 'revoked');
    const a = await start(flags);
    const programs = a.programIds();
    api.forbidden.add('daemonsets');
    try {
      assert.equal((await a.stop()).code, 0);
    } finally {
      api.forbidden.delete('daemonsets');
    }
    assert.match(decision(a), /decision=uninstall reason="reading DaemonSet monitoring\/revoked is refused \(HTTP 403\) though it was allowed at start: its RBAC or ServiceAccount was deleted with it"/);
    await leftNothing(a, dir, programs);
  });

  it('the API server unreachable at stop: hands over, counts kept', async (tc) => {
    const { dir, flags } = setup(tc, 'unreachable');
    const a = await start(flags);
    await api.close(); // the last test: its port refuses from now on
    assert.equal((await a.stop()).code, 0);
    assert.match(decision(a), /decision=hand_over reason="no answer about DaemonSet monitoring\/unreachable \(.*ECONNREFUSED.*\); counts are kept"/);
    assert.ok(fs.existsSync(path.join(dir, 'state')), 'the state is pinned');
    assert.ok(fs.readdirSync(path.join(dir, 'links')).length > 0, 'the links are pinned');
  });
});
