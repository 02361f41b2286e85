/**
 * Owner lookups (ReplicaSet -> Deployment, Job -> CronJob) against the test
 * API server: one request per owner however many pods ask at once, cached
 * with a bound, retried with backoff when the answer may change, never asked
 * again for a pod already resolved, and every request counted in
 * tally_kube_requests_total and tally_cache_*{cache="kube_owners"}.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { FakeKubeApi, PodSpec } from './helpers/fake-kube-api';
import { PodWatcher } from '../src/labels/kube/pod-watcher';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Logger } from '../src/util/log';
import { waitFor } from './helpers/cleanup';

const NODE = 'node-owners';
const quiet = new Logger('error', () => undefined);

function replicaPod(rs: string, hash: string): PodSpec {
  return { uid: randomUUID(), namespace: 'shop', name: `${rs}-${randomUUID().slice(0, 5)}`, node: NODE, owner: { kind: 'ReplicaSet', name: rs }, labels: { 'pod-template-hash': hash } };
}

const gets = (w: PodWatcher): Record<string, number> =>
  Object.fromEntries(w.requests.samples().filter((s) => s.labels.verb === 'get').map((s) => [`${s.labels.resource} ${s.labels.code}`, s.value]));

describe('owner lookups', () => {
  let api: FakeKubeApi;
  let dir: string;
  let watcher: PodWatcher | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-owners-'));
    api = await new FakeKubeApi().start();
    api.ownerDelayMs = 50; // lookups of one owner overlap
    api.addOwned('replicasets', 'shop', 'web-7d4b9c8f6', { kind: 'Deployment', name: 'web' });
    api.addOwned('replicasets', 'shop', 'api-5f6d7c8b9', { kind: 'Deployment', name: 'api' });
    api.addOwned('replicasets', 'shop', 'cart-6c5b4a392', { kind: 'Deployment', name: 'cart' });
  });
  after(async () => {
    await watcher?.stop();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function resolved(pods: PodSpec[], what: string): Promise<void> {
    await waitFor(() => pods.every((p) => watcher!.byUid(p.uid)?.resolved === true), what);
  }

  it('ten pods of one ReplicaSet, listed together, cost one request', async () => {
    const web = Array.from({ length: 10 }, () => replicaPod('web-7d4b9c8f6', '7d4b9c8f6'));
    for (const p of web) api.addPod(p);
    const kc = await loadKubeConfig(api.writeKubeconfig(dir));
    watcher = new PodWatcher(kc!, { nodeName: NODE, resyncMs: 200, ownerCacheCapacity: 2, ownerCacheTtlMs: 100, backoff: { initialMs: 20, capMs: 100 } }, quiet);
    await watcher.start();
    await resolved(web, 'the web pods');
    assert.deepEqual(web.map((p) => watcher!.byUid(p.uid)!.workload), Array(10).fill('web'));
    assert.equal(api.ownerRequests().length, 1);
    assert.deepEqual(gets(watcher), { 'replicasets 200': 1 });
    const c = watcher.ownerCache;
    assert.deepEqual([c.misses, c.hits, c.entries, c.capacity], [1, 9, 1, 2], 'one miss; nine answered by the request under way');
  });

  it('a pod already resolved is not looked up again: not by updates, not by relists after the TTL', async () => {
    const lists = api.listRequests().length;
    const [first] = [...watcher!.alive()];
    api.modifyPod(first.uid, (o) => ((o.metadata.labels as Record<string, string>).touched = 'yes'));
    await waitFor(() => api.listRequests().length >= lists + 2, 'two resyncs, each after the cache entry expired');
    assert.equal(api.ownerRequests().length, 1);
    assert.equal(watcher!.byUid(first.uid)!.workload, 'web');
  });

  it('an answer that may change (503) is retried with backoff; a definite one (404) is not', async () => {
    const asked = api.ownerRequests().length;
    api.nextOwnerStatuses.push(503, 503);
    const apiPod = replicaPod('api-5f6d7c8b9', '5f6d7c8b9');
    api.addPod(apiPod);
    await resolved([apiPod], 'the api pod');
    assert.equal(watcher!.byUid(apiPod.uid)!.workload, 'api', 'the third attempt read the Deployment');
    const gone = replicaPod('gone-8b7c6d5e4', '8b7c6d5e4'); // no such ReplicaSet: 404
    api.addPod(gone);
    await resolved([gone], 'the pod of a missing ReplicaSet');
    assert.equal(watcher!.byUid(gone.uid)!.workload, 'gone', 'the pod-template-hash rule');
    assert.equal(api.ownerRequests().length - asked, 4, '3 for api (503, 503, 200), 1 for gone (404)');
    assert.deepEqual(gets(watcher!), { 'replicasets 200': 2, 'replicasets 503': 2, 'replicasets 404': 1 });
  });

  it('the cache keeps its bound: least recently used owners are evicted and counted', async () => {
    const c = watcher!.ownerCache;
    assert.deepEqual([c.entries, c.evictions], [2, 1], 'web, api, gone: web made room for gone');
    const cart = replicaPod('cart-6c5b4a392', '6c5b4a392');
    api.addPod(cart);
    await resolved([cart], 'the cart pod');
    assert.deepEqual([c.entries, c.evictions], [2, 2], 'api made room for cart');
  });
});
