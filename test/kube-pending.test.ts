/**
 * Counts of pod cgroups whose labels are not final yet are held back (still
 * counted in the kernel) rather than shown under labels they would later
 * leave: an API server that is down when the agent starts, a pod whose status
 * does not list its container yet, and a pod the API server never lists.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { FakeKubeApi, PodSpec } from './helpers/fake-kube-api';
import { select, Series } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { freePort } from './helpers/ports';

const NODE_NAME = 'tally-pending-node';
const SENT = 'tally_tcp_sent_bytes_total';
const PENDING = 'tally_cgroups_pending_labels';

const containerId = (): string => randomBytes(32).toString('hex');
const sentBy = (series: Series[], pod: string): Array<[Record<string, string>, number]> =>
  select(series, SENT, { pod }).map((s) => [s.labels, s.value]);

/** A pod and its container cgroup, systemd-driver shaped, under a test root. */
class PodCgroups {
  readonly made: TestCgroup[] = [];
  constructor(private readonly root: TestCgroup) {}

  container(uid: string, id: string): TestCgroup {
    let cg = this.root;
    for (const n of ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`, `cri-containerd-${id}.scope`]) {
      const dir = path.join(cg.dir, n);
      const existing = this.made.find((m) => m.dir === dir);
      cg = existing ?? cg.child(n);
      if (!existing) this.made.push(cg);
    }
    return cg;
  }

  destroy(): void {
    for (const cg of [...this.made].reverse()) cg.destroy();
    this.root.destroy();
  }
}

describe('an API server that is down when the agent starts (filter namespace,workload,pod)', () => {
  let api: FakeKubeApi | undefined;
  let agent: AgentProcess;
  let dir: string;
  let port: number;
  let pods: PodCgroups;
  let receiver: TestCgroup;
  const web: PodSpec = { uid: randomUUID(), namespace: 'shop', name: 'web-7d4b9c8f6-abcde', node: NODE_NAME, owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' }, containers: [{ name: 'app', id: containerId() }] };
  // Listed without container statuses: the runtime has not reported yet.
  const fresh: PodSpec = { uid: randomUUID(), namespace: 'shop', name: 'fresh', node: NODE_NAME, containers: [] };
  const freshContainer = containerId();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-pending-'));
    port = await freePort();
    pods = new PodCgroups(TestCgroup.create('kpend'));
    receiver = TestCgroup.create('recv');
    agent = await AgentProcess.start([
      '--kubeconfig', new FakeKubeApi().writeKubeconfig(dir, port),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod',
    ]);
  });

  after(async () => {
    await agent?.stop();
    pods?.destroy();
    receiver?.destroy();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds the pod\'s bytes back, still counted, and labels them exactly once the server is up', async () => {
    const cg = pods.container(web.uid, web.containers![0].id);
    const N = 333_333;
    assert.equal((await transfer(cg, receiver, N)).received, N);
    const held = await agent.scrapeUntil((s) => (select(s, PENDING)[0]?.value ?? 0) >= 1, 'a sweep to hold the pod cgroup back');
    // Not under a provisional label it would later leave: no scope name, no catch-all.
    assert.deepEqual(select(held, SENT, { workload: `cri-containerd-${web.containers![0].id}.scope` }), []);
    assert.deepEqual(select(held, SENT, { workload: 'unresolved-pod' }), [], 'no give-up while the server is unreachable');

    api = await new FakeKubeApi().start(port);
    api.addOwned('replicasets', 'shop', 'web-7d4b9c8f6', { kind: 'Deployment', name: 'web' });
    api.addPod(web);
    api.addPod(fresh);
    const series = await agent.scrapeUntil((s) => sentBy(s, web.name).length > 0, 'the pod\'s series once the server is up', 30000);
    assert.deepEqual(sentBy(series, web.name), [[{ namespace: 'shop', workload: 'web', pod: web.name }, N]]);
  });

  it('a pod whose status does not list its container yet is labelled from the pod UID in its path', async () => {
    const cg = pods.container(fresh.uid, freshContainer);
    const M = 44_444;
    assert.equal((await transfer(cg, receiver, M)).received, M);
    const series = await agent.scrapeUntil((s) => sentBy(s, fresh.name).length > 0, 'the fresh pod\'s series');
    assert.deepEqual(sentBy(series, fresh.name), [[{ namespace: 'shop', workload: 'fresh', pod: 'fresh' }, M]]);
  });
});

describe('container in the filter', () => {
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let dir: string;
  let pods: PodCgroups;
  let receiver: TestCgroup;
  const late: PodSpec = { uid: randomUUID(), namespace: 'jobs', name: 'late', node: NODE_NAME, containers: [] };
  const lateContainer = containerId();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-pending-'));
    api = await new FakeKubeApi().start();
    api.addPod(late);
    pods = new PodCgroups(TestCgroup.create('kcont'));
    receiver = TestCgroup.create('recv');
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod,container',
    ]);
    await agent.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 1, 'the agent to list the pod');
  });

  after(async () => {
    await agent?.stop();
    pods?.destroy();
    receiver?.destroy();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds bytes until the container status names the container, then labels them exactly', async () => {
    const cg = pods.container(late.uid, lateContainer);
    const N = 55_555;
    assert.equal((await transfer(cg, receiver, N)).received, N);
    const held = await agent.scrapeUntil((s) => (select(s, PENDING)[0]?.value ?? 0) >= 1, 'a sweep to hold the container back');
    assert.deepEqual(sentBy(held, 'late'), [], 'nothing shown without the container label it will have');

    api.modifyPod(late.uid, (o) => {
      (o.status as { containerStatuses: unknown[] }).containerStatuses = [{ name: 'worker', containerID: `containerd://${lateContainer}`, ready: true, restartCount: 0, image: 'x', imageID: 'x' }];
    });
    const series = await agent.scrapeUntil((s) => sentBy(s, 'late').length > 0, 'the series once the container is known');
    assert.deepEqual(sentBy(series, 'late'), [[{ namespace: 'jobs', workload: 'late', pod: 'late', container: 'worker' }, N]]);
  });

  it('a pod the API server never lists: after the grace period, under workload="unresolved-pod"', async () => {
    const cg = pods.container(randomUUID(), containerId());
    const K = 6_789;
    const unresolved = (s: Series[]): number => select(s, SENT, { workload: 'unresolved-pod' })[0]?.value ?? 0;
    const before = unresolved(await agent.scrape());
    assert.equal((await transfer(cg, receiver, K)).received, K);
    // Other suites' pod cgroups on this host are unknown pods to this agent too, so at least K more; they
    // can reach it first, so the grace period itself is timed in labeler-grace.test.ts.
    const series = await agent.scrapeUntil((s) => unresolved(s) >= before + K, 'the unresolved-pod series', 30000);
    assert.deepEqual(Object.keys(select(series, SENT, { workload: 'unresolved-pod' })[0].labels), ['workload']);
  });
});
