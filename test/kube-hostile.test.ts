/**
 * The real agent against an API server (or proxy) that sends what it should
 * not: watch events without metadata (the shapes that used to exit the agent
 * with code 1), lines that are not JSON, unknown event types, ERROR events.
 * Throughout, the agent keeps serving and counts exact bytes from a pod's
 * cgroup under the pod's labels, and counts every skipped event by reason.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AgentProcess } from './helpers/agent-process';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { KubeShop, ShopPod } from './helpers/kube-shop';
import { select, Series } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { waitFor } from './helpers/cleanup';

const NODE_NAME = 'tally-hostile-node';
const SENT = 'tally_tcp_sent_bytes_total';
const errorsOf = (s: Series[]): Record<string, number> =>
  Object.fromEntries(select(s, 'tally_kube_watch_errors_total').filter((x) => x.value > 0).map((x) => [x.labels.reason, x.value]));

describe('a hostile API server', () => {
  let shop: KubeShop | undefined;
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let dir: string;
  let web: ShopPod;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-hostile-'));
    shop = await KubeShop.start('khost', NODE_NAME);
    ({ api, web } = shop);
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod',
      '--builtin-policies', 'tcp-bytes',
    ]);
    await agent.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 2, 'the agent to list both pods');
    await waitFor(() => api.openWatches === 1, 'the agent\'s watch');
  });

  after(async () => {
    shop?.destroyCgroups();
    await agent?.stop();
    await shop?.api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('malformed events are skipped and counted; bytes stay exact; the watch goes on', async () => {
    const labels = { namespace: 'shop', workload: 'web', pod: web.name };
    const N1 = 1_234_567;
    api.sendRaw('{"type":"ADDED","object":null}');
    await transfer(web.cg, shop!.db.cg, N1);
    api.sendRaw('{"type":"ADDED","object":{}}');
    api.sendRaw('{"type":"DELETED","object":{"kind":"Pod"}}');
    api.sendRaw('{"type":"MODIFIED","object":{"metadata":{"uid":"x"}}}');
    api.sendRaw('not json at all');
    api.sendRaw('{"type":"SHOUTED","object":{}}');
    const N2 = 765_432;
    await transfer(web.cg, shop!.db.cg, N2);

    // A pod added after all that still arrives: the same watch is alive.
    const late = { uid: randomUUID(), namespace: 'shop', name: 'late-0', node: NODE_NAME };
    api.addPod(late);
    const s = await agent.scrapeUntil((x) => select(x, 'tally_kube_pods')[0]?.value === 3, 'the pod added after the bad events');
    assert.equal(agent.child.exitCode, null, 'the agent is running');
    assert.deepEqual(select(s, SENT, labels).map((x) => x.value), [N1 + N2]);
    assert.deepEqual(errorsOf(s), { no_object: 1, no_metadata: 3, invalid_json: 1, unknown_type: 1 });
    assert.equal(api.watchRequests().length, 1, 'one watch all along');
    assert.match(agent.stderr, /level=warn msg="kubernetes pod watch: skipped or retrying \(tally_kube_watch_errors_total\)" reason=no_object/);
  });

  it('ERROR events: 410 relists at once, another relists after backoff; counting goes on', async () => {
    const labels = { namespace: 'shop', workload: 'web', pod: web.name };
    const before = select(await agent.scrape(), SENT, labels)[0].value;
    const lists = api.listRequests().length;
    api.sendError(410, 'Expired', 'too old resource version');
    await waitFor(() => api.listRequests().length === lists + 1 && api.openWatches === 1, 'a relist and a new watch after 410');
    api.sendError(500, 'InternalError', 'etcdserver: leader changed');
    await waitFor(() => api.listRequests().length === lists + 2 && api.openWatches === 1, 'a relist and a new watch after the ERROR event');
    const N = 54_321;
    await transfer(web.cg, shop!.db.cg, N);
    const s = await agent.scrape();
    assert.deepEqual(select(s, SENT, labels).map((x) => x.value), [before + N]);
    const errors = errorsOf(s);
    assert.deepEqual([errors.expired, errors.error_event], [1, 1]);
    assert.equal(select(s, 'tally_kube_pods')[0].value, 3, 'the relists changed nothing');
    const res = await fetch(agent.url('/readyz'));
    assert.equal(res.status, 200);
  });

  it('counts every request it made in tally_kube_requests_total, as the API server saw them', async () => {
    const sum = (s: Series[], match: Record<string, string>): number => select(s, 'tally_kube_requests_total', match).reduce((n, x) => n + x.value, 0);
    // A watch is counted once answered, a moment after the server has seen it.
    const s = await agent.scrapeUntil((x) => sum(x, { verb: 'watch' }) === api.watchRequests().length, 'the agent to count its open watch');
    assert.deepEqual(
      { list: sum(s, { verb: 'list', resource: 'pods' }), watch: sum(s, { verb: 'watch', resource: 'pods' }), get: sum(s, { verb: 'get', resource: 'replicasets' }) },
      { list: api.listRequests().length, watch: api.watchRequests().length, get: api.ownerRequests().length },
    );
    assert.equal(sum(s, {}), api.requests.length, 'no other request');
    assert.deepEqual([...new Set(select(s, 'tally_kube_requests_total').map((x) => x.labels.code))], ['200'], 'every one answered 200 (ERROR events come inside a watch)');
    // The web pod's ReplicaSet, looked up once for all the relists since; db-0's StatefulSet needs no lookup.
    assert.equal(api.ownerRequests().length, 1);
    assert.deepEqual(
      ['tally_cache_misses_total', 'tally_cache_entries', 'tally_cache_capacity'].map((m) => select(s, m, { cache: 'kube_owners' })[0]?.value),
      [1, 1, 4096],
    );
  });
});
