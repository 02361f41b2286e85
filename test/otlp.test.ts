/**
 * OTLP export end to end: the real agent, real BPF and traffic the test
 * makes, pushed to a receiver in the test that decodes each request with
 * the official OTLP protos. The receiver must find exactly the bytes sent,
 * as cumulative monotonic sums; the kernel histograms as exponential
 * histograms at scale 0 with exact buckets, zero count, sum and count; the
 * attributes and resource attributes; the same numbers as /metrics. Over
 * http/protobuf and gRPC, configured by flags or by the OTEL_EXPORTER_OTLP_*
 * variables, and with Kubernetes workloads. A collector that is down:
 * otlp-outage.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { KubeShop } from './helpers/kube-shop';
import { awaitPoint, lastPoint, OtlpReceiver, Point, pointsOf, GRPC_EXPORT_PATH } from './helpers/otlp-receiver';
import { select, Series, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { SINK, SIZED_SENDER } from './helpers/python-peers';
import { sleepLatencyPolicy } from './helpers/test-policies';
import { waitFor } from './helpers/cleanup';
import { VERSION } from '../src/util/version';

const NODE = fs.realpathSync(process.execPath);
const PYTHON = fs.realpathSync('/usr/bin/python3');
const DASH = fs.realpathSync('/bin/sh');
const CUMULATIVE = 'AGGREGATION_TEMPORALITY_CUMULATIVE';
const INTERVAL = '300ms';

/** The kernel bucket of a value: bucket k holds (2^(k-1), 2^k], bucket 0 holds 1. */
const kernelBucket = (v: number): number => (v <= 1 ? 0 : (v - 1).toString(2).length);

/**
 * The classic buckets /metrics shows for a histogram series, computed from
 * the OTLP exponential histogram: le=2^j counts zeros and every OTLP bucket
 * i (values in (2^i, 2^(i+1)]) with i + 1 <= j.
 */
function assertSameAsMetrics(p: Point, series: Series[], promName: string, labels: Record<string, string>): void {
  const exp = p.exp!;
  const buckets = select(series, `${promName}_bucket`, labels);
  assert.ok(buckets.length > 0, `${promName} has buckets on /metrics`);
  for (const b of buckets) {
    const want = b.labels.le === '+Inf' ? exp.count : exp.zeroCount + exp.bucketCounts.reduce((a, c, k) => (exp.offset + k + 1 <= Math.log2(Number(b.labels.le)) ? a + c : a), 0);
    assert.equal(b.value, want, `${promName} le=${b.labels.le}`);
  }
  assert.deepEqual(select(series, `${promName}_count`, labels).map((s) => s.value), [exp.count]);
  assert.deepEqual(select(series, `${promName}_sum`, labels).map((s) => s.value), [exp.sum]);
}

function writePolicies(dir: string): void {
  fs.writeFileSync(path.join(dir, 'write-sizes.yaml'), `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-write-sizes
spec:
  kprobes:
  - call: sys_write
    syscall: true
    return: true
    args:
    - {index: 0, type: fd}
    returnArg: {index: 0, type: long}
    selectors:
    - matchArgs:
      - {index: 0, operator: FileType, values: [regular]}
    metrics:
    - name: test_write_size_bytes
      help: Bytes each write to a regular file wrote.
      type: histogram
      unit: bytes
      value: return
`);
  fs.writeFileSync(path.join(dir, 'sleeps.yaml'), sleepLatencyPolicy('test-sleeps', 'test_sleep_seconds'));
}

const SIZED_WRITER = [
  'import os, sys',
  'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)',
  'for n in map(int, sys.argv[2:]):',
  '    assert os.write(fd, b"w" * n) == n',
  'os.close(fd)',
].join('\n');

describe('OTLP over http/protobuf', () => {
  let receiver: OtlpReceiver;
  let agent: AgentProcess;
  let dir: string;
  const cg: Record<string, TestCgroup> = {};
  let startedNs: bigint;

  before(async () => {
    startedNs = BigInt(Date.now()) * 1_000_000n;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-otlp-'));
    writePolicies(dir);
    for (const role of ['sender', 'receiver', 'sizes', 'sink', 'writer', 'sleeper']) cg[role] = TestCgroup.create(role);
    receiver = await OtlpReceiver.start('http/protobuf');
    agent = await AgentProcess.start(['--otlp-endpoint', receiver.endpoint, '--otlp-interval', INTERVAL, '--policy-dir', dir], {
      env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tally-test=hello%20world' },
    });
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    await agent?.stop();
    await receiver?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pushes exactly the bytes sent, as cumulative monotonic sums in By, with the same numbers as /metrics', async () => {
    const N = 1_000_000 + Math.floor(Math.random() * 100_000);
    const t = await transfer(cg.sender, cg.receiver, N);
    assert.equal(t.received, N);
    const senderAttrs = { 'tally.workload.name': cg.sender.name, 'process.executable.path': NODE };
    const sent = await awaitPoint(receiver, 'tally.tcp.sent', { 'tally.workload.name': cg.sender.name }, (p) => p.value === N, `${N} bytes sent over OTLP`);
    assert.deepEqual(
      { unit: sent.unit, kind: sent.kind, temporality: sent.temporality, monotonic: sent.monotonic, attributes: sent.attributes, value: sent.value },
      { unit: 'By', kind: 'sum', temporality: CUMULATIVE, monotonic: true, attributes: senderAttrs, value: N },
    );
    const rcvd = await awaitPoint(receiver, 'tally.tcp.received', { 'tally.workload.name': cg.receiver.name }, (p) => p.value === N, `${N} bytes received over OTLP`);
    assert.deepEqual(rcvd.attributes, { 'tally.workload.name': cg.receiver.name, 'process.executable.path': NODE });
    // Nothing leaks across.
    assert.equal(lastPoint(receiver.received, 'tally.tcp.received', { 'tally.workload.name': cg.sender.name }), undefined);
    assert.equal(lastPoint(receiver.received, 'tally.tcp.sent', { 'tally.workload.name': cg.receiver.name }), undefined);

    const series = await agent.scrape();
    assert.equal(sum(select(series, 'tally_tcp_sent_bytes_total', { workload: cg.sender.name })), N);
    assert.equal(sum(select(series, 'tally_tcp_received_bytes_total', { workload: cg.receiver.name })), N);

    // The series keeps its start time from export to export; it lies after the test began and before the point.
    const mark = receiver.received.length;
    const again = await awaitPoint(receiver, 'tally.tcp.sent', { 'tally.workload.name': cg.sender.name }, () => receiver.received.length > mark + 1, 'two more exports');
    assert.equal(again.value, N, 'cumulative: still N, not a delta');
    assert.equal(again.startNs, sent.startNs);
    assert.ok(again.timeNs > sent.timeNs);
    assert.ok(sent.startNs >= startedNs && sent.startNs < sent.timeNs, `start ${sent.startNs} between the test's start ${startedNs} and the point ${sent.timeNs}`);
  });

  it('the send-size histogram: scale 0, each send in its bucket, exact count and sum, the same as /metrics', async () => {
    const sink = cg.sink.spawn('/usr/bin/python3', ['-c', SINK]);
    try {
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const sizes = [1, 2, 3, 1024, 1024, 1025, 4096, 5000];
      const child = cg.sizes.spawn('/usr/bin/python3', ['-B', '-c', SIZED_SENDER, port, ...sizes.map(String)]);
      assert.equal((await waitExit(child, 20000)).code, 0);
      const total = sizes.reduce((a, b) => a + b, 0);
      const match = { 'tally.workload.name': cg.sizes.name };
      const p = await awaitPoint(receiver, 'tally.tcp.send_size', match, (x) => x.exp?.count === sizes.length, 'the send sizes over OTLP');
      assert.equal(p.kind, 'exponentialHistogram');
      assert.equal(p.temporality, CUMULATIVE);
      assert.equal(p.unit, 'By');
      assert.deepEqual(p.attributes, { 'tally.workload.name': cg.sizes.name, 'process.executable.path': PYTHON });
      // Index i holds (2^i, 2^(i+1)]: 1 -> -1, 2 -> 0, 3 -> 1, 1024 -> 9, 1025 -> 10, 4096 -> 11, 5000 -> 12.
      assert.deepEqual(p.exp, { count: 8, sum: total, scale: 0, zeroCount: 0, offset: -1, bucketCounts: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 1, 1], negativeCounts: [], hasMin: false });
      assertSameAsMetrics(p, await agent.scrape(), 'tally_tcp_send_size_bytes', { workload: cg.sizes.name });
    } finally {
      sink.kill();
    }
  });

  it('zeros go to the zero count (a user policy\'s histogram of write sizes)', async () => {
    const file = path.join(dir, 'written');
    const sizes = [0, 0, 1, 5, 4096];
    const child = cg.writer.spawn('/usr/bin/python3', ['-B', '-c', SIZED_WRITER, file, ...sizes.map(String)]);
    assert.equal((await waitExit(child, 20000)).code, 0);
    const p = await awaitPoint(receiver, 'test.write.size', { 'tally.workload.name': cg.writer.name, 'process.executable.path': PYTHON }, (x) => x.exp?.count === sizes.length, 'the write sizes over OTLP');
    // 1 -> index -1, 5 -> 2, 4096 -> 11.
    assert.deepEqual(p.exp, { count: 5, sum: 4102, scale: 0, zeroCount: 2, offset: -1, bucketCounts: [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1], negativeCounts: [], hasMin: false });
    assertSameAsMetrics(p, await agent.scrape(), 'test_write_size_bytes', { workload: cg.writer.name, binary: PYTHON });
    // The shell that moved itself into the cgroup wrote "PID\n" to cgroup.procs, a regular file.
    const pidLine = `${child.pid}\n`.length;
    const sh = lastPoint(receiver.received, 'test.write.size', { 'tally.workload.name': cg.writer.name, 'process.executable.path': DASH });
    assert.deepEqual(sh?.exp, { count: 1, sum: pidLine, scale: 0, zeroCount: 0, offset: kernelBucket(pidLine) - 1, bucketCounts: [1], negativeCounts: [], hasMin: false });
  });

  it('latencies (kernel units of 2^-30 s) become seconds: index shifted by -30, the sum exact', async () => {
    const child = cg.sleeper.spawn('/usr/bin/python3', ['-B', '-c', 'import time\nfor _ in range(3): time.sleep(0.01)']);
    assert.equal((await waitExit(child, 20000)).code, 0);
    const p = await awaitPoint(receiver, 'test.sleep', { 'tally.workload.name': cg.sleeper.name }, (x) => x.exp?.count === 3, 'the sleeps over OTLP');
    assert.equal(p.unit, 's');
    assert.equal(p.exp!.scale, 0);
    // Each sleep took at least 10 ms, in (2^-7, 2^-6] s or above: no bucket below index -7.
    assert.ok(p.exp!.offset >= -7 && p.exp!.offset < 0, `offset ${p.exp!.offset}`);
    assert.ok(p.exp!.sum >= 0.03 && p.exp!.sum < 1, `sum ${p.exp!.sum} s`);
    assertSameAsMetrics(p, await agent.scrape(), 'test_sleep_seconds', { workload: cg.sleeper.name });
  });

  it('the resource, the scope, the path, the headers from OTEL_EXPORTER_OTLP_HEADERS, and the export counters', async () => {
    // An export that can count an earlier one.
    await receiver.waitFor((rs) => pointsOf(rs[rs.length - 1], 'tally.otlp.exports').some((p) => p.value! >= 1), 'a second export');
    const last = receiver.latest()!;
    assert.equal(last.path, '/v1/metrics');
    assert.equal(last.headers['x-tally-test'], 'hello world');
    assert.match(last.headers['user-agent'], new RegExp(`^tally/${VERSION.replace(/\./g, '\\.')} OTel-OTLP-Exporter-JavaScript/`));
    assert.deepEqual(
      { name: last.resource['service.name'], version: last.resource['service.version'], host: last.resource['host.name'], node: last.resource['k8s.node.name'] },
      { name: 'tally', version: VERSION, host: os.hostname(), node: undefined },
      'no k8s.node.name outside Kubernetes',
    );
    assert.deepEqual(last.scopes, [{ name: 'tally', version: VERSION }]);
    const exports = pointsOf(last, 'tally.otlp.exports');
    assert.equal(exports.length, 1);
    assert.ok(exports[0].value! >= 1 && exports[0].monotonic);
    assert.deepEqual(pointsOf(last, 'tally.otlp.export_failures').map((x) => x.value), [0]);
    const s = await agent.scrape();
    assert.ok(select(s, 'tally_otlp_exports_total')[0].value >= exports[0].value!);
    assert.deepEqual(select(s, 'tally_otlp_export_failures_total').map((x) => x.value), [0]);
    assert.deepEqual(select(s, 'tally_otlp_dropped_points_total').map((x) => x.value), [0]);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: await agent.metricsText(), encoding: 'utf8' });
    assert.equal(check.status, 0, `promtool check metrics with the tally_otlp_* metrics:\n${check.stdout}${check.stderr}`);
    // Health gauges and the process metrics come along, under their OTLP names.
    assert.equal(pointsOf(last, 'tally.bpf.map_capacity', { map: 'tally_counters' })[0]?.kind, 'gauge');
    assert.equal(pointsOf(last, 'process.resident.memory')[0]?.unit, 'By');
    assert.deepEqual(pointsOf(last, 'process.cpu.user').map((x) => [x.kind, x.monotonic, x.unit]), [['sum', true, 's']]);
  });
});

describe('OTLP over gRPC, configured by the OTEL_EXPORTER_OTLP_* variables alone', () => {
  let receiver: OtlpReceiver;
  let agent: AgentProcess;
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    for (const role of ['sender', 'receiver']) cg[role] = TestCgroup.create(role);
    receiver = await OtlpReceiver.start('grpc');
    agent = await AgentProcess.start(['--otlp-interval', INTERVAL, '--metrics-label-filter', 'workload'], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-tenant=t1' },
    });
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    await agent?.stop();
    await receiver?.close();
  });

  it('pushes exact bytes and the send-size buckets, the same as /metrics, with the metadata from the variables', async () => {
    const N = 700_001;
    await transfer(cg.sender, cg.receiver, N);
    const sent = await awaitPoint(receiver, 'tally.tcp.sent', { 'tally.workload.name': cg.sender.name }, (p) => p.value === N, `${N} bytes over gRPC`);
    assert.deepEqual(sent.attributes, { 'tally.workload.name': cg.sender.name }, 'only the workload: the filter has nothing else');
    assert.equal(sent.temporality, CUMULATIVE);
    await awaitPoint(receiver, 'tally.tcp.received', { 'tally.workload.name': cg.receiver.name }, (p) => p.value === N, `${N} bytes received over gRPC`);
    const hist = lastPoint(receiver.received, 'tally.tcp.send_size', { 'tally.workload.name': cg.sender.name })!;
    const series = await agent.scrape();
    assert.equal(hist.exp!.sum, N, 'the sizes of the sends add up to the bytes sent');
    assertSameAsMetrics(hist, series, 'tally_tcp_send_size_bytes', { workload: cg.sender.name });
    assert.deepEqual(select(series, 'tally_tcp_sent_bytes_total', { workload: cg.sender.name }).map((s) => s.value), [N]);
    const last = receiver.latest()!;
    assert.equal(last.path, GRPC_EXPORT_PATH);
    assert.equal(last.headers['x-tenant'], 't1');
    assert.equal(last.resource['service.name'], 'tally');
    assert.match(agent.stderr, /msg="exporting over OTLP" endpoint=http:\/\/127\.0\.0\.1:\d+\/ protocol=grpc/);
  });
});

describe('OTLP with Kubernetes workloads', () => {
  const NODE_NAME = 'tally-otlp-node';
  let shop: KubeShop | undefined;
  let agent: AgentProcess;
  let receiver: OtlpReceiver;
  let dir: string;
  let webCg: TestCgroup;
  let dbCg: TestCgroup;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-otlp-kube-'));
    shop = await KubeShop.start('otlpkube', NODE_NAME);
    webCg = shop.web.cg;
    dbCg = shop.db.cg;
    receiver = await OtlpReceiver.start('http/protobuf');
    agent = await AgentProcess.start([
      '--kubeconfig', shop.api.writeKubeconfig(dir),
      '--node-name', NODE_NAME,
      '--metrics-label-filter', 'namespace,workload,pod,container,binary',
      '--otlp-endpoint', receiver.endpoint,
      '--otlp-interval', INTERVAL,
    ]);
    await waitFor(() => /msg="watching the pods of this node"/.test(agent.stderr), 'the agent to watch pods');
  });
  after(async () => {
    shop?.destroyCgroups();
    await agent?.stop();
    await receiver?.close();
    await shop?.api.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names each workload by its kind (k8s.deployment.name, k8s.statefulset.name), with namespace, pod, container and node', async () => {
    await agent.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 2, 'both pods listed', 20000);
    const N = 654_321;
    await transfer(webCg, dbCg, N);
    const sent = await awaitPoint(receiver, 'tally.tcp.sent', { 'k8s.pod.name': shop!.web.name }, (p) => p.value === N, 'web\'s bytes over OTLP');
    assert.deepEqual(sent.attributes, { 'k8s.namespace.name': 'shop', 'k8s.deployment.name': 'web', 'k8s.pod.name': shop!.web.name, 'k8s.container.name': 'app', 'process.executable.path': NODE });
    const rcvd = await awaitPoint(receiver, 'tally.tcp.received', { 'k8s.pod.name': shop!.db.name }, (p) => p.value === N, 'db\'s bytes over OTLP');
    assert.deepEqual(rcvd.attributes, { 'k8s.namespace.name': 'shop', 'k8s.statefulset.name': 'db', 'k8s.pod.name': shop!.db.name, 'k8s.container.name': 'postgres', 'process.executable.path': NODE });
    assert.equal(receiver.latest()!.resource['k8s.node.name'], NODE_NAME);
    assert.deepEqual(select(await agent.scrape(), 'tally_tcp_sent_bytes_total', { pod: shop!.web.name }).map((s) => s.value), [N]);
  });
});
