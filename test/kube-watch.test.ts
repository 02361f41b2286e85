/**
 * The pod source against an API server that speaks the real list/watch
 * protocol: events, a dropped watch, 410 Gone, an API server that is down at
 * start, and workload resolution for every controller kind.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FakeKubeApi, PodSpec } from './helpers/fake-kube-api';
import { PodWatcher } from '../src/labels/kube/pod-watcher';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Logger } from '../src/util/log';
import { waitFor } from './helpers/cleanup';
import { freePort } from './helpers/ports';

const NODE = 'node-a';
const quiet = new Logger('error', () => undefined);

function pod(name: string, extra: Partial<PodSpec> = {}): PodSpec {
  return { uid: randomUUID(), namespace: 'shop', name, node: NODE, ...extra };
}

/** A test API server and a temp dir for its kubeconfig, for one suite; k.watcher is stopped after it. */
function useKubeApi(): { api: FakeKubeApi; dir: string; watcher?: PodWatcher } {
  const k = {} as { api: FakeKubeApi; dir: string; watcher?: PodWatcher };
  before(async () => {
    k.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    k.api = await new FakeKubeApi().start();
  });
  after(async () => {
    await k.watcher?.stop();
    await k.api?.close();
    fs.rmSync(k.dir, { recursive: true, force: true });
  });
  return k;
}

async function watcherFor(api: FakeKubeApi, dir: string, port?: number, resyncMs = 60_000, initialBackoffMs?: number): Promise<PodWatcher> {
  const kc = await loadKubeConfig(api.writeKubeconfig(dir, port));
  const w = new PodWatcher(kc!, { nodeName: NODE, resyncMs, backoff: initialBackoffMs ? { initialMs: initialBackoffMs } : undefined }, quiet);
  await w.start();
  return w;
}

/** The error counts that are not zero. */
function seenErrors(w: PodWatcher): Record<string, number> {
  return Object.fromEntries(Object.entries(w.stats.errors).filter(([, n]) => n > 0));
}

describe('PodWatcher', () => {
  const k = useKubeApi();

  it('lists only this node\'s pods, then follows ADDED, MODIFIED and DELETED', async () => {
    const mine = pod('cart-0');
    const other = pod('elsewhere', { node: 'node-b' });
    k.api.addPod(mine);
    k.api.addPod(other);
    k.watcher = await watcherFor(k.api, k.dir);
    await waitFor(() => k.watcher!.byUid(mine.uid) !== undefined, 'the initial list');
    assert.equal(k.watcher!.byUid(other.uid), undefined);
    assert.equal(k.api.listRequests()[0].get('fieldSelector'), `spec.nodeName=${NODE}`);
    await waitFor(() => k.api.watchRequests().length > 0, 'the watch');
    assert.deepEqual(k.api.watchRequests().map((q) => q.get('fieldSelector')), [`spec.nodeName=${NODE}`], 'the watch asks for this node\'s pods only');
    assert.ok(k.watcher!.connectedSince !== undefined, 'connected once listed');

    const later = pod('cart-1');
    k.api.addPod(later);
    await waitFor(() => k.watcher!.byUid(later.uid) !== undefined, 'ADDED');

    k.api.modifyPod(later.uid, (o) => {
      (o.status as { containerStatuses: unknown[] }).containerStatuses = [{ name: 'app', containerID: 'cri-o://abc123abc123', ready: true, restartCount: 0, image: 'x', imageID: 'x' }];
    });
    await waitFor(() => k.watcher!.byUid(later.uid)!.containers.get('abc123abc123') === 'app', 'MODIFIED');

    k.api.deletePod(later.uid);
    await waitFor(() => k.watcher!.byUid(later.uid)?.deletedAt !== undefined, 'DELETED');
    // cart-0 was ADDED by the list, cart-1 by the watch.
    assert.deepEqual(k.watcher!.stats.events, { ADDED: 2, MODIFIED: 1, DELETED: 1 });
    assert.deepEqual(seenErrors(k.watcher!), {});
    assert.equal(k.watcher!.size, 1);
  });

  it('a dropped watch resumes from the last resourceVersion, without a new list', async () => {
    const lists = k.api.listRequests().length;
    const watches = k.api.watchRequests().length;
    const lastSeen = k.api.currentRv; // the client has seen every event so far
    k.api.dropWatches();
    const during = pod('cart-2');
    k.api.addPod(during); // made while no watch is open
    await waitFor(() => k.watcher!.byUid(during.uid) !== undefined, 'the event made while disconnected');
    const resumed = k.api.watchRequests()[watches];
    assert.equal(resumed.get('resourceVersion'), String(lastSeen), 'resumes from the last resourceVersion it saw');
    assert.equal(k.api.listRequests().length, lists, 'no relist');
  });

  it('410 Gone makes it list again, and it converges', async () => {
    const lists = k.api.listRequests().length;
    k.api.dropWatches();
    const gone = pod('cart-3');
    k.api.addPod(gone); // not seen by the client...
    k.api.compact(); // ...and no longer in the history it will ask for
    await waitFor(() => k.api.listRequests().length > lists, 'a relist after 410');
    await waitFor(() => k.watcher!.byUid(gone.uid) !== undefined, 'the pod after the relist');
  });

  it('a static pod is found by the config hash its cgroup is named after', async () => {
    const hash = '0f3c9a1b2d4e6f8091a2b3c4d5e6f708';
    const mirror = pod('etcd-node-a', { annotations: { 'kubernetes.io/config.mirror': hash } });
    k.api.addPod(mirror);
    await waitFor(() => k.watcher!.byUid(hash) !== undefined, 'the mirror pod');
    assert.equal(k.watcher!.byUid(hash)!.name, 'etcd-node-a');
  });
});

describe('PodWatcher resync', () => {
  const k = useKubeApi();

  it('relists every resync period and reconciles what the watch missed', async () => {
    const stays = pod('stays');
    const missedDelete = pod('missed-delete');
    k.api.addPod(stays);
    k.api.addPod(missedDelete);
    k.watcher = await watcherFor(k.api, k.dir, undefined, 300);
    await waitFor(() => k.watcher!.byUid(missedDelete.uid) !== undefined, 'the initial list');
    const lists = k.api.listRequests().length;
    const missedAdd = pod('missed-add');
    k.api.changeSilently({ add: missedAdd, deleteUid: missedDelete.uid });
    await waitFor(() => k.watcher!.byUid(missedAdd.uid) !== undefined, 'the resync to find the pod added unseen');
    await waitFor(() => k.watcher!.byUid(missedDelete.uid)?.deletedAt !== undefined, 'the resync to find the pod deleted unseen');
    assert.ok(k.api.listRequests().length > lists, 'a relist');
    assert.ok(k.api.listRequests().every((q) => q.get('fieldSelector') === `spec.nodeName=${NODE}`));
    assert.equal(k.watcher!.byUid(stays.uid)?.deletedAt, undefined, 'a pod still listed stays alive');
    assert.deepEqual([...k.watcher!.alive()].map((p) => p.name).sort(), ['missed-add', 'stays']);
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
    const port = await freePort();
    const down = new FakeKubeApi();
    watcher = await watcherFor(down, dir, port);
    await waitFor(() => watcher!.stats.errors.connection >= 1, 'a failed first list');
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

describe('PodWatcher with a hostile API server (or proxy)', () => {
  const k = useKubeApi();
  const live = pod('live-0');

  /** Sends pod p in an ADDED event and waits for it: proof the watch still works after whatever came before. */
  async function stillWatching(name: string): Promise<void> {
    const p = pod(name);
    k.api.addPod(p);
    await waitFor(() => k.watcher!.byUid(p.uid) !== undefined, `${name} after the bad input`);
  }

  /** Ends the open watch with 410 Gone, which makes the watcher list at once. */
  async function relistNow(): Promise<void> {
    await waitFor(() => k.api.openWatches === 1, 'an open watch');
    k.api.sendError(410, 'Expired', 'too old resource version');
  }

  it('skips and counts each event without usable metadata, by reason, and keeps watching', async () => {
    k.api.addPod(live);
    k.watcher = await watcherFor(k.api, k.dir, undefined, 60_000, 50);
    await waitFor(() => k.api.openWatches === 1, 'the watch');
    const watches = k.api.watchRequests().length;
    const lists = k.api.listRequests().length;
    // The three shapes that took the agent down through the client library, and more.
    k.api.sendRaw('{"type":"ADDED","object":null}');
    k.api.sendRaw('{"type":"ADDED","object":{}}');
    k.api.sendRaw('{"type":"DELETED","object":{"kind":"Pod"}}');
    k.api.sendRaw('{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"no-uid","namespace":"shop"}}}');
    k.api.sendRaw('{"type":"ADDED","object":[1,2]}');
    k.api.sendRaw('{"type":"ADDED","obj');
    k.api.sendRaw('[]');
    k.api.sendRaw('{"type":"RENAMED","object":{}}');
    k.api.sendRaw('{"type":"BOOKMARK","object":{}}');
    k.api.bookmark(); // a good one: not an error
    await stillWatching('after-bad-events');
    assert.deepEqual(seenErrors(k.watcher!), { no_object: 2, no_metadata: 4, invalid_json: 1, bad_event: 1, unknown_type: 1 });
    assert.equal(k.api.watchRequests().length, watches, 'the same watch all along');
    assert.equal(k.api.listRequests().length, lists, 'no relist for a skipped event');
    assert.equal(k.watcher!.byUid(live.uid)?.deletedAt, undefined, 'a bad DELETED deleted nothing');
    assert.deepEqual([...k.watcher!.alive()].map((p) => p.name).sort(), ['after-bad-events', 'live-0']);
  });

  it('reads fields of the wrong shape leniently: a usable pod with garbage in its details still counts', async () => {
    const uid = randomUUID();
    k.api.sendRaw(JSON.stringify({
      type: 'ADDED',
      object: {
        kind: 'Pod',
        metadata: { uid, name: 'odd', namespace: 'shop', resourceVersion: '1', labels: 'x', annotations: null, ownerReferences: [null, { kind: 7 }, { kind: 'StatefulSet', name: 'odd-set', controller: true }] },
        status: { containerStatuses: [null, 5, { name: 'app' }, { name: 'app', containerID: 'containerd://c0ffee' }], initContainerStatuses: 'nope' },
      },
    }));
    await waitFor(() => k.watcher!.byUid(uid)?.resolved === true, 'the odd pod');
    const got = k.watcher!.byUid(uid)!;
    assert.deepEqual([got.workloadKind, got.workload, [...got.containers]], ['StatefulSet', 'odd-set', [['c0ffee', 'app']]]);
  });

  it('an ERROR event other than 410 ends the watch, is counted, and it relists', async () => {
    const before = { ...k.watcher!.stats.errors };
    await waitFor(() => k.api.openWatches === 1, 'an open watch');
    const lists = k.api.listRequests().length;
    k.api.sendError(500, 'InternalError', 'etcdserver: request timed out');
    await waitFor(() => k.api.listRequests().length > lists, 'a relist after the ERROR event');
    await waitFor(() => k.api.openWatches === 1, 'a new watch');
    assert.equal(k.watcher!.stats.errors.error_event, before.error_event + 1);
    assert.equal(k.watcher!.stats.errors.expired, before.expired, 'not counted as 410');
    await stillWatching('after-error-event');
  });

  it('an event line past the size cap ends the watch, is counted, and it relists', async () => {
    const lists = k.api.listRequests().length;
    const before = k.watcher!.stats.errors.too_large;
    k.api.sendRaw(`{"type":"ADDED","object":{"pad":"${'x'.repeat(17 * 1024 * 1024)}"}}`);
    await waitFor(() => k.watcher!.stats.errors.too_large === before + 1, 'the oversized event to be refused');
    await waitFor(() => k.api.listRequests().length > lists, 'a relist');
    await stillWatching('after-too-large');
  });

  it('list items without metadata are counted and skipped; the rest of the list is used', async () => {
    const before = { ...k.watcher!.stats.errors };
    k.api.extraListItems.push(null, {}, { kind: 'Pod' }, 'pod');
    const unseen = pod('listed-only');
    k.api.changeSilently({ add: unseen });
    const lists = k.api.listRequests().length;
    await relistNow();
    await waitFor(() => k.watcher!.byUid(unseen.uid) !== undefined, 'the list');
    assert.equal(k.api.listRequests().length, lists + 1);
    assert.equal(k.watcher!.stats.errors.expired, before.expired + 1);
    assert.equal(k.watcher!.stats.errors.no_object, before.no_object + 2, 'null and "pod"');
    assert.equal(k.watcher!.stats.errors.no_metadata, before.no_metadata + 2, '{} and {"kind":"Pod"}');
    k.api.extraListItems.length = 0;
  });

  it('a list that is not JSON, or not a list, is counted and retried until a good one comes', async () => {
    const before = { ...k.watcher!.stats.errors };
    k.api.nextListBodies.push('<html>502 Bad Gateway</html>', '{"kind":"PodList","items":null}', 'null');
    const unseen = pod('after-bad-lists');
    k.api.changeSilently({ add: unseen });
    await relistNow();
    await waitFor(() => k.watcher!.byUid(unseen.uid) !== undefined, 'a good list after three bad ones');
    assert.equal(k.watcher!.stats.errors.invalid_json, before.invalid_json + 1);
    assert.equal(k.watcher!.stats.errors.bad_list, before.bad_list + 2);
    await stillWatching('after-bad-lists-watch');
  });
});

describe('PodWatcher through kubectl proxy (a kubeconfig server at http:// without insecure-skip-tls-verify)', () => {
  const k = useKubeApi();

  it('lists and watches, as kubectl does', async () => {
    const kubeconfig = fs.readFileSync(k.api.writeKubeconfig(k.dir), 'utf8');
    assert.ok(kubeconfig.includes('"server":"http://') && !kubeconfig.includes('insecure-skip-tls-verify'), kubeconfig);
    const p = pod('proxied');
    k.api.addPod(p);
    k.watcher = await watcherFor(k.api, k.dir);
    await waitFor(() => k.watcher!.byUid(p.uid) !== undefined, 'the list through the proxy');
    const later = pod('proxied-later');
    k.api.addPod(later);
    await waitFor(() => k.watcher!.byUid(later.uid) !== undefined, 'a watch event through the proxy');
    assert.deepEqual(seenErrors(k.watcher!), {});
  });
});

describe('PodWatcher.stop while a list hangs', () => {
  let dir: string;
  let silent: http.Server | undefined;
  after(async () => {
    silent?.closeAllConnections();
    await new Promise((r) => silent?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('returns at once rather than wait out the list\'s timeout', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-'));
    // An API server that takes the request and never answers it.
    silent = http.createServer(() => undefined);
    await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    let asked = false;
    silent.on('request', () => (asked = true));
    const watcher = await watcherFor(new FakeKubeApi(), dir, port);
    await waitFor(() => asked, 'the list request');
    const t0 = Date.now();
    await watcher.stop();
    assert.ok(Date.now() - t0 < 1000, `stop took ${Date.now() - t0} ms`);
    assert.deepEqual(seenErrors(watcher), {}, 'stopping is not an error');
  });
});

describe('PodWatcher: pod labels (--metrics-pod-labels)', () => {
  const k = useKubeApi();

  it('keeps each pod\'s labels, and reports a pod\'s uid once its labels change, and only then', async () => {
    const p = pod('web-0', { labels: { team: 'a' } });
    k.api.addPod(p);
    k.watcher = await watcherFor(k.api, k.dir);
    await waitFor(() => k.watcher!.byUid(p.uid) !== undefined, 'the initial list');
    assert.deepEqual(k.watcher!.byUid(p.uid)!.labels, { team: 'a' });
    assert.deepEqual(k.watcher!.takeLabelChanges(), [], 'a pod first seen changes no label');

    const meta = (o: Record<string, unknown>): { labels: Record<string, string>; annotations?: Record<string, string> } => o.metadata as { labels: Record<string, string> };
    k.api.modifyPod(p.uid, (o) => (meta(o).annotations = { note: 'x' }));
    await waitFor(() => k.watcher!.stats.events.MODIFIED === 1, 'a MODIFIED event without a label change');
    assert.deepEqual(k.watcher!.takeLabelChanges(), []);

    k.api.modifyPod(p.uid, (o) => (meta(o).labels = { team: 'b' }));
    await waitFor(() => k.watcher!.stats.events.MODIFIED === 2, 'a MODIFIED event with another label');
    assert.deepEqual(k.watcher!.takeLabelChanges(), [p.uid]);
    assert.deepEqual(k.watcher!.takeLabelChanges(), [], 'taken once');
    assert.deepEqual(k.watcher!.byUid(p.uid)!.labels, { team: 'b' });

    k.api.modifyPod(p.uid, (o) => (meta(o).labels = { team: 'b', tier: 'front' }));
    await waitFor(() => k.watcher!.stats.events.MODIFIED === 3, 'a MODIFIED event with one more label');
    assert.deepEqual(k.watcher!.takeLabelChanges(), [p.uid]);
  });
});
