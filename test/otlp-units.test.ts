/**
 * The OTLP building blocks, table by table: names (every documented metric
 * survives the Collector's Prometheus naming unchanged), kernel buckets to
 * exponential buckets, labels to attributes, start times, classic histograms,
 * and the push reader's guarantees against a collector that fails or hangs.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { MeterProvider, type CollectionResult, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { emptyResource } from '@opentelemetry/resources';
import { ValueType } from '@opentelemetry/api';
import { otlpName, prometheusName, PromKind } from '../src/exporters/otlp/names';
import { exponentialHistogram } from '../src/exporters/otlp/exponential';
import { seriesAttributes, workloadKinds } from '../src/exporters/otlp/attributes';
import { SeriesMemory } from '../src/exporters/otlp/series-memory';
import { explicitHistograms } from '../src/exporters/otlp/registry-metrics';
import { ExportOutcome, PushReader } from '../src/exporters/otlp/push-reader';
import { FreshAfterFailure } from '../src/exporters/otlp/exporter';
import { BUCKET_SUM, BUCKET_ZERO, LATENCY_UNIT_LOG2 } from '../src/bpf/layout';
import { CATALOG } from '../src/metrics/catalog';
import { builtinPolicyMetrics } from '../src/tools/metrics-doc';
import { registerProcessMetrics } from '../src/health/process-metrics';

describe('OTLP names', () => {
  const cases: Array<[string, PromKind, string, string]> = [
    ['tally_tcp_sent_bytes_total', 'counter', 'tally.tcp.sent', 'By'],
    ['tally_tcp_send_size_bytes', 'histogram', 'tally.tcp.send_size', 'By'],
    ['tally_tcp_retransmits_total', 'counter', 'tally.tcp.retransmits', ''],
    ['tally_bpf_map_entries', 'gauge', 'tally.bpf.map_entries', ''],
    ['tally_bpf_map_read_seconds', 'gauge', 'tally.bpf.map_read', 's'],
    ['tally_otlp_dropped_points_total', 'counter', 'tally.otlp.dropped_points', ''],
    ['nodejs_heap_size_total_bytes', 'gauge', 'nodejs.heap.size_total', 'By'],
    ['my_latency_seconds', 'histogram', 'my.latency', 's'],
    // The unit word earlier in the name would swallow the suffix: it stays in the name.
    ['tally_bytes_copied_bytes_total', 'counter', 'tally.bytes.copied_bytes', 'By'],
  ];
  for (const [prom, kind, name, unit] of cases) {
    it(`${prom} -> ${name} (${unit || 'no unit'})`, () => assert.deepEqual(otlpName(prom, kind), { name, unit }));
  }

  it('every metric in docs/metrics.md comes back to its Prometheus name through the Collector\'s naming', async () => {
    const reg = new Registry();
    registerProcessMetrics(reg);
    const all: Array<[string, PromKind]> = [
      ...CATALOG.map((m): [string, PromKind] => [m.name, m.type]),
      ...(await builtinPolicyMetrics()).map((m): [string, PromKind] => [m.name, m.type]),
      ...(await reg.getMetricsAsJSON()).map((m): [string, PromKind] => [m.name, String(m.type) as PromKind]),
    ];
    assert.ok(all.length > 50);
    for (const [prom, kind] of all) {
      const o = otlpName(prom, kind);
      assert.equal(prometheusName(o.name, o.unit, kind), prom, `${prom} -> ${o.name} (${o.unit})`);
      if (kind === 'counter') assert.doesNotMatch(o.name, /_total$/, prom);
    }
  });

  it('prometheusName follows the Collector: unit word appended unless present, total last for counters', () => {
    assert.equal(prometheusName('http.server.request.duration', 's', 'histogram'), 'http_server_request_duration_seconds');
    assert.equal(prometheusName('system.network.packets', '{packet}', 'counter'), 'system_network_packets_total');
    assert.equal(prometheusName('a.total.b', 'By', 'counter'), 'a_b_bytes_total');
  });
});

describe('kernel buckets as an exponential histogram at scale 0', () => {
  const b = (entries: Array<[number, number]>): Map<number, number> => new Map(entries);
  it('bucket k (values in (2^(k-1), 2^k]) is index k-1; zeros are the zero count; count and sum exact', () => {
    // Values 0, 0, 1, 2, 3, 1024, 1024, 1025: buckets 0 (=1), 1 (2), 2 (3), 10 (1024 x2), 11 (1025).
    const h = exponentialHistogram(b([[BUCKET_ZERO, 2], [0, 1], [1, 1], [2, 1], [10, 2], [11, 1], [BUCKET_SUM, 3079]]));
    assert.deepEqual(h, {
      count: 8,
      sum: 3079,
      scale: 0,
      zeroCount: 2,
      positive: { offset: -1, bucketCounts: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1] },
      negative: { offset: 0, bucketCounts: [] },
    });
  });
  it('offset starts at the lowest non-empty bucket; empty kernel buckets at the edges are left out', () => {
    const h = exponentialHistogram(b([[12, 0], [13, 4], [15, 1], [20, 0], [BUCKET_SUM, 40000]]));
    assert.deepEqual(h.positive, { offset: 12, bucketCounts: [4, 0, 1] });
    assert.equal(h.count, 5);
  });
  it('latencies (unitLog2 -30): index shifts by -30 and the sum becomes seconds, exactly', () => {
    // 10 ms is 10737418 units of 2^-30 s: kernel bucket 24 ((2^23, 2^24] units), OTLP index -7 ((2^-7, 2^-6] s).
    const h = exponentialHistogram(b([[24, 3], [BUCKET_SUM, 3 * 10737418]]), LATENCY_UNIT_LOG2);
    assert.deepEqual(h.positive, { offset: -7, bucketCounts: [3] });
    assert.equal(h.sum, (3 * 10737418) / 2 ** 30);
    assert.ok(2 ** h.positive.offset < 0.01 && 0.01 <= 2 ** (h.positive.offset + 1));
  });
  it('nothing observed yet', () => {
    assert.deepEqual(exponentialHistogram(b([])), { count: 0, sum: 0, scale: 0, zeroCount: 0, positive: { offset: 0, bucketCounts: [] }, negative: { offset: 0, bucketCounts: [] } });
    assert.equal(exponentialHistogram(b([[BUCKET_ZERO, 5], [BUCKET_SUM, 0]])).count, 5);
  });
});

describe('labels as attributes', () => {
  const pods = [
    { namespace: 'shop', workload: 'web', workloadKind: 'Deployment', resolved: true },
    { namespace: 'shop', workload: 'db', workloadKind: 'StatefulSet', resolved: true },
    { namespace: 'shop', workload: 'ro', workloadKind: 'Rollout', resolved: true },
    { namespace: 'shop', workload: 'solo', workloadKind: 'Pod', resolved: true },
    { namespace: 'jobs', workload: 'nightly', workloadKind: 'CronJob', resolved: true },
    { namespace: 'jobs', workload: 'twin', workloadKind: 'Deployment', resolved: true },
    { namespace: 'jobs', workload: 'twin', workloadKind: 'StatefulSet', resolved: true },
    { namespace: 'x', workload: 'pending', workloadKind: 'Pod', resolved: false },
    { namespace: 'other', workload: 'web', workloadKind: 'DaemonSet', resolved: true },
  ];
  const kinds = workloadKinds(pods, true);
  const cases: Array<[string, Record<string, string>, Record<string, unknown>]> = [
    ['a Deployment', { namespace: 'shop', workload: 'web', pod: 'web-7d-x', container: 'app', binary: '/app' },
      { 'k8s.namespace.name': 'shop', 'k8s.deployment.name': 'web', 'k8s.pod.name': 'web-7d-x', 'k8s.container.name': 'app', 'process.executable.path': '/app' }],
    ['the same name in another namespace is another kind', { namespace: 'other', workload: 'web' }, { 'k8s.namespace.name': 'other', 'k8s.daemonset.name': 'web' }],
    ['a StatefulSet', { namespace: 'shop', workload: 'db' }, { 'k8s.namespace.name': 'shop', 'k8s.statefulset.name': 'db' }],
    ['a CronJob', { namespace: 'jobs', workload: 'nightly' }, { 'k8s.namespace.name': 'jobs', 'k8s.cronjob.name': 'nightly' }],
    ['a bare pod is its own workload', { namespace: 'shop', workload: 'solo', pod: 'solo' }, { 'k8s.namespace.name': 'shop', 'k8s.pod.name': 'solo' }],
    ['a kind without a convention', { namespace: 'shop', workload: 'ro' }, { 'k8s.namespace.name': 'shop', 'tally.workload.name': 'ro', 'tally.workload.kind': 'Rollout' }],
    ['a name two kinds share', { namespace: 'jobs', workload: 'twin' }, { 'k8s.namespace.name': 'jobs', 'tally.workload.name': 'twin' }],
    ['a pod not resolved yet', { namespace: 'x', workload: 'pending' }, { 'k8s.namespace.name': 'x', 'tally.workload.name': 'pending' }],
    ['a host cgroup (no namespace under a filter that has it)', { workload: 'web', binary: '/usr/sbin/nginx' }, { 'tally.workload.name': 'web', 'process.executable.path': '/usr/sbin/nginx' }],
    ['the overflow series', { overflow: 'true' }, { 'otel.metric.overflow': true }],
    ['a series rolled up to its workload keeps its workload\'s kind', { namespace: 'shop', workload: 'web', overflow: 'true' }, { 'k8s.namespace.name': 'shop', 'k8s.deployment.name': 'web', 'otel.metric.overflow': true }],
    ['a series rolled up to its namespace', { namespace: 'shop', overflow: 'true' }, { 'k8s.namespace.name': 'shop', 'otel.metric.overflow': true }],
    ['a policy label keeps its name', { workload: 'nginx.service', status: 'error' }, { 'tally.workload.name': 'nginx.service', status: 'error' }],
  ];
  for (const [what, labels, attrs] of cases) it(what, () => assert.deepEqual(seriesAttributes(labels, kinds), attrs));

  it('without namespace in the filter, a workload name is looked up alone', () => {
    const byName = workloadKinds(pods, false);
    assert.deepEqual(seriesAttributes({ workload: 'db' }, byName), { 'k8s.statefulset.name': 'db' });
    assert.deepEqual(seriesAttributes({ workload: 'web' }, byName), { 'tally.workload.name': 'web' }, 'web is a Deployment and a DaemonSet');
  });
  it('outside Kubernetes every workload is tally.workload.name', () => {
    assert.deepEqual(seriesAttributes({ workload: 'web' }), { 'tally.workload.name': 'web' });
  });
});

describe('series memory', () => {
  it('first collection starts at agent start, later series at the previous collection; a series that left and came back starts anew', () => {
    const m = new SeriesMemory([100, 0]);
    let made = 0;
    const attrs = () => ({ n: ++made });
    assert.deepEqual(m.entry('c', 'a', attrs), { start: [100, 0], attributes: { n: 1 } });
    m.commit([110, 0]);
    assert.deepEqual(m.entry('c', 'a', attrs), { start: [100, 0], attributes: { n: 1 } }, 'same start, attributes computed once');
    assert.deepEqual(m.entry('c', 'b', attrs), { start: [110, 0], attributes: { n: 2 } });
    m.commit([120, 0]);
    assert.deepEqual(m.entry('c', 'b', attrs).start, [110, 0]);
    m.commit([130, 0]); // a was absent from this collection
    assert.deepEqual(m.entry('c', 'a', attrs), { start: [130, 0], attributes: { n: 3 } });
    m.commit([140, 0]);
    assert.equal(m.size, 1);
  });
});

describe('classic histograms from the registry', () => {
  it('cumulative _bucket{le} samples become per-bucket counts with explicit bounds, per label set', () => {
    const name = 'h_seconds';
    const v = (metricName: string, labels: Record<string, string | number>, value: number) => ({ metricName, labels, value });
    const points = explicitHistograms(name, [
      v(`${name}_bucket`, { kind: 'a', le: 0.1 }, 1),
      v(`${name}_bucket`, { kind: 'a', le: 1 }, 4),
      v(`${name}_bucket`, { kind: 'a', le: '+Inf' }, 6),
      v(`${name}_sum`, { kind: 'a' }, 9.5),
      v(`${name}_count`, { kind: 'a' }, 6),
      v(`${name}_bucket`, { kind: 'b', le: 0.1 }, 0),
      v(`${name}_bucket`, { kind: 'b', le: 1 }, 0),
      v(`${name}_bucket`, { kind: 'b', le: '+Inf' }, 2),
      v(`${name}_sum`, { kind: 'b' }, 7),
      v(`${name}_count`, { kind: 'b' }, 2),
    ], [1, 0], [2, 0]);
    assert.deepEqual(points.map((p) => [p.attributes, p.value]), [
      [{ kind: 'a' }, { buckets: { boundaries: [0.1, 1], counts: [1, 3, 2] }, sum: 9.5, count: 6 }],
      [{ kind: 'b' }, { buckets: { boundaries: [0.1, 1], counts: [0, 0, 2] }, sum: 7, count: 2 }],
    ]);
  });
});

/** An exporter the test answers by hand. */
class HandExporter implements PushMetricExporter {
  readonly calls: Array<{ metrics: ResourceMetrics; answer: (r: ExportResult) => void }> = [];
  shutdowns = 0;
  export(metrics: ResourceMetrics, answer: (r: ExportResult) => void): void {
    this.calls.push({ metrics, answer });
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

/** A producer of `n` points, counting its collections. */
function producer(n: number): { collect(): Promise<CollectionResult>; collections: number } {
  const p = {
    collections: 0,
    async collect(): Promise<CollectionResult> {
      p.collections++;
      const dataPoints = Array.from({ length: n }, (_, i) => ({ startTime: [0, 0] as [number, number], endTime: [1, 0] as [number, number], attributes: { i }, value: i }));
      return {
        resourceMetrics: {
          resource: emptyResource(),
          scopeMetrics: [{ scope: { name: 't' }, metrics: [{ descriptor: { name: 'm', description: '', unit: '', valueType: ValueType.INT }, aggregationTemporality: 1, dataPointType: 3, isMonotonic: true, dataPoints }] }],
        },
        errors: [],
      };
    },
  };
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('push reader', () => {
  function setup(opts: { intervalMs: number; timeoutMs: number; points?: number }) {
    const exporter = new HandExporter();
    const outcomes: ExportOutcome[] = [];
    const prod = producer(opts.points ?? 3);
    const reader = new PushReader({ exporter, producer: prod, intervalMs: opts.intervalMs, timeoutMs: opts.timeoutMs, onOutcome: (o) => outcomes.push(o) });
    const provider = new MeterProvider({ readers: [reader] });
    return { exporter, outcomes, prod, reader, provider };
  }

  it('exports on the interval, one at a time: a tick while the exporter has not answered exports nothing', async () => {
    const { exporter, outcomes, provider } = setup({ intervalMs: 30, timeoutMs: 60_000 });
    try {
      await until(() => exporter.calls.length === 1, 'the first export');
      await sleep(200); // several intervals, the first export still unanswered
      assert.equal(exporter.calls.length, 1, 'no second export while the first is in flight');
      exporter.calls[0].answer({ code: ExportResultCode.SUCCESS });
      await until(() => exporter.calls.length === 2, 'the next export');
      assert.deepEqual(outcomes.map((o) => [o.ok, o.points]), [[true, 3]]);
      exporter.calls[1].answer({ code: ExportResultCode.SUCCESS });
    } finally {
      await provider.shutdown({ timeoutMillis: 1000 }).catch(() => undefined);
    }
  });

  it('gives an unanswered export up after its timeout (plus a second), counts its points dropped, and still waits for the answer before the next', async () => {
    const { exporter, outcomes, provider } = setup({ intervalMs: 20, timeoutMs: 100, points: 5 });
    try {
      await until(() => exporter.calls.length === 1, 'the first export');
      const t0 = Date.now();
      await until(() => outcomes.length === 1, 'the guard to give up', 3000);
      const waited = Date.now() - t0;
      assert.ok(waited >= 1000 && waited < 2500, `gave up after ${waited} ms`);
      assert.deepEqual(outcomes.map((o) => [o.ok, o.points]), [[false, 5]]);
      assert.match(outcomes[0].error!.message, /did not answer within 100 ms/);
      await sleep(150);
      assert.equal(exporter.calls.length, 1, 'still one in flight: the exporter never answered');
      exporter.calls[0].answer({ code: ExportResultCode.FAILED, error: new Error('late') });
      await until(() => exporter.calls.length === 2, 'an export once the first one answered');
      exporter.calls[1].answer({ code: ExportResultCode.SUCCESS });
      await until(() => outcomes.length === 2, 'the second outcome');
      assert.deepEqual(outcomes.map((o) => o.ok), [false, true], 'the late answer of a given-up export is not counted again');
    } finally {
      await provider.shutdown({ timeoutMillis: 1000 }).catch(() => undefined);
    }
  });

  it('backs off after failures: one interval, two, four, four; back to one after a success', async () => {
    const { exporter, provider } = setup({ intervalMs: 80, timeoutMs: 60_000 });
    const at: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        await until(() => exporter.calls.length === i + 1, `export ${i + 1}`);
        at.push(Date.now());
        exporter.calls[i].answer(i < 4 ? { code: ExportResultCode.FAILED, error: new Error('refused') } : { code: ExportResultCode.SUCCESS });
      }
    } finally {
      await provider.shutdown({ timeoutMillis: 1000 }).catch(() => undefined);
    }
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    // After failure 1: 1 interval; 2: 2; 3: 4; 4: 4 (the cap); after the success: 1.
    const want = [80, 160, 320, 320, 80];
    gaps.forEach((g, i) => assert.ok(g >= want[i] - 5 && g < want[i] + 70, `gap ${i + 1} was ${g} ms, want about ${want[i]}: ${gaps}`));
  });

  it('shutdown exports once more and shuts the exporter down', async () => {
    const { exporter, outcomes, provider, prod } = setup({ intervalMs: 60_000, timeoutMs: 1000 });
    const done = provider.shutdown({ timeoutMillis: 2000 });
    await until(() => exporter.calls.length === 1, 'the last export');
    exporter.calls[0].answer({ code: ExportResultCode.SUCCESS });
    await done;
    assert.equal(prod.collections, 1);
    assert.deepEqual(outcomes.map((o) => o.ok), [true]);
    assert.equal(exporter.shutdowns, 1);
  });

  it('an outcome handler that throws stops nothing: the next export still goes out', async () => {
    const exporter = new HandExporter();
    let told = 0;
    const reader = new PushReader({ exporter, producer: producer(2), intervalMs: 20, timeoutMs: 1000, onOutcome: () => {
      told++;
      throw new Error('a bug in counting');
    } });
    const provider = new MeterProvider({ readers: [reader] });
    try {
      await until(() => exporter.calls.length === 1, 'the first export');
      exporter.calls[0].answer({ code: ExportResultCode.SUCCESS });
      await until(() => exporter.calls.length === 2, 'the export after the handler threw');
      assert.equal(told, 1);
      exporter.calls[1].answer({ code: ExportResultCode.SUCCESS });
    } finally {
      await provider.shutdown({ timeoutMillis: 1000 }).catch(() => undefined);
    }
  });

  it('a collection with no points sends nothing and counts nothing', async () => {
    const { exporter, outcomes, provider } = setup({ intervalMs: 20, timeoutMs: 1000, points: 0 });
    await sleep(120);
    await provider.shutdown({ timeoutMillis: 1000 });
    assert.equal(exporter.calls.length, 0);
    assert.deepEqual(outcomes, []);
  });
});

describe('FreshAfterFailure (gRPC: a new channel after a failed export)', () => {
  it('answers every export once, even when making the new exporter throws; the old one is kept', () => {
    const made: HandExporter[] = [];
    let failMaking = false;
    const fresh = new FreshAfterFailure(() => {
      if (failMaking) throw new Error('cannot create a channel');
      const e = new HandExporter();
      made.push(e);
      return e;
    });
    const answers: ExportResult[] = [];
    const rm = { resource: emptyResource(), scopeMetrics: [] };
    failMaking = true;
    fresh.export(rm, (r) => answers.push(r));
    assert.doesNotThrow(() => made[0].calls[0].answer({ code: ExportResultCode.FAILED, error: new Error('unavailable') }));
    assert.deepEqual(answers.map((a) => a.code), [ExportResultCode.FAILED]);
    assert.equal(made[0].shutdowns, 0, 'the only exporter is kept');
    failMaking = false;
    fresh.export(rm, (r) => answers.push(r));
    assert.equal(made[0].calls.length, 2, 'the next export goes out on the old exporter');
    made[0].calls[1].answer({ code: ExportResultCode.FAILED, error: new Error('unavailable') });
    assert.equal(made.length, 2, 'now a new one is made');
    assert.equal(made[0].shutdowns, 1);
    assert.equal(answers.length, 2);
  });
});
