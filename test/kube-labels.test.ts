/**
 * Kubernetes labels end to end: the real agent, a test API server speaking
 * list/watch, kubelet-shaped cgroups (systemd and cgroupfs drivers), and
 * exact bytes labelled with namespace, workload, pod and container. Deleting
 * the pod retires its series after the TTL and frees its kernel entries.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentProcess, scaled } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { containerId, KubeShop, ShopPod } from './helpers/kube-shop';
import { kernelCounters, kernelLabelSets } from './helpers/kernel-maps';
import { BUCKET_SUM } from '../src/bpf/layout';
import { kernelIdOf, select } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { waitFor } from './helpers/cleanup';
import { HOPPER, SINK } from './helpers/python-peers';

const NODE_NAME = 'tally-test-node';
const SENT = 'tally_tcp_sent_bytes_total';
const RECEIVED = 'tally_tcp_received_bytes_total';
const NODE = fs.realpathSync(process.execPath);
const TTL_MS = 2000;


describe('Kubernetes labels', () => {
  let shop: KubeShop | undefined;
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let dir: string;
  let web: ShopPod;
  let db: ShopPod;
  let webCg: TestCgroup;
  let dbCg: TestCgroup;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    shop = await KubeShop.start('kube', NODE_NAME);
    ({ api, web, db } = shop);
    webCg = web.cg;
    dbCg = db.cg;

    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod,container,binary',
      '--metrics-series-ttl', `${TTL_MS}ms`,
    ]);
    await waitFor(() => /msg="watching the pods of this node"/.test(agent.stderr), 'the agent to watch pods');
  });

  after(async () => {
    shop?.destroyCgroups();
    await agent?.stop();
    await shop?.api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('labels exact bytes with namespace, workload, pod and container', async () => {
    // The agent knows both pods, and web's Deployment, before traffic starts.
    const deadline = Date.now() + 20000;
    for (;;) {
      const s = await agent.scrape();
      if (select(s, 'tally_kube_pods')[0]?.value === 2) break;
      assert.ok(Date.now() < deadline, 'the agent never listed both pods');
      await new Promise((r) => setTimeout(r, 50));
    }
    const N = 2_345_678;
    const t = await transfer(webCg, dbCg, N);
    assert.equal(t.received, N);
    const series = await agent.scrape();
    assert.deepEqual(select(series, SENT, { pod: web.name }).map((s) => [s.labels, s.value]), [
      [{ namespace: 'shop', workload: 'web', pod: web.name, container: 'app', binary: NODE }, N],
    ]);
    assert.deepEqual(select(series, RECEIVED, { pod: db.name }).map((s) => [s.labels, s.value]), [
      [{ namespace: 'shop', workload: 'db', pod: db.name, container: 'postgres', binary: NODE }, N],
    ]);
    assert.ok(select(series, 'tally_kube_watch_events_total', { type: 'ADDED' })[0].value >= 2);
    assert.ok(select(series, 'tally_kube_last_sync_age_seconds')[0].value < scaled(60000) / 1000);
  });

  it('a deleted pod: series gone after the TTL, its kernel entries freed', async () => {
    // The kernel knows the pod's cgroup: by a raw entry, or (once folded in) by its label-set mapping.
    assert.ok(kernelCounters(agent.child.pid!).some((e) => e.cgroupId === webCg.id) || kernelLabelSets(agent.child.pid!).has(webCg.id));
    api.deletePod(web.uid);
    const deletedAt = Date.now();
    let series = await agent.scrape();
    while (select(series, SENT, { pod: web.name }).length > 0) {
      assert.ok(Date.now() - deletedAt < TTL_MS + scaled(6000), 'series outlived the TTL');
      await new Promise((r) => setTimeout(r, 100));
      series = await agent.scrape();
    }
    assert.ok(Date.now() - deletedAt >= TTL_MS, 'series went before the TTL');
    assert.equal(kernelCounters(agent.child.pid!).filter((e) => e.flags === 0 && e.cgroupId === webCg.id).length, 0);
    assert.equal(kernelLabelSets(agent.child.pid!).has(webCg.id), false, 'its label-set mapping is gone');
    // The other pod is untouched.
    assert.equal(select(series, RECEIVED, { pod: db.name }).length, 1);
  });
});

describe('filter namespace,workload: 50 pods of one Deployment', () => {
  const PODS = 50;
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let dir: string;
  const made: TestCgroup[] = [];
  const containers: TestCgroup[] = [];
  let sinkCg: TestCgroup;
  let hopCg: TestCgroup;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    api = await new FakeKubeApi().start();
    api.addOwned('replicasets', 'shop', 'web-7d4b9c8f6', { kind: 'Deployment', name: 'web' });
    const root = TestCgroup.create('kube50');
    made.push(root);
    for (let i = 0; i < PODS; i++) {
      const uid = randomUUID();
      const id = containerId();
      api.addPod({ uid, namespace: 'shop', name: `web-7d4b9c8f6-${i}`, node: NODE_NAME, owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' }, labels: { 'pod-template-hash': '7d4b9c8f6' }, containers: [{ name: 'app', id }] });
      let cg = root;
      for (const n of ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replace(/-/g, '_')}.slice`, `cri-containerd-${id}.scope`]) {
        const existing = made.find((m) => m.dir === path.join(cg.dir, n));
        cg = existing ?? cg.child(n);
        if (!existing) made.push(cg);
      }
      containers.push(cg);
    }
    sinkCg = TestCgroup.create('sink');
    hopCg = TestCgroup.create('hopper');
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload',
      '--metrics-series-ttl', '2s', // sweeps every 500 ms
    ]);
  });

  after(async () => {
    for (const cg of [sinkCg, hopCg, ...made.reverse()]) cg?.destroy();
    await agent?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function round(bytes: (i: number) => number): Promise<number> {
    const sink = sinkCg.spawn('/usr/bin/python3', ['-c', SINK]);
    const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
    const hop = hopCg.spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    hop.stdout!.on('data', (d) => (out += d));
    hop.stdin!.end(containers.map((cg, i) => `${cg.dir}/cgroup.procs ${bytes(i)}\n`).join(''));
    await waitFor(() => out.includes('done'), 'the hopper');
    sink.kill();
    return containers.reduce((a, _, i) => a + bytes(i), 0);
  }

  it('share one kernel entry per metric, and the bytes are exact', async () => {
    // Round 1: cgroups not resolved yet are counted raw, then folded in.
    const first = await round((i) => 1000 + i);
    await waitFor(() => {
      const sets = kernelLabelSets(agent.child.pid!);
      return containers.every((cg) => sets.has(cg.id));
    }, 'every pod cgroup to be mapped to its label set', 20000);
    const sets = kernelLabelSets(agent.child.pid!);
    const ids = new Set(containers.map((cg) => sets.get(cg.id)));
    assert.equal(ids.size, 1, 'one label set for the 50 pods');
    const [labelSet] = [...ids];
    const ours = new Set(containers.map((cg) => cg.id));
    // Fold-in is two-phase: raw entries move out a sweep after the mapping, once quiet.
    await waitFor(() => kernelCounters(agent.child.pid!).every((e) => !(e.flags === 0 && ours.has(e.cgroupId))), 'the raw entries to be folded in', 20000);

    // Round 2: counted straight into the shared entry.
    const second = await round((i) => 2000 + 3 * i);
    const entries = kernelCounters(agent.child.pid!);
    assert.deepEqual(entries.filter((e) => e.flags === 0 && ours.has(e.cgroupId)), [], 'no raw entry for the pods');
    // Sent bytes are the send-size histogram's sum in the kernel.
    const sendSizeId = kernelIdOf(await agent.scrape(), 'tally_tcp_send_size_bytes');
    const sharedKey = entries.filter((e) => e.flags === 2 && e.cgroupId === BigInt(labelSet!));
    assert.equal(sharedKey.filter((e) => e.metric === sendSizeId && e.bucket === BUCKET_SUM).length, 1, 'one kernel entry for the sum of bytes sent');
    // 50 pods sending hold one entry per metric and bucket they touched (bytes
    // sent and received, the hopper's file writes, the send-size histogram's
    // buckets), not 50 for bytes sent alone. Only entries under this label set
    // are counted: the agent counts the whole host, and other suites running
    // alongside add entries of their own.
    assert.ok(sharedKey.length >= 1 && sharedKey.length < PODS / 2, `the shared label set holds ${sharedKey.length} kernel entries`);
    const entriesNow = select(await agent.scrape(), 'tally_bpf_map_entries', { map: 'tally_counters' })[0].value;
    assert.ok(entriesNow >= sharedKey.length, `tally_bpf_map_entries reads ${entriesNow}, below the ${sharedKey.length} entries of one label set`);

    const series = await agent.scrape();
    assert.deepEqual(select(series, SENT, { workload: 'web' }).map((s) => [s.labels, s.value]), [[{ namespace: 'shop', workload: 'web' }, first + second]]);
    // The health metrics say the same: 50 cgroups behind few label sets.
    assert.ok(select(series, 'tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' })[0].value >= PODS);
    assert.ok(select(series, 'tally_bpf_map_folded_entries_total')[0].value >= PODS);
  });
});

describe('a rolling update (filter namespace,workload)', () => {
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let dir: string;
  const made: TestCgroup[] = [];
  let receiver: TestCgroup;
  const oldPod = { uid: randomUUID(), name: 'api-5f6d7c8b9-old00', container: containerId() };
  const newPod = { uid: randomUUID(), name: 'api-5f6d7c8b9-new00', container: containerId() };

  function podCgroup(root: TestCgroup, uid: string, id: string): TestCgroup {
    let cg = root;
    for (const n of ['kubepods', `pod${uid}`, id]) {
      cg = cg.child(n);
      made.push(cg);
    }
    return cg;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    api = await new FakeKubeApi().start();
    api.addOwned('replicasets', 'shop', 'api-5f6d7c8b9', { kind: 'Deployment', name: 'api' });
    api.addPod({ uid: oldPod.uid, namespace: 'shop', name: oldPod.name, node: NODE_NAME, owner: { kind: 'ReplicaSet', name: 'api-5f6d7c8b9' }, containers: [{ name: 'app', id: oldPod.container }] });
    receiver = TestCgroup.create('recv');
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload',
      '--metrics-series-ttl', `${TTL_MS}ms`,
    ]);
    await agent.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 1, 'the agent to list the pod');
  });

  after(async () => {
    for (const cg of made.reverse()) cg.destroy();
    receiver?.destroy();
    await agent?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an idle new pod keeps the workload\'s series alive and monotonic after the old pod goes', async () => {
    const oldRoot = TestCgroup.create('roll-old');
    made.push(oldRoot);
    const oldCg = podCgroup(oldRoot, oldPod.uid, oldPod.container);
    await transfer(oldCg, receiver, 7000);
    const api7000 = await agent.scrapeUntil((s) => select(s, SENT, { workload: 'api' }).length > 0, 'the workload series');
    assert.deepEqual(select(api7000, SENT, { workload: 'api' }).map((s) => s.value), [7000]);

    // The new pod comes up and stays idle; the old one is deleted and its cgroups removed.
    api.addPod({ uid: newPod.uid, namespace: 'shop', name: newPod.name, node: NODE_NAME, owner: { kind: 'ReplicaSet', name: 'api-5f6d7c8b9' }, containers: [{ name: 'app', id: newPod.container }] });
    const newRoot = TestCgroup.create('roll-new');
    made.push(newRoot);
    const newCg = podCgroup(newRoot, newPod.uid, newPod.container);
    api.deletePod(oldPod.uid);
    for (const cg of made.filter((m) => m.dir.startsWith(oldRoot.dir)).reverse()) cg.destroy();
    const goneAt = Date.now();
    // Well past the TTL: the old cgroup's own kernel state is retired...
    while (kernelLabelSets(agent.child.pid!).has(oldCg.id) || kernelCounters(agent.child.pid!).some((e) => e.flags === 0 && e.cgroupId === oldCg.id) || Date.now() - goneAt < TTL_MS + 1500) {
      assert.ok(Date.now() - goneAt < TTL_MS + scaled(8000), 'the old cgroup\'s kernel state outlived the TTL');
      await new Promise((r) => setTimeout(r, 100));
    }
    // ...but the workload lives on in the new pod: its series neither went nor restarted.
    assert.deepEqual(select(await agent.scrape(), SENT, { workload: 'api' }).map((s) => s.value), [7000]);

    await transfer(newCg, receiver, 500);
    assert.deepEqual(select(await agent.scrape(), SENT, { workload: 'api' }).map((s) => s.value), [7500]);
  });
});
