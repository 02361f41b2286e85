/**
 * --metrics-pod-labels end to end: the real agent and its BPF programs
 * counting exact bytes from two kubelet-shaped pod cgroups, a test API
 * server whose pods carry labels, and a pod label that changes mid-test
 * (a MODIFIED event). The kernel keeps counting under label-set ids: the
 * change rewrites the pod cgroup's label set in tally_cgroup_label_sets and
 * reloads no program. Bytes sent before the change stay under the old
 * label, bytes after it go under the new one, exactly, in /metrics (text
 * and OpenMetrics) and over OTLP; the old series ends after the TTL.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, scaled } from './helpers/agent-process';
import { KubeShop, ShopPod } from './helpers/kube-shop';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { kernelLabelSets } from './helpers/kernel-maps';
import { OtlpReceiver, awaitPoint, pointsOf } from './helpers/otlp-receiver';
import { select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';

const NODE_NAME = 'tally-test-node-podlabels';
const SENT = 'tally_tcp_sent_bytes_total';
const RECEIVED = 'tally_tcp_received_bytes_total';
// Long enough for the bytes after the change to be sent and scraped (two node
// processes start) while the old series still shows, on a loaded machine.
const TTL_MS = 10000;

describe('pod labels on series (--metrics-pod-labels)', () => {
  let shop: KubeShop | undefined;
  let api: FakeKubeApi;
  let agent: AgentProcess | undefined;
  let receiver: OtlpReceiver | undefined;
  let dir: string;
  let web: ShopPod;
  let db: ShopPod;
  const N1 = 1_234_567;
  const N2 = 765_432;

  const labelsOf = (o: Record<string, unknown>): Record<string, string> => (o.metadata as { labels: Record<string, string> }).labels;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-podlabels-'));
    shop = await KubeShop.start('podlabels', NODE_NAME);
    ({ api, web, db } = shop);
    // Labels as a chart would set them; pod-template-hash is not allowlisted.
    api.modifyPod(web.uid, (o) => Object.assign(labelsOf(o), { 'app.kubernetes.io/name': 'web', team: 'checkout' }));
    api.modifyPod(db.uid, (o) => Object.assign(labelsOf(o), { 'app.kubernetes.io/name': 'postgres', team: 'data' }));
    receiver = await OtlpReceiver.start('http/protobuf');
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod',
      // status is also a label of tally_process_exits_total: that metric keeps its own.
      '--metrics-pod-labels', 'app.kubernetes.io/name,team,status',
      '--metrics-series-ttl', `${TTL_MS}ms`,
      // The agent counts every cgroup of the host: suites running beside this one
      // (300 pods of the roll-up test) must not roll the web pod's series up.
      '--metrics-series-limit', '1000000',
      '--otlp-endpoint', receiver.endpoint,
      '--otlp-interval', '1s',
    ]);
    await agent.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 2, 'the agent to list both pods', 20000);
  });

  after(async () => {
    shop?.destroyCgroups();
    await agent?.stop();
    await receiver?.close();
    await shop?.api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('joins the allowlisted pod labels onto exact bytes, sanitised into label names', async () => {
    const t = await transfer(web.cg, db.cg, N1);
    assert.equal(t.received, N1);
    const s = await agent!.scrape();
    assert.deepEqual(select(s, SENT, { pod: web.name }).map((x) => [x.labels, x.value]), [
      [{ namespace: 'shop', workload: 'web', pod: web.name, app_kubernetes_io_name: 'web', team: 'checkout' }, N1],
    ]);
    assert.deepEqual(select(s, RECEIVED, { pod: db.name }).map((x) => [x.labels, x.value]), [
      [{ namespace: 'shop', workload: 'db', pod: db.name, app_kubernetes_io_name: 'postgres', team: 'data' }, N1],
    ]);
    // A pod label named like a metric's own label: said once, at the metric's definition, with the fix.
    assert.match(agent!.stderr, /level=warn msg="a metric has labels of its own named like pod labels; on its series its own label wins, and the pod label is not shown" metric=tally_process_exits_total labels=status fix="rename the pod label in --metrics-pod-labels, e.g. status=pod_status"/);
    const otlp = await awaitPoint(receiver!, 'tally.tcp.sent', { 'k8s.pod.name': web.name }, (p) => p.value === N1, `${N1} bytes sent over OTLP`);
    assert.equal(otlp.attributes['k8s.pod.label.team'], 'checkout');
    assert.equal(otlp.attributes['k8s.pod.label.app.kubernetes.io/name'], 'web');
  });

  it('a pod label that changes: old bytes stay under the old value, new bytes go under the new one, no program reloaded', async () => {
    const programs = agent!.programIds().sort();
    const pid = agent!.child.pid!;
    const webLabels = { namespace: 'shop', workload: 'web', pod: web.name, app_kubernetes_io_name: 'web' };
    // The web cgroup counts under a label set by now (fold-in runs every TTL/4).
    await agent!.scrapeUntil(() => kernelLabelSets(pid).has(web.cg.id), 'the web cgroup to be mapped to its label set', 30000);
    const before = kernelLabelSets(pid).get(web.cg.id);
    const changedAt = Date.now();
    api.modifyPod(web.uid, (o) => (labelsOf(o).team = 'payments'));
    const relabelled = await agent!.scrapeUntil((s) => select(s, 'tally_relabelled_cgroups_total')[0]?.value === 1, 'the agent to relabel the web cgroup', 30000);
    // The old series stopped where it was; the new labels have counted nothing yet.
    assert.deepEqual(select(relabelled, SENT, { pod: web.name }).map((x) => [x.labels, x.value]), [[{ ...webLabels, team: 'checkout' }, N1]]);
    const after = kernelLabelSets(pid).get(web.cg.id);
    assert.ok(after !== undefined && after !== before, `the web cgroup moved to another label set (${before} -> ${after})`);

    const t = await transfer(web.cg, db.cg, N2);
    assert.equal(t.received, N2);
    const s = await agent!.scrape();
    const elapsed = Date.now() - changedAt;
    // The old series shows N1 until the TTL has passed since the change (then it may be gone): never more, never less.
    const old = select(s, SENT, { pod: web.name, team: 'checkout' });
    if (elapsed < TTL_MS) assert.equal(old.length, 1, `the old series went ${elapsed} ms after the change, before the TTL`);
    assert.deepEqual(old.map((x) => [x.labels, x.value]), old.length ? [[{ ...webLabels, team: 'checkout' }, N1]] : []);
    assert.deepEqual(select(s, SENT, { pod: web.name, team: 'payments' }).map((x) => [x.labels, x.value]), [[{ ...webLabels, team: 'payments' }, N2]]);
    // Per label value, and in all: exact.
    assert.equal(sum(select(s, SENT, { namespace: 'shop', team: 'payments' })), N2);
    if (old.length) {
      assert.equal(sum(select(s, SENT, { namespace: 'shop', team: 'checkout' })), N1);
      assert.equal(sum(select(s, SENT, { pod: web.name })), N1 + N2);
    }
    // The other pod's labels did not change: one series, every byte.
    assert.deepEqual(select(s, RECEIVED, { pod: db.name }).map((x) => [x.labels.team, x.value]), [['data', N1 + N2]]);
    assert.deepEqual(agent!.programIds().sort(), programs, 'the same BPF programs, none reloaded');

    // OpenMetrics carries the same labels.
    const om = await (await fetch(agent!.url('/metrics'), { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })).text();
    assert.match(om, new RegExp(`^${SENT}\\{[^}]*pod="${web.name}"[^}]*team="payments"[^}]*\\} ${N2}$`, 'm'));
    // So does the protobuf format (its label pairs are length-prefixed strings).
    const res = await fetch(agent!.url('/metrics'), { headers: { accept: 'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited' } });
    assert.match(res.headers.get('content-type') ?? '', /^application\/vnd\.google\.protobuf/);
    const pb = Buffer.from(await res.arrayBuffer());
    for (const text of ['app_kubernetes_io_name', 'team', 'payments']) assert.ok(pb.includes(Buffer.from(text)), `the protobuf exposition has "${text}"`);
    // And OTLP: an export with the new series holds N2 there, and N1 under the old value while it lasts.
    const match = { 'k8s.pod.name': web.name, 'k8s.pod.label.team': 'payments' };
    await awaitPoint(receiver!, 'tally.tcp.sent', match, (p) => p.value === N2, `${N2} bytes under team=payments over OTLP`);
    const exported = receiver!.received.filter((r) => pointsOf(r, 'tally.tcp.sent', match).length === 1).at(-1)!;
    assert.deepEqual(pointsOf(exported, 'tally.tcp.sent', match).map((p) => p.value), [N2]);
    const oldPoints = pointsOf(exported, 'tally.tcp.sent', { 'k8s.pod.name': web.name, 'k8s.pod.label.team': 'checkout' }).map((p) => p.value);
    assert.ok(oldPoints.length === 0 || (oldPoints.length === 1 && oldPoints[0] === N1), `the old series over OTLP: ${oldPoints}`);

    // The old series ends once the TTL has passed since the change, not before; the new one stays.
    let now = await agent!.scrape();
    while (select(now, SENT, { pod: web.name, team: 'checkout' }).length > 0) {
      assert.ok(Date.now() - changedAt < scaled(TTL_MS + 30000), 'the old series outlived the TTL');
      await new Promise((r) => setTimeout(r, 100));
      now = await agent!.scrape();
    }
    assert.ok(Date.now() - changedAt >= TTL_MS, `the old series went ${Date.now() - changedAt} ms after the change, before the TTL`);
    assert.deepEqual(select(now, SENT, { pod: web.name }).map((x) => [x.labels.team, x.value]), [['payments', N2]]);
  });
});
