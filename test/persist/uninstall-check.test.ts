/**
 * Restart or uninstall (src/persist/uninstall-check.ts, --bpf-pin-daemonset):
 * the decision as a table, then the check against the test API server
 * (real HTTP, real KubeHttp), and the flag's usage errors. No root.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { decideAtStop, Permission, StopAnswer, STOP_TIMEOUT_MS, UninstallCheck } from '../../src/persist/uninstall-check';
import { KubeHttp } from '../../src/labels/kube/http';
import { loadKubeConfig } from '../../src/labels/kube/client';
import { Logger } from '../../src/util/log';
import { parseFlags, UsageError } from '../../src/cli/args';
import { FakeKubeApi } from '../helpers/fake-kube-api';

const DS = 'DaemonSet monitoring/tally';

describe('decideAtStop', () => {
  it('uninstalls only on proof: gone, being deleted, or refused after being allowed; else hands over', () => {
    const cases: Array<[Permission, StopAnswer, 'hand_over' | 'uninstall', RegExp]> = [
      ['allowed', { status: 200 }, 'hand_over', /exists: a restart/],
      ['allowed', { status: 200, deletionTimestamp: '2024-05-01T10:00:00Z' }, 'uninstall', /being deleted \(deletionTimestamp 2024-05-01T10:00:00Z\)/],
      ['allowed', { status: 404 }, 'uninstall', /is gone \(HTTP 404\)/],
      ['allowed', { status: 403 }, 'uninstall', /refused \(HTTP 403\) though it was allowed at start/],
      ['allowed', { status: 401 }, 'uninstall', /refused \(HTTP 401\) though it was allowed at start/],
      ['allowed', { status: 500 }, 'hand_over', /answered HTTP 500.*counts are kept/],
      ['allowed', { status: 429 }, 'hand_over', /answered HTTP 429/],
      ['allowed', { error: 'no answer in 2000 ms' }, 'hand_over', /no answer about .*\(no answer in 2000 ms\); counts are kept/],
      // The start check never answered: a 404 or 403 may be a wrong name or missing RBAC.
      ['unknown', { status: 200 }, 'hand_over', /exists/],
      ['unknown', { status: 200, deletionTimestamp: '2024-05-01T10:00:00Z' }, 'uninstall', /being deleted/],
      ['unknown', { status: 404 }, 'hand_over', /not found \(HTTP 404\), but the start check never had an answer/],
      ['unknown', { status: 403 }, 'hand_over', /refused \(HTTP 403\), but the start check never had an answer/],
      ['unknown', { error: 'ECONNREFUSED' }, 'hand_over', /ECONNREFUSED/],
      // Turned off at start (not found or not allowed then): always hand over.
      ['disabled', { status: 404 }, 'hand_over', /turned off at start/],
      ['disabled', { status: 200, deletionTimestamp: 'x' }, 'hand_over', /turned off at start/],
      ['disabled', { error: 'not asked' }, 'hand_over', /turned off at start/],
    ];
    for (const [permission, answer, action, reason] of cases) {
      const v = decideAtStop(permission, answer, DS);
      const what = `${permission} ${JSON.stringify(answer)}`;
      assert.equal(v.action, action, what);
      assert.match(v.reason, reason, what);
      assert.ok(v.reason.includes(DS), `${what}: the reason names the DaemonSet`);
    }
  });
});

describe('UninstallCheck against the API server', () => {
  let api: FakeKubeApi;
  let dir: string;
  let kubeconfig: string;
  before(async () => {
    api = await new FakeKubeApi().start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-uninstall-check-'));
    kubeconfig = api.writeKubeconfig(dir);
  });
  after(async () => {
    await api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const logged = (): { log: Logger; lines: string[] } => {
    const lines: string[] = [];
    return { log: new Logger('info', (l) => lines.push(l)), lines };
  };
  const client = async (): Promise<KubeHttp> => new KubeHttp((await loadKubeConfig(kubeconfig))!);
  const settled = async (c: UninstallCheck): Promise<void> => {
    for (let i = 0; i < 200 && c.permission === 'unknown'; i++) await new Promise((r) => setTimeout(r, 10));
  };
  const counts = (h: KubeHttp): string[] => h.requests.samples().map((s) => `${s.labels.verb} ${s.labels.resource} ${s.labels.code} ${s.value}`).sort();

  it('allowed at start; gone at stop: an uninstall, each GET counted in tally_kube_requests_total', async () => {
    api.addDaemonSet('monitoring', 'a');
    const h = await client();
    const { log, lines } = logged();
    const c = new UninstallCheck(h, { namespace: 'monitoring', name: 'a' }, log);
    c.start();
    await settled(c);
    assert.equal(c.permission, 'allowed');
    api.deleteDaemonSet('monitoring', 'a');
    const v = await c.atStop();
    assert.equal(v.action, 'uninstall');
    assert.deepEqual(counts(h), ['get daemonsets 200 1', 'get daemonsets 404 1']);
    assert.deepEqual(api.daemonSetRequests().map((r) => r.path), ['/apis/apps/v1/namespaces/monitoring/daemonsets/a', '/apis/apps/v1/namespaces/monitoring/daemonsets/a']);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /level=info msg="an uninstall: .*" decision=uninstall reason="DaemonSet monitoring\/a is gone \(HTTP 404\)"/);
  });

  it('allowed at start; exists at stop: a restart; being deleted (foreground): an uninstall; forbidden since: an uninstall', async () => {
    api.addDaemonSet('monitoring', 'b');
    const h = await client();
    const run = async (change: () => void): Promise<string> => {
      const c = new UninstallCheck(h, { namespace: 'monitoring', name: 'b' }, logged().log);
      c.start();
      await settled(c);
      assert.equal(c.permission, 'allowed');
      change();
      return (await c.atStop()).action;
    };
    assert.equal(await run(() => {}), 'hand_over');
    assert.equal(await run(() => api.forbidden.add('daemonsets')), 'uninstall');
    api.forbidden.delete('daemonsets');
    assert.equal(await run(() => api.deleteDaemonSet('monitoring', 'b', { foreground: true })), 'uninstall');
    assert.deepEqual(counts(h), ['get daemonsets 200 5', 'get daemonsets 403 1']);
  });

  it('not found or forbidden at start: one warning, the check is off, and the stop hands over without asking', async () => {
    for (const [setup, status] of [[() => {}, 404], [() => api.forbidden.add('daemonsets'), 403]] as const) {
      setup();
      const h = await client();
      const { log, lines } = logged();
      const c = new UninstallCheck(h, { namespace: 'monitoring', name: 'missing' }, log);
      c.start();
      await settled(c);
      assert.equal(c.permission, 'disabled');
      assert.equal(lines.length, 1);
      assert.match(lines[0], /level=warn msg="--bpf-pin-daemonset: .*every stop will hand the counters over, an uninstall too/);
      assert.match(lines[0], new RegExp(`daemonset=monitoring/missing server=http://127.0.0.1:\\d+ status=${status}$`));
      const v = await c.atStop();
      assert.equal(v.action, 'hand_over');
      assert.match(v.reason, /turned off at start/);
      assert.deepEqual(counts(h), [`get daemonsets ${status} 1`], 'no request at stop');
      api.forbidden.clear();
    }
  });

  it('an API server that does not answer: the stop hands over within STOP_TIMEOUT_MS', async () => {
    const held: http.ServerResponse[] = [];
    const silent = http.createServer((_req, res) => held.push(res));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const file = path.join(dir, 'silent');
    fs.writeFileSync(file, fs.readFileSync(kubeconfig, 'utf8').replace(String(api.port), String((silent.address() as { port: number }).port)));
    try {
      const h = new KubeHttp((await loadKubeConfig(file))!);
      const c = new UninstallCheck(h, { namespace: 'monitoring', name: 'x' }, logged().log);
      c.start();
      const t0 = Date.now();
      const v = await c.atStop();
      const ms = Date.now() - t0;
      assert.equal(v.action, 'hand_over');
      assert.match(v.reason, /counts are kept/);
      assert.ok(ms >= STOP_TIMEOUT_MS - 50 && ms < STOP_TIMEOUT_MS + 500, `took ${ms} ms`);
    } finally {
      for (const r of held) r.destroy();
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('--bpf-pin-daemonset', () => {
  const inPod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', NODE_NAME: 'n1' };
  const usage = (argv: string[], env: Record<string, string>, re: RegExp): void =>
    assert.throws(() => parseFlags(argv, env), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));

  it('parses NAMESPACE/NAME with --bpf-pin-dir and Kubernetes access', () => {
    const p = parseFlags(['--bpf-pin-dir', '/sys/fs/bpf/tally', '--bpf-pin-daemonset', 'monitoring/obs-tally'], inPod);
    assert.ok(p.kind === 'run');
    if (p.kind === 'run') assert.deepEqual(p.config.pinDaemonSet, { namespace: 'monitoring', name: 'obs-tally' });
    const k = parseFlags(['--bpf-pin-dir', '/sys/fs/bpf/tally', '--bpf-pin-daemonset', 'a/b', '--kubeconfig', '/k'], { NODE_NAME: 'n1' });
    assert.ok(k.kind === 'run' && k.config.pinDaemonSet?.name === 'b');
  });

  it('refuses it without --bpf-pin-dir, without Kubernetes, or malformed, saying how to fix it', () => {
    usage(['--bpf-pin-daemonset', 'a/b'], inPod, /^--bpf-pin-daemonset needs --bpf-pin-dir: .*; add --bpf-pin-dir or drop --bpf-pin-daemonset$/);
    usage(['--bpf-pin-dir', '/sys/fs/bpf/t', '--bpf-pin-daemonset', 'a/b'], {}, /^--bpf-pin-daemonset needs Kubernetes access .*give --kubeconfig, or run in a pod/);
    for (const bad of ['tally', 'a/b/c', '/b', 'a/', 'A/b', 'a/b_c']) usage(['--bpf-pin-dir', '/sys/fs/bpf/t', '--bpf-pin-daemonset', bad], inPod, /must be NAMESPACE\/NAME, such as monitoring\/tally/);
  });
});
