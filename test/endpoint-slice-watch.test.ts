/**
 * The EndpointSlice watch against the protocol-faithful test API server,
 * without BPF: what it hands the peer table after a list, after watch
 * events, with and without this node's zone, and when the API server
 * refuses (403, as without the chart's RBAC) or sends an unusable slice:
 * errors are counted, logged once per outage, and the rest keeps working.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { KubeHttp } from '../src/labels/kube/http';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Logger } from '../src/util/log';
import { EndpointSliceWatch } from '../src/peers/endpoint-slice-watch';
import { ClusterPeer } from '../src/peers/peer-table';

const NODE = 'n1';
const FAST = { initialMs: 20, capMs: 100 };

/** A watch whose every table it would write is kept, in order. */
async function watch(api: FakeKubeApi, dir: string, log: string[]): Promise<{ w: EndpointSliceWatch; tables: ClusterPeer[][]; next: (n: number) => Promise<ClusterPeer[]> }> {
  const http = new KubeHttp((await loadKubeConfig(api.writeKubeconfig(dir)))!);
  const tables: ClusterPeer[][] = [];
  const w = new EndpointSliceWatch(http, { nodeName: NODE, debounceMs: 50, backoff: FAST }, new Logger('info', (l) => log.push(l)), (p) => tables.push(p));
  w.start();
  const next = async (n: number): Promise<ClusterPeer[]> => {
    for (const deadline = Date.now() + 10000; tables.length < n; ) {
      if (Date.now() > deadline) throw new Error(`${tables.length} tables, waited for ${n}; log:\n${log.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return tables[n - 1];
  };
  return { w, tables, next };
}

const flat = (peers: ClusterPeer[]): string[] => peers.map((p) => `${p.address} ${p.peer.class}/${p.peer.namespace}/${p.peer.service}`).sort();

describe('EndpointSlice watch', () => {
  let api: FakeKubeApi;
  let dir: string;
  const stops: EndpointSliceWatch[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-eps-'));
    api = await new FakeKubeApi().start();
  });
  after(async () => {
    for (const w of stops) await w.stop();
    await api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists, follows ADDED, MODIFIED and DELETED, and classes endpoints by this node\'s zone', async () => {
    api.setNode({ name: NODE, labels: { 'topology.kubernetes.io/zone': 'z1' } });
    api.addEndpointSlice({ namespace: 'shop', name: 'web-1', service: 'web', endpoints: [{ addresses: ['10.0.0.1'], nodeName: NODE, zone: 'z1' }, { addresses: ['10.0.0.2'], nodeName: 'n2', zone: 'z2' }] });
    const log: string[] = [];
    const { w, tables, next } = await watch(api, dir, log);
    stops.push(w);
    // The list may come before the node's zone does: wait for the table that has it.
    let t = await next(1);
    while (!flat(t).includes('10.0.0.2 cross-zone/shop/web')) t = await next(tables.length + 1);
    assert.deepEqual(flat(t), ['10.0.0.1 same-node/shop/web', '10.0.0.2 cross-zone/shop/web']);

    let n = tables.length;
    api.addEndpointSlice({ namespace: 'ops', name: 'api-1', service: 'api', addressType: 'IPv6', endpoints: [{ addresses: ['fd00::5'], nodeName: 'n3', zone: 'z1' }] });
    assert.deepEqual(flat(await next(n + 1)), ['10.0.0.1 same-node/shop/web', '10.0.0.2 cross-zone/shop/web', 'fd00::5 same-zone/ops/api']);
    n = tables.length;
    api.updateEndpointSlice({ namespace: 'shop', name: 'web-1', service: 'web', endpoints: [{ addresses: ['10.0.0.2'], nodeName: 'n2', zone: 'z1' }] });
    assert.deepEqual(flat(await next(n + 1)), ['10.0.0.2 same-zone/shop/web', 'fd00::5 same-zone/ops/api']);
    n = tables.length;
    api.deleteEndpointSlice('ops', 'api-1');
    assert.deepEqual(flat(await next(n + 1)), ['10.0.0.2 same-zone/shop/web']);
    assert.equal(w.size, 1);
    assert.equal(w.zone, 'z1');
    assert.deepEqual(log.filter((l) => /level=(warn|error)/.test(l)), [], 'a healthy watch logs no warning');
    await w.stop();
    api.deleteEndpointSlice('shop', 'web-1');
  });

  it('a forbidden Node: peers on other nodes are "cluster", and the failure is logged once however often it is retried', async () => {
    api.forbidden.add('nodes');
    api.addEndpointSlice({ namespace: 'shop', name: 'db-1', service: 'db', endpoints: [{ addresses: ['10.0.1.1'], nodeName: 'n2', zone: 'z1' }, { addresses: ['10.0.1.2'], nodeName: NODE, zone: 'z1' }] });
    const log: string[] = [];
    const { w, next } = await watch(api, dir, log);
    stops.push(w);
    assert.deepEqual(flat(await next(1)), ['10.0.1.1 cluster/shop/db', '10.0.1.2 same-node/shop/db']);
    // Let it retry a few times (backoff capped at 100 ms here).
    for (const deadline = Date.now() + 5000; api.nodeRequests().filter((r) => r.status === 403).length < 5 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(api.nodeRequests().filter((r) => r.status === 403).length >= 5, 'retried');
    const warned = log.filter((l) => /level=warn/.test(l));
    assert.equal(warned.length, 1, warned.join('\n'));
    assert.match(warned[0], /kubernetes node zone lookup: the API server request failed; retrying with backoff/);
    await w.stop();
    api.forbidden.delete('nodes');
    api.deleteEndpointSlice('shop', 'db-1');
  });

  it('forbidden EndpointSlices are retried and counted; an unusable slice is skipped, the rest resolve', async () => {
    api.forbidden.add('endpointslices');
    const log: string[] = [];
    const { w, tables, next } = await watch(api, dir, log);
    stops.push(w);
    for (const deadline = Date.now() + 5000; w.stats.errors.http_status < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(w.stats.errors.http_status >= 2, `403s counted: ${JSON.stringify(w.stats.errors)}`);
    api.collection('endpointslices').extraListItems.push({ kind: 'EndpointSlice', metadata: { name: 'no-uid' } });
    api.addEndpointSlice({ namespace: 'shop', name: 'cache-1', service: 'cache', endpoints: [{ addresses: ['10.0.2.1', 'not-an-ip', '::1'], nodeName: NODE }] });
    api.forbidden.delete('endpointslices');
    // The node's zone answers before the slices do (an empty table first): wait for the list's.
    let t = await next(1);
    while (t.length === 0) t = await next(tables.length + 1);
    // 10.0.2.1 only: "not-an-ip" is no address, and ::1 is not of the slice's family (IPv4).
    assert.deepEqual(flat(t), ['10.0.2.1 same-node/shop/cache']);
    assert.ok(w.stats.errors.no_metadata >= 1, `the slice without a uid is counted: ${JSON.stringify(w.stats.errors)}`);
    await w.stop();
  });
});
