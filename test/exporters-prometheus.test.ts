/**
 * tally as a real Prometheus sees it. Two Debian Prometheus 2.42 servers
 * scrape one agent: one as shipped, which negotiates OpenMetrics, and one
 * with native histograms on, which negotiates protobuf. The traffic is the
 * test's own: sends of known sizes from one cgroup, sleeps of known length
 * in another.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { useScenario } from './helpers/scenario';
import { waitExit } from './helpers/agent-process';
import { PrometheusServer, PromResult } from './helpers/prometheus-server';
import { SINK, SIZED_SENDER, SLEEPER } from './helpers/python-peers';
import { sleepLatencyPolicy } from './helpers/test-policies';

const SIZES = [700, 700, 700, 1000, 3000];
const SLEEPS = [0.02, 0.02, 0.05];

const POLICY = sleepLatencyPolicy('sleep-latency', 'tally_test_sleep_seconds');

/** Schema-0 index of the bucket (2^(i-1), 2^i] holding v > 0. */
const indexOf = (v: number): number => Math.ceil(Math.log2(v));

function get(port: number, headers: Record<string, string>): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

const one = (r: PromResult[]): number => (r.length === 1 ? Number(r[0].value![1]) : NaN);

describe('a real Prometheus scraping tally', () => {
  const policyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-prom-policies-'));
  fs.writeFileSync(path.join(policyDir, 'sleep.yaml'), POLICY);
  const sc = useScenario(['--metrics-label-filter', 'workload', '--policy-dir', policyDir], ['sender', 'receiver', 'sleeper']);
  let classic: PrometheusServer | undefined;
  let nativeProm: PrometheusServer | undefined;
  /** Nanoseconds each sleep took, measured in user space around the call. */
  let took: number[] = [];

  before(async () => {
    const sink = sc.cg.receiver.spawn('/usr/bin/python3', ['-c', SINK]);
    try {
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const sender = sc.cg.sender.spawn('/usr/bin/python3', ['-c', SIZED_SENDER, port, ...SIZES.map(String)]);
      assert.equal((await waitExit(sender, 20000)).code, 0);
    } finally {
      sink.kill();
    }
    const sleeper = sc.cg.sleeper.spawn('/usr/bin/python3', ['-c', SLEEPER, ...SLEEPS.map(String)]);
    let out = '';
    sleeper.stdout!.on('data', (d) => (out += d));
    assert.equal((await waitExit(sleeper, 20000)).code, 0);
    took = JSON.parse(out);
    const target = [`127.0.0.1:${sc.agent.port}`];
    [classic, nativeProm] = await Promise.all([PrometheusServer.start(target), PrometheusServer.start(target, { features: ['native-histograms'] })]);
  });
  after(async () => {
    await Promise.all([classic?.stop(), nativeProm?.stop()]);
    fs.rmSync(policyDir, { recursive: true, force: true });
  });

  const sender = (): string => `workload="${sc.cg.sender.name}"`;
  const sleeper = (): string => `workload="${sc.cg.sleeper.name}"`;
  const total = SIZES.reduce((a, b) => a + b, 0);

  it('reads exactly the bytes sent, over OpenMetrics, and over protobuf', async () => {
    for (const prom of [classic!, nativeProm!]) {
      await prom.queryUntil(`tally_tcp_sent_bytes_total{${sender()}}`, (r) => one(r) === total);
      const t = await prom.targets();
      assert.deepEqual(t.map((x) => [x.health, x.lastError]), [['up', '']]);
    }
    // Each negotiated the format it prefers; tally counts scrapes by format.
    await classic!.queryUntil('tally_scrapes_total{format="openmetrics"}', (r) => one(r) > 0);
    await nativeProm!.queryUntil('tally_scrapes_total{format="protobuf"}', (r) => one(r) > 0);
  });

  it('classic histogram: exact _count and _sum, and histogram_quantile lands in the right bucket', async () => {
    await classic!.queryUntil(`tally_tcp_send_size_bytes_count{${sender()}}`, (r) => one(r) === SIZES.length);
    assert.equal(one(await classic!.query(`tally_tcp_send_size_bytes_sum{${sender()}}`)), total);
    // 3 of 5 sends are 700 bytes: the median is in (512, 1024]; the 0.9 quantile in (2048, 4096].
    const q = async (phi: number): Promise<number> => one(await classic!.query(`histogram_quantile(${phi}, sum by (le) (tally_tcp_send_size_bytes_bucket{${sender()}}))`));
    const median = await q(0.5);
    assert.ok(median > 512 && median <= 1024, `median ${median}`);
    const p90 = await q(0.9);
    assert.ok(p90 > 2048 && p90 <= 4096, `p90 ${p90}`);
  });

  it('native histogram: the kernel buckets at schema 0, bucket for bucket', async () => {
    const [r] = await nativeProm!.queryUntil(`tally_tcp_send_size_bytes{${sender()}}`, (x) => x.length === 1 && x[0].histogram !== undefined);
    const h = r.histogram![1];
    assert.equal(Number(h.count), SIZES.length);
    assert.equal(Number(h.sum), total);
    // Boundary rule 0: (lower, upper]. 700, 700, 700, 1000 in (512, 1024]; 3000 in (2048, 4096].
    assert.deepEqual(h.buckets, [
      [0, '512', '1024', '4'],
      [0, '2048', '4096', '1'],
    ]);
    const median = one(await nativeProm!.query(`histogram_quantile(0.5, tally_tcp_send_size_bytes{${sender()}})`));
    assert.ok(median > 512 && median <= 1024, `median ${median}`);
  });

  it('latency histogram: bucket bounds are powers of two in seconds, each sleep in its bucket', async () => {
    const [r] = await nativeProm!.queryUntil(`tally_test_sleep_seconds{${sleeper()}}`, (x) => x.length === 1 && Number(x[0].histogram?.[1].count) === SLEEPS.length);
    const h = r.histogram![1];
    // The kernel times the syscall, inside what user space timed around it, and no
    // sleep ends early: each lies between what was asked and what was measured.
    const asked = SLEEPS.reduce((a, b) => a + b, 0);
    const measured = took.reduce((a, b) => a + b, 0) / 1e9;
    assert.ok(Number(h.sum) >= asked && Number(h.sum) <= measured, `sum ${h.sum} not in [${asked}, ${measured}]`);
    for (const [rule, lo, hi] of h.buckets!) {
      assert.equal(rule, 0);
      assert.ok(Number.isInteger(Math.log2(Number(hi))), `upper bound ${hi} is a power of two`);
      assert.equal(Number(hi), 2 * Number(lo));
    }
    // Each observation lies in a bucket between the one of what a sleep asked
    // for and the one of what it took (the same bucket unless the sleep ran long).
    const got = h.buckets!.flatMap(([, , hi, n]) => Array<number>(Number(n)).fill(Math.log2(Number(hi))));
    assert.equal(got.length, SLEEPS.length);
    for (const idx of got) {
      const fits = SLEEPS.some((d, i) => idx >= indexOf(d) && idx <= indexOf(took[i] / 1e9));
      assert.ok(fits, `bucket (2^${idx - 1}, 2^${idx}] s fits no sleep; asked ${SLEEPS}, took ${took} ns`);
    }
  });

  it('promtool check metrics finds nothing wrong with the live output', async () => {
    const { body } = await get(sc.agent.port, {});
    const r = spawnSync('promtool', ['check', 'metrics'], { input: body });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
  });

  it('negotiates the format from Accept and gzips when asked', async () => {
    const type = async (accept: string): Promise<string> => String((await get(sc.agent.port, { accept })).headers['content-type']);
    assert.match(await type(''), /^text\/plain; version=0\.0\.4/);
    assert.match(await type('application/openmetrics-text; version=1.0.0'), /^application\/openmetrics-text; version=1\.0\.0/);
    assert.match(await type('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3'), /^application\/vnd\.google\.protobuf/);
    // A higher q wins; an unsupported version falls through to the next choice.
    assert.match(await type('application/openmetrics-text;version=2.0.0,text/plain;q=0.1'), /^text\/plain/);
    assert.match(await type('application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,application/openmetrics-text;q=0.9'), /^application\/openmetrics-text/);

    const om = (await get(sc.agent.port, { accept: 'application/openmetrics-text; version=1.0.0' })).body.toString();
    assert.ok(om.endsWith('# EOF\n'));
    assert.match(om, /^# TYPE tally_tcp_sent_bytes counter$/m);
    assert.match(om, new RegExp(`^tally_tcp_sent_bytes_total\\{workload="${sc.cg.sender.name}"\\} ${total}$`, 'm'));

    const gz = await get(sc.agent.port, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    const text = zlib.gunzipSync(gz.body).toString();
    assert.match(text, new RegExp(`^tally_tcp_sent_bytes_total\\{workload="${sc.cg.sender.name}"\\} ${total}$`, 'm'));
    const plain = await get(sc.agent.port, { 'accept-encoding': 'gzip;q=0, identity' });
    assert.equal(plain.headers['content-encoding'], undefined);
  });
});
