/**
 * Roll-up end to end (issue 18 §2): 300 pods over 5 namespaces and 15
 * workloads (a test API server and kubelet-shaped cgroups), each pod sending a
 * known number of bytes, counted by two agents at once and scraped by a real
 * Prometheus. For both, sums by namespace are exact, sums by namespace and
 * workload are exact for every workload that has a workload-level series, and
 * the total is exact: nothing of ours is in the flat overflow series.
 *
 * - --metrics-series-limit 20 with a 50% reserve gives 10 places to rolled-up
 *   series: the 5 namespaces and a few workloads fit, so both levels are
 *   exercised.
 * - Limit 60 gives 30: the workload level fits (15 series, with places left
 *   for namespaces), so nearly every workload's sum is exact.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { FakeKubeApi } from './helpers/fake-kube-api';
import { containerId } from './helpers/kube-shop';
import { HOPPER, SINK } from './helpers/python-peers';
import { PrometheusServer, PromResult } from './helpers/prometheus-server';
import { select } from './helpers/prom-text';
import { waitFor } from './helpers/cleanup';

const NODE_NAME = `tally-rollup-${randomBytes(3).toString('hex')}`;
const SENT = 'tally_tcp_sent_bytes_total';
const LIMIT = 20;
/**
 * A limit whose reserve holds every workload's series, and then some: the
 * agent counts every cgroup of the host, and tests running beside this one
 * make cgroups of their own, each a series that takes a rolled-up place once
 * the own places are full. 15 own places (fewer than a workload's 20 pods, so
 * every workload has pods to roll up) and 85 rolled-up ones (15 workloads and
 * 70 to spare; with 30, a CI run under load had 9 of 15 at the workload level).
 */
const ROOMY_LIMIT = 100;
const ROOMY_RESERVE = 85;
const NAMESPACES = 5;
const WORKLOADS_PER_NAMESPACE = 3;
const PODS = 300;
/** Namespaces of this run only: nothing else the agent sees can have them. */
const NS_PREFIX = `rollup-${randomBytes(2).toString('hex')}-`;

interface Pod {
  namespace: string;
  workload: string;
  name: string;
  bytes: number;
  cg?: TestCgroup;
}

// Pod i is in namespace i % 5, so the first pods the agent reads show every namespace.
const pods: Pod[] = Array.from({ length: PODS }, (_, i) => {
  const namespace = `${NS_PREFIX}${i % NAMESPACES}`;
  const workload = `w${Math.floor(i / NAMESPACES) % WORKLOADS_PER_NAMESPACE}`;
  return { namespace, workload, name: `${workload}-6b7c9d5f4-${i}`, bytes: 1000 + 7 * i };
});

const sumOf = (xs: Pod[]): number => xs.reduce((a, p) => a + p.bytes, 0);
const valueOf = (r: PromResult): number => Number(r.value![1]);

describe(`roll-up: --metrics-series-limit ${LIMIT}, ${PODS} pods, ${NAMESPACES} namespaces, ${NAMESPACES * WORKLOADS_PER_NAMESPACE} workloads, against Prometheus`, () => {
  let api: FakeKubeApi;
  let agent: AgentProcess;
  let roomy: AgentProcess;
  let prom: PrometheusServer;
  let dir: string;
  const made: TestCgroup[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-rollup-'));
    api = await new FakeKubeApi().start();
    const root = TestCgroup.create('rollup');
    made.push(root);
    const kubepods = root.child('kubepods');
    made.push(kubepods);
    const besteffort = kubepods.child('besteffort');
    made.push(besteffort);
    for (const ns of new Set(pods.map((p) => p.namespace))) {
      for (let w = 0; w < WORKLOADS_PER_NAMESPACE; w++) api.addOwned('replicasets', ns, `w${w}-6b7c9d5f4`, { kind: 'Deployment', name: `w${w}` });
    }
    for (const p of pods) {
      const uid = randomUUID();
      const id = containerId();
      api.addPod({ uid, namespace: p.namespace, name: p.name, node: NODE_NAME, owner: { kind: 'ReplicaSet', name: `${p.workload}-6b7c9d5f4` }, containers: [{ name: 'app', id }] });
      const podCg = besteffort.child(`pod${uid}`);
      made.push(podCg);
      p.cg = podCg.child(id);
      made.push(p.cg);
    }
    made.push(TestCgroup.create('sink'), TestCgroup.create('hopper'));
    const start = async (limit: number, reserve: number) => {
      const a = await AgentProcess.start([
        '--kubeconfig', api.writeKubeconfig(dir),
        '--node-name', NODE_NAME,
        '--metrics-label-filter', 'namespace,workload,pod',
        '--metrics-series-limit', String(limit),
        '--metrics-rollup-reserve', String(reserve),
      ]);
      await a.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === PODS, `the agent to list ${PODS} pods`, 30000);
      return a;
    };
    [agent, roomy] = await Promise.all([start(LIMIT, 50), start(ROOMY_LIMIT, ROOMY_RESERVE)]);
    prom = await PrometheusServer.start([`127.0.0.1:${agent.port}`, `127.0.0.1:${roomy.port}`]);
  });

  after(async () => {
    for (const cg of made.reverse()) cg.destroy();
    await prom?.stop();
    await agent?.stop();
    await roomy?.stop();
    await api?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The pods send their bytes once; both agents count them. */
  let sent: Promise<void> | undefined;
  const sendOnce = (): Promise<void> =>
    (sent ??= (async () => {
      const [sinkCg, hopCg] = made.slice(-2);
      const sink = sinkCg.spawn('/usr/bin/python3', ['-c', SINK]);
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const hop = hopCg.spawn('/usr/bin/python3', ['-c', HOPPER, port], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      hop.stdout!.on('data', (d) => (out += d));
      hop.stdin!.end(pods.map((p) => `${p.cg!.dir}/cgroup.procs ${p.bytes}\n`).join(''));
      await waitFor(() => out.includes('done'), 'the hopper', 60000);
    })());

  /** Checks one agent's series in Prometheus; returns its workload-level series' keys (namespace/workload). */
  async function checkAgent(a: AgentProcess, limit: number): Promise<string[]> {
    await sendOnce();
    const instance = `instance="127.0.0.1:${a.port}"`;
    const ours = `${SENT}{namespace=~"${NS_PREFIX}.*",${instance}}`;
    const total = sumOf(pods);
    await prom.queryUntil(`sum(${ours})`, (r) => r.length === 1 && valueOf(r[0]) === total, 30000);

    // Series: at most the limit, rolled-up ones included; one flat series at most.
    const own = (s: PromResult): string[] => Object.keys(s.metric).filter((k) => !['__name__', 'job', 'instance', 'overflow'].includes(k));
    const limited = (await prom.query(`${SENT}{${instance}}`)).filter((s) => own(s).length > 0 || s.metric.overflow !== 'true');
    assert.ok(limited.length <= limit, `${limited.length} series besides the flat one`);
    const rolled = await prom.query(`${ours}`).then((r) => r.filter((s) => s.metric.overflow === 'true'));
    assert.ok(rolled.length > 0, 'some of our pods rolled up');

    const byNamespace = await prom.query(`sum by (namespace) (${ours})`);
    assert.deepEqual(
      Object.fromEntries(byNamespace.map((r) => [r.metric.namespace, valueOf(r)])),
      Object.fromEntries([...new Set(pods.map((p) => p.namespace))].map((ns) => [ns, sumOf(pods.filter((p) => p.namespace === ns))])),
    );

    // A workload-level series keeps namespace and workload and drops pod.
    const workloadLevel = rolled.filter((s) => s.metric.workload !== undefined && s.metric.pod === undefined);
    const byWorkload = new Map((await prom.query(`sum by (namespace, workload) (${ours})`)).map((r) => [`${r.metric.namespace}/${r.metric.workload}`, valueOf(r)]));
    for (const s of workloadLevel) {
      const k = `${s.metric.namespace}/${s.metric.workload}`;
      assert.equal(byWorkload.get(k), sumOf(pods.filter((p) => `${p.namespace}/${p.workload}` === k)), k);
    }
    // The namespace level holds the rest: one series per namespace at most.
    const namespaceLevel = rolled.filter((s) => s.metric.workload === undefined);
    assert.equal(new Set(namespaceLevel.map((s) => s.metric.namespace)).size, namespaceLevel.length);

    // The agent's accounting matches the series of its own scrape, per level.
    const scrape = await a.scrape();
    const rolledUp = select(scrape, SENT).filter((s) => s.labels.overflow === 'true');
    const level = (l: string): number => select(scrape, 'tally_metric_rolled_up_series', { metric: SENT, level: l })[0]?.value;
    assert.equal(level('workload'), rolledUp.filter((s) => s.labels.workload !== undefined && s.labels.pod === undefined).length);
    assert.equal(level('namespace'), rolledUp.filter((s) => s.labels.namespace !== undefined && s.labels.workload === undefined).length);
    assert.equal(level('flat'), rolledUp.filter((s) => Object.keys(s.labels).length === 1).length);
    return workloadLevel.map((s) => `${s.metric.namespace}/${s.metric.workload}`);
  }

  it(`limit ${LIMIT}: sums by namespace and the total are exact, and by workload wherever the workload level has a series`, async (t) => {
    const workloads = await checkAgent(agent, LIMIT);
    // How many reach the workload level depends on which reads the pods' first bytes fall in: the
    // pods that fill the limit first take the places a workload would have (seen once in CI).
    t.diagnostic(`${workloads.length} workload-level series`);
  });

  it(`limit ${ROOMY_LIMIT}: the workload level fits, so nearly every workload's sum is exact`, async (t) => {
    const workloads = await checkAgent(roomy, ROOMY_LIMIT);
    // Each workload-level series is exact (checkAgent). A workload whose pod was once passed over to its
    // namespace's series (no rolled-up place free at that moment) never reaches the workload level, by design:
    // a workload series begun later would leave that pod's bytes out of the sum by workload. With 70 places to
    // spare that takes more cgroups of other tests than a CI run makes; one is allowed for.
    const all = [...new Set(pods.map((p) => `${p.namespace}/${p.workload}`))];
    t.diagnostic(`${workloads.length} of ${all.length} workloads at the workload level`);
    assert.ok(workloads.length >= all.length - 1, `${workloads.length} of ${all.length} workloads have a workload-level series: ${workloads.sort().join(', ')}`);
  });
});
