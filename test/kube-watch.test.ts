/**
 * The pod source against an API server that speaks the real list/watch
 * protocol: events, a dropped watch, 410 Gone, an API server that is down at
 * start, and workload resolution for every controller kind.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { randomUUID } from 'node:crypto';
import { FakeKubeApi, PodSpec } from './helpers/fake-kube-api';
import { PodWatcher } from '../src/labels/kube/pod-watcher';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Logger } from '../src/util/log';
import { waitFor } from './helpers/cleanup';

const NODE = 'node-a';
const quiet = new Logger('error', () => undefined);

function pod(name: string, extra: Partial<PodSpec> = {}): PodSpec {
  return { uid: randomUUID(), namespace: 'shop', name, node: NODE, ...extra };
}

async function watcherFor(api: FakeKubeApi, dir: string, port?: number, resyncMs = 60_000): Promise<PodWatcher> {
  const kc = await loadKubeConfig(api.writeKubeconfig(dir, port));
  const w = new PodWatcher(kc!, { nodeName: NODE, resyncMs }, quiet);
  await w.start();
  return w;
}

describe('PodWatcher', () => {
  let api: FakeKubeApi;
  let watcher: PodWatcher;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    api = await new FakeKubeApi().start();
  });
  after(async () => {
    await watcher?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists only this node\'s pods, then follows ADDED, MODIFIED and DELETED', async () => {
    const mine = pod('cart-0');
    const other = pod('elsewhere', { node: 'node-b' });
    api.addPod(mine);
    api.addPod(other);
    watcher = await watcherFor(api, dir);
    await waitFor(() => watcher.byUid(mine.uid) !== undefined, 'the initial list');
    assert.equal(watcher.byUid(other.uid), undefined);
    assert.equal(api.listRequests()[0].get('fieldSelector'), `spec.nodeName=${NODE}`);
    await waitFor(() => api.watchRequests().length > 0, 'the watch');
    assert.deepEqual(api.watchRequests().map((q) => q.get('fieldSelector')), [`spec.nodeName=${NODE}`], 'the watch asks for this node\'s pods only');
    assert.ok(watcher.connectedSince !== undefined, 'connected once listed');

    const later = pod('cart-1');
    api.addPod(later);
    await waitFor(() => watcher.byUid(later.uid) !== undefined, 'ADDED');

    api.modifyPod(later.uid, (o) => {
      (o.status as { containerStatuses: unknown[] }).containerStatuses = [{ name: 'app', containerID: 'cri-o://abc123abc123', ready: true, restartCount: 0, image: 'x', imageID: 'x' }];
    });
    await waitFor(() => watcher.byUid(later.uid)!.containers.get('abc123abc123') === 'app', 'MODIFIED');

    api.deletePod(later.uid);
    await waitFor(() => watcher.byUid(later.uid)?.deletedAt !== undefined, 'DELETED');
    assert.deepEqual(watcher.stats.events, { ADDED: 2, MODIFIED: 1, DELETED: 1 });
    assert.equal(watcher.size, 1);
  });

  it('a dropped watch resumes from the last resourceVersion, without a new list', async () => {
    const lists = api.listRequests().length;
    const watches = api.watchRequests().length;
    const lastSeen = api.currentRv; // the client has seen every event so far
    api.dropWatches();
    const during = pod('cart-2');
    api.addPod(during); // made while no watch is open
    await waitFor(() => watcher.byUid(during.uid) !== undefined, 'the event made while disconnected');
    const resumed = api.watchRequests()[watches];
    assert.equal(resumed.get('resourceVersion'), String(lastSeen), 'resumes from the last resourceVersion it saw');
    assert.equal(api.listRequests().length, lists, 'no relist');
  });

  it('410 Gone makes it list again, and it converges', async () => {
    const lists = api.listRequests().length;
    api.dropWatches();
    const gone = pod('cart-3');
    api.addPod(gone); // not seen by the client...
    api.compact(); // ...and no longer in the history it will ask for
    await waitFor(() => api.listRequests().length > lists, 'a relist after 410');
    await waitFor(() => watcher.byUid(gone.uid) !== undefined, 'the pod after the relist');
  });

  it('a static pod is found by the config hash its cgroup is named after', async () => {
    const hash = '0f3c9a1b2d4e6f8091a2b3c4d5e6f708';
    const mirror = pod('etcd-node-a', { annotations: { 'kubernetes.io/config.mirror': hash } });
    api.addPod(mirror);
    await waitFor(() => watcher.byUid(hash) !== undefined, 'the mirror pod');
    assert.equal(watcher.byUid(hash)!.name, 'etcd-node-a');
  });
});

describe('PodWatcher resync', () => {
  let api: FakeKubeApi;
  let watcher: PodWatcher;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    api = await new FakeKubeApi().start();
  });
  after(async () => {
    await watcher?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('relists every resync period and reconciles what the watch missed', async () => {
    const stays = pod('stays');
    const missedDelete = pod('missed-delete');
    api.addPod(stays);
    api.addPod(missedDelete);
    watcher = await watcherFor(api, dir, undefined, 300);
    await waitFor(() => watcher.byUid(missedDelete.uid) !== undefined, 'the initial list');
    const lists = api.listRequests().length;
    const missedAdd = pod('missed-add');
    api.changeSilently({ add: missedAdd, deleteUid: missedDelete.uid });
    await waitFor(() => watcher.byUid(missedAdd.uid) !== undefined, 'the resync to find the pod added unseen');
    await waitFor(() => watcher.byUid(missedDelete.uid)?.deletedAt !== undefined, 'the resync to find the pod deleted unseen');
    assert.ok(api.listRequests().length > lists, 'a relist');
    assert.ok(api.listRequests().every((q) => q.get('fieldSelector') === `spec.nodeName=${NODE}`));
    assert.equal(watcher.byUid(stays.uid)?.deletedAt, undefined, 'a pod still listed stays alive');
    assert.deepEqual([...watcher.alive()].map((p) => p.name).sort(), ['missed-add', 'stays']);
  });
});

describe('PodWatcher with an API server that is down at start', () => {
  let api: FakeKubeApi | undefined;
  let watcher: PodWatcher | undefined;
  let dir: string;

  after(async () => {
    await watcher?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('retries with backoff and catches up once the server comes up', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    const down = new FakeKubeApi();
    watcher = await watcherFor(down, dir, port);
    await waitFor(() => watcher!.stats.errors >= 1, 'a failed first list');
    assert.equal(watcher.stats.lastSync, 0);
    assert.equal(watcher.connectedSince, undefined, 'not connected while the server is down');

    api = await new FakeKubeApi().start(port);
    const p = pod('late');
    api.addPod(p);
    await waitFor(() => watcher!.byUid(p.uid) !== undefined, 'the pod once the server is up', 20000);
    assert.ok(watcher.stats.lastSync > 0);
    assert.ok(watcher.connectedSince !== undefined);
  });
});

describe('workloads', () => {
  let api: FakeKubeApi;
  let watcher: PodWatcher;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    api = await new FakeKubeApi().start();
    api.addOwned('replicasets', 'shop', 'web-7d4b9c8f6', { kind: 'Deployment', name: 'web' });
    api.addOwned('jobs', 'shop', 'report-28123456', { kind: 'CronJob', name: 'report' });
  });
  after(async () => {
    await watcher?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const table: Array<[string, Partial<PodSpec>, string, string]> = [
    ['Deployment, through its ReplicaSet', { owner: { kind: 'ReplicaSet', name: 'web-7d4b9c8f6' }, labels: { 'pod-template-hash': '7d4b9c8f6' } }, 'Deployment', 'web'],
    ['Deployment, by the pod-template-hash rule when the ReplicaSet is unreadable', { owner: { kind: 'ReplicaSet', name: 'api-5f6d7c8b9' }, labels: { 'pod-template-hash': '5f6d7c8b9' } }, 'Deployment', 'api'],
    ['StatefulSet', { owner: { kind: 'StatefulSet', name: 'db' } }, 'StatefulSet', 'db'],
    ['DaemonSet', { owner: { kind: 'DaemonSet', name: 'node-agent' } }, 'DaemonSet', 'node-agent'],
    ['CronJob, through its Job', { owner: { kind: 'Job', name: 'report-28123456' } }, 'CronJob', 'report'],
    ['CronJob, by the Job naming rule when the Job is unreadable', { owner: { kind: 'Job', name: 'cleanup-28123999' } }, 'CronJob', 'cleanup'],
    ['a plain Job', { owner: { kind: 'Job', name: 'migrate' } }, 'Job', 'migrate'],
    ['a bare pod is its own workload', {}, 'Pod', 'debug-shell'],
  ];

  it('resolve for every controller kind', async () => {
    const pods = table.map(([, extra], i) => pod(i === table.length - 1 ? 'debug-shell' : `p${i}`, extra));
    for (const p of pods) api.addPod(p);
    watcher = await watcherFor(api, dir);
    for (const [i, [what, , kind, name]] of table.entries()) {
      await waitFor(() => watcher.byUid(pods[i].uid)?.workloadKind === kind, what);
      assert.equal(watcher.byUid(pods[i].uid)!.workload, name, what);
    }
  });
});
