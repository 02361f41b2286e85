/**
 * The test API server's EndpointSlices and Nodes, over HTTP as a client sees
 * them: a list with its resourceVersion, a watch from it that streams ADDED,
 * MODIFIED and DELETED, 410 Gone for history it no longer has, a Node GET
 * (404 for an unknown one), and 403 for a forbidden resource.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { endpointSliceObject, EndpointSliceSpec, FakeKubeApi } from './helpers/fake-kube-api';
import { waitFor } from './helpers/cleanup';

const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';

/** Runs `body` against a fresh server, closed afterwards whatever happens. */
async function withApi(body: (api: FakeKubeApi) => Promise<void>): Promise<void> {
  const api = await new FakeKubeApi().start();
  try {
    await body(api);
  } finally {
    await api.close();
  }
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** An open watch: its status, and the lines it has streamed so far, parsed. */
class Watch {
  readonly lines: unknown[] = [];
  ended = false;
  private readonly abort = new AbortController();
  status = 0;

  static async open(url: string): Promise<Watch> {
    const w = new Watch();
    const res = await fetch(url, { signal: w.abort.signal });
    w.status = res.status;
    void w.pump(res);
    return w;
  }

  private async pump(res: Response): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          this.lines.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
      }
    } catch {
      /* aborted, or the server went away */
    }
    this.ended = true;
  }

  async next(n: number): Promise<unknown[]> {
    await waitFor(() => this.lines.length >= n, `${n} watch lines (have ${this.lines.length})`, 5000);
    return this.lines.slice(0, n);
  }

  close(): void {
    this.abort.abort();
  }
}

const web: EndpointSliceSpec = {
  namespace: 'shop',
  name: 'web-abc12',
  service: 'web',
  endpoints: [
    { addresses: ['10.0.1.5'], nodeName: 'node-a', zone: 'zone-1' },
    { addresses: ['10.0.2.7'], nodeName: 'node-b', ready: false },
  ],
};
const db: EndpointSliceSpec = { namespace: 'data', name: 'db-x9z8y', service: 'db', addressType: 'IPv6', endpoints: [{ addresses: ['fd00::5'] }] };

/** The object the server holds: endpointSliceObject's, with the resourceVersion it was written at. */
function stored(s: EndpointSliceSpec, rv: number): unknown {
  const o = endpointSliceObject(s);
  o.metadata.resourceVersion = String(rv);
  return JSON.parse(JSON.stringify(o));
}

describe('fake kube API: EndpointSlices', () => {
  it('endpointSliceObject has the real shape, with a uid stable per namespace/name', () => {
    const o = endpointSliceObject(web);
    assert.match(o.metadata.uid!, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual(JSON.parse(JSON.stringify(o)), {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'web-abc12',
        namespace: 'shop',
        uid: o.metadata.uid,
        labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['10.0.1.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-a', zone: 'zone-1' },
        { addresses: ['10.0.2.7'], conditions: { ready: false, serving: false, terminating: false }, nodeName: 'node-b' },
      ],
      ports: [],
    });
    assert.equal(endpointSliceObject({ ...web, endpoints: [] }).metadata.uid, o.metadata.uid);
    assert.notEqual(endpointSliceObject({ ...web, namespace: 'other' }).metadata.uid, o.metadata.uid);
    assert.equal(endpointSliceObject(db).addressType, 'IPv6');
  });

  it('a list answers the items and the resourceVersion, on the counter pods share', async () => {
    await withApi(async (api) => {
      assert.deepEqual(await getJson(api.url + SLICES), {
        status: 200,
        body: { kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: '100' }, items: [] },
      });
      api.addEndpointSlice(web); // 101
      api.addPod({ uid: 'p1', namespace: 'shop', name: 'web-0', node: 'node-a' }); // 102
      api.addEndpointSlice(db); // 103
      assert.equal(api.currentRv, 103);
      assert.deepEqual(await getJson(`${api.url}${SLICES}?limit=500`), {
        status: 200,
        body: { kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: '103' }, items: [stored(web, 101), stored(db, 103)] },
      });
      const pods = (await getJson(`${api.url}/api/v1/pods`)).body as { metadata: { resourceVersion: string }; items: unknown[] };
      assert.equal(pods.metadata.resourceVersion, '103');
      assert.equal(pods.items.length, 1, 'no EndpointSlice among the pods');

      assert.deepEqual(api.endpointSliceLists().map((q) => q.toString()), ['', 'limit=500']);
      assert.deepEqual(api.endpointSliceWatches(), []);
      assert.equal(api.listRequests().length, 1);
      assert.deepEqual(api.ownerRequests(), [], 'EndpointSlice requests are no owner lookups');
      await waitFor(() => api.requests.every((r) => r.status !== undefined), 'every answer to be recorded', 5000);
      assert.deepEqual(api.requests.filter((r) => r.path === SLICES).map((r) => [r.status, r.listRv]), [[200, '100'], [200, '103']]);
    });
  });

  it('a watch from the list\'s resourceVersion streams ADDED, MODIFIED and DELETED, and no pods', async () => {
    await withApi(async (api) => {
      api.addEndpointSlice(web); // 101
      const list = (await getJson(api.url + SLICES)).body as { metadata: { resourceVersion: string } };
      assert.equal(list.metadata.resourceVersion, '101');
      const w = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=101&allowWatchBookmarks=true`);
      try {
        assert.equal(w.status, 200);
        await waitFor(() => api.openEndpointSliceWatches === 1, 'the watch to be open');
        assert.equal(api.openWatches, 0, 'no pod watch');

        const moved: EndpointSliceSpec = { ...web, endpoints: [{ addresses: ['10.0.3.9'], nodeName: 'node-c' }] };
        api.addEndpointSlice(db); // 102
        api.addPod({ uid: 'p1', namespace: 'shop', name: 'web-0', node: 'node-a' }); // 103, not for this watch
        api.updateEndpointSlice(moved); // 104
        api.deleteEndpointSlice('data', 'db-x9z8y'); // 105
        assert.deepEqual(await w.next(3), [
          { type: 'ADDED', object: stored(db, 102) },
          { type: 'MODIFIED', object: stored(moved, 104) },
          { type: 'DELETED', object: stored(db, 105) },
        ]);

        const bookmarkAt = api.currentRv;
        api.collection('endpointslices').bookmark();
        assert.deepEqual((await w.next(4))[3], { type: 'BOOKMARK', object: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(bookmarkAt) } } });
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(w.lines.length, 4, 'nothing else: no pod event');
      } finally {
        w.close();
      }

      // From a resourceVersion in the middle: only what came after it.
      const late = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=103`);
      try {
        assert.deepEqual(await late.next(2), [
          { type: 'MODIFIED', object: stored({ ...web, endpoints: [{ addresses: ['10.0.3.9'], nodeName: 'node-c' }] }, 104) },
          { type: 'DELETED', object: stored(db, 105) },
        ]);
      } finally {
        late.close();
      }
      assert.deepEqual(api.endpointSliceWatches().map((q) => q.get('resourceVersion')), ['101', '103']);
      assert.deepEqual((await getJson(api.url + SLICES)).body, {
        kind: 'EndpointSliceList',
        apiVersion: 'discovery.k8s.io/v1',
        metadata: { resourceVersion: '105' },
        items: [stored({ ...web, endpoints: [{ addresses: ['10.0.3.9'], nodeName: 'node-c' }] }, 104)],
      });
    });
  });

  it('a watch ends after its timeoutSeconds', async () => {
    await withApi(async (api) => {
      const w = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=100&timeoutSeconds=1`);
      try {
        const t0 = Date.now();
        await waitFor(() => w.ended, 'the watch to end', 5000);
        assert.ok(Date.now() - t0 >= 800, `ended after ${Date.now() - t0} ms`);
        assert.deepEqual(w.lines, []);
        assert.equal(api.openEndpointSliceWatches, 0);
      } finally {
        w.close();
      }
    });
  });

  it('a watch from before the retained history gets 410 Gone (maxHistory, and a restart)', async () => {
    await withApi(async (api) => {
      const expired = { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } };
      api.maxHistory = 2;
      for (let i = 0; i < 3; i++) api.addEndpointSlice({ namespace: 'shop', name: `s${i}`, service: 'web', endpoints: [] }); // 101..103: 101 is dropped

      for (const from of ['100', '', '0']) {
        const gone = await Watch.open(`${api.url}${SLICES}?watch=true${from ? `&resourceVersion=${from}` : ''}`);
        try {
          assert.equal(gone.status, 200);
          await waitFor(() => gone.ended, `the watch from "${from}" to end`, 5000);
          assert.deepEqual(gone.lines, [expired]);
        } finally {
          gone.close();
        }
      }
      const kept = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=101`);
      try {
        assert.deepEqual((await kept.next(2)).map((l) => (l as { object: { metadata: { name: string } } }).object.metadata.name), ['s1', 's2']);
        assert.equal(kept.ended, false);
        assert.equal(api.openEndpointSliceWatches, 1);

        // Pod events fill the pods' history, not the EndpointSlices'.
        for (let i = 0; i < 3; i++) api.addPod({ uid: `p${i}`, namespace: 'shop', name: `p${i}`, node: 'node-a' }); // 104..106
        await api.restart(50);
        await waitFor(() => kept.ended, 'the restart to end the watch', 5000);
        assert.equal(api.openEndpointSliceWatches, 0);
      } finally {
        kept.close();
      }
      const afterRestart = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=105`);
      try {
        await waitFor(() => afterRestart.ended, 'the watch from before the restart to end', 5000);
        assert.deepEqual(afterRestart.lines, [expired]);
      } finally {
        afterRestart.close();
      }
      const fromNow = await Watch.open(`${api.url}${SLICES}?watch=true&resourceVersion=${api.currentRv}`);
      try {
        api.deleteEndpointSlice('shop', 's0');
        assert.deepEqual(await fromNow.next(1), [{ type: 'DELETED', object: stored({ namespace: 'shop', name: 's0', service: 'web', endpoints: [] }, 107) }]);
      } finally {
        fromNow.close();
      }
    });
  });

  it('a forbidden EndpointSlice list or watch gets 403, and is allowed again once the RBAC is back', async () => {
    await withApi(async (api) => {
      api.addEndpointSlice(web);
      api.forbidden.add('endpointslices');
      const forbidden = (verb: string): unknown => ({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:tally:tally" cannot ${verb} resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope`,
        reason: 'Forbidden',
        details: { group: 'discovery.k8s.io', kind: 'endpointslices' },
        code: 403,
      });
      assert.deepEqual(await getJson(api.url + SLICES), { status: 403, body: forbidden('list') });
      assert.deepEqual(await getJson(`${api.url}${SLICES}?watch=true&resourceVersion=101`), { status: 403, body: forbidden('watch') });
      assert.equal(api.openEndpointSliceWatches, 0);
      assert.equal((await getJson(`${api.url}/api/v1/pods`)).status, 200, 'pods are still allowed');

      api.forbidden.delete('endpointslices');
      assert.equal((await getJson(api.url + SLICES)).status, 200);
      await waitFor(() => api.requests.every((r) => r.status !== undefined), 'every answer to be recorded', 5000);
      assert.deepEqual(api.requests.filter((r) => r.path === SLICES).map((r) => r.status), [403, 403, 200]);

      api.forbidden.add('pods');
      const pods = await getJson(`${api.url}/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a`);
      assert.equal(pods.status, 403);
      assert.equal((pods.body as { reason: string }).reason, 'Forbidden');
      assert.equal((pods.body as { message: string }).message, 'pods is forbidden: User "system:serviceaccount:tally:tally" cannot list resource "pods" in API group "" at the cluster scope');
    });
  });
});

describe('fake kube API: Nodes', () => {
  it('GET answers the Node with its labels, 404 for an unknown one, 403 when forbidden', async () => {
    await withApi(async (api) => {
      const labels = { 'topology.kubernetes.io/zone': 'zone-1', 'kubernetes.io/hostname': 'node-a' };
      api.setNode({ name: 'node-a', labels });
      const a = await getJson(`${api.url}/api/v1/nodes/node-a`);
      assert.equal(a.status, 200);
      const uid = (a.body as { metadata: { uid: string } }).metadata.uid;
      assert.match(uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.deepEqual(a.body, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', uid, labels, resourceVersion: '101' } });

      api.setNode({ name: 'node-a', labels: { 'topology.kubernetes.io/zone': 'zone-2' } });
      assert.deepEqual((await getJson(`${api.url}/api/v1/nodes/node-a`)).body, {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-a', uid, labels: { 'topology.kubernetes.io/zone': 'zone-2' }, resourceVersion: '102' },
      });

      assert.deepEqual(await getJson(`${api.url}/api/v1/nodes/node-z`), {
        status: 404,
        body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'nodes "node-z" not found', reason: 'NotFound', details: { name: 'node-z', kind: 'nodes' }, code: 404 },
      });

      api.forbidden.add('nodes');
      assert.deepEqual(await getJson(`${api.url}/api/v1/nodes/node-a`), {
        status: 403,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'nodes "node-a" is forbidden: User "system:serviceaccount:tally:tally" cannot get resource "nodes" in API group "" at the cluster scope',
          reason: 'Forbidden',
          details: { name: 'node-a', kind: 'nodes' },
          code: 403,
        },
      });
      api.forbidden.delete('nodes');
      api.deleteNode('node-a');
      assert.equal((await getJson(`${api.url}/api/v1/nodes/node-a`)).status, 404);

      await waitFor(() => api.requests.every((r) => r.status !== undefined), 'every answer to be recorded', 5000);
      assert.deepEqual(api.nodeRequests().map((r) => [r.path, r.status]), [
        ['/api/v1/nodes/node-a', 200],
        ['/api/v1/nodes/node-a', 200],
        ['/api/v1/nodes/node-z', 404],
        ['/api/v1/nodes/node-a', 403],
        ['/api/v1/nodes/node-a', 404],
      ]);
      assert.deepEqual(api.ownerRequests(), []);
    });
  });
});
