/**
 * matchNamespaces (Kubernetes namespaces) and TracingPolicyNamespaced,
 * evaluated in the kernel, against exec counts the test makes itself in pod
 * cgroups of two namespaces, served by a fake API server.
 *
 * Two paths, both exact:
 * - a pod the agent knows: its cgroup is mapped with its namespace, and the
 *   kernel decides each event;
 * - a pod whose first execs run before the API server lists it: the kernel
 *   counts them pending (raw cgroup, the selectors that wait), and user space
 *   decides once the namespace is known.
 * A second agent with --metrics-label-filter binary (the kernel keys nothing
 * by cgroup) must decide the same. A pod whose cgroup is gone before the API
 * server lists it keeps its counts, resolved from where the kernel said the
 * cgroup was at its removal.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { FakeKubeApi, PodSpec } from './helpers/fake-kube-api';
import { kernelCounters } from './helpers/kernel-maps';
import { select, Series } from './helpers/prom-text';

const NODE_NAME = 'tally-ns-node';
const IN_SHOP = 'tally_test_shop_execs_total';
const NOT_SHOP = 'tally_test_not_shop_execs_total';
const EVENTS = 'tally_policy_events_total';
const KEY_NS_PENDING = 4;

const containerId = (): string => randomBytes(32).toString('hex');

/** Selector 0 admits a binary anywhere, selector 1 namespace shop: only selector 1 waits on the namespace. */
const policies = (special: string): Record<string, string> => ({
  'in-shop.yaml': `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: in-shop
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    selectors:
    - matchBinaries:
      - operator: In
        values: [${special}]
    - matchNamespaces:
      - operator: In
        values: [shop, staging]
      - operator: NotIn
        values: [staging]
    metrics:
    - name: ${IN_SHOP}
      help: Execs in pods of namespace shop.
      type: counter
`,
  'not-shop.yaml': `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: not-shop
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    selectors:
    - matchNamespaces:
      - operator: NotIn
        values: [shop]
    metrics:
    - name: ${NOT_SHOP}
      help: Execs anywhere but in pods of namespace shop.
      type: counter
`,
  'jobs.yaml': `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: jobs-execs
  namespace: jobs
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
`,
});

interface Pod {
  spec: PodSpec;
  cg: TestCgroup;
}

describe('matchNamespaces and TracingPolicyNamespaced, in the kernel', () => {
  let api: FakeKubeApi;
  let byPod: AgentProcess;
  let byBinary: AgentProcess;
  let dir: string;
  let root: TestCgroup;
  const made: TestCgroup[] = [];
  let bin: string;
  /** Another copy of true: in-shop counts it in any namespace. */
  let special: string;

  const pod = (namespace: string, name: string): Pod => {
    const spec: PodSpec = { uid: randomUUID(), namespace, name, node: NODE_NAME, containers: [{ name: 'main', id: containerId() }] };
    let cg = root;
    for (const n of ['kubepods', 'besteffort', `pod${spec.uid}`, spec.containers![0].id]) {
      const existing = made.find((m) => m.dir === path.join(cg.dir, n));
      cg = existing ?? cg.child(n);
      if (!existing) made.push(cg);
    }
    return { spec, cg };
  };
  /** Runs a copy of true of the test's own n times in the pod: n execs of it, and one of the shell. */
  const execs = (p: Pod, n: number, what = bin): Promise<void> => p.cg.run('/bin/sh', ['-c', `i=0; while [ $i -lt ${n} ]; do ${what}; i=$((i + 1)); done`]);

  let web: Pod;
  let batch: Pod;
  let lateShop: Pod;
  let lateJobs: Pod;
  let gone: Pod;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ns-'));
    bin = path.join(dir, `true-${randomBytes(3).toString('hex')}`);
    fs.copyFileSync('/usr/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    special = path.join(dir, 'special-true');
    fs.copyFileSync('/usr/bin/true', special);
    fs.chmodSync(special, 0o755);
    const policyDir = path.join(dir, 'policies');
    fs.mkdirSync(policyDir);
    for (const [file, text] of Object.entries(policies(special))) fs.writeFileSync(path.join(policyDir, file), text);
    api = await new FakeKubeApi().start();
    root = TestCgroup.create('kns');
    web = pod('shop', 'web');
    batch = pod('jobs', 'batch');
    lateShop = pod('shop', 'late-web');
    lateJobs = pod('jobs', 'late-batch');
    gone = pod('shop', 'gone-web');
    api.addPod(web.spec);
    api.addPod(batch.spec);
    // A short TTL makes the agent sweep (fold in, map cgroups) every 2.5 s. Not shorter: gone-web's
    // cgroup is removed before its pod is listed, and once removed for a TTL its labels stop waiting
    // for the pod (a loaded machine can take seconds to deliver the watch event).
    const flags = ['--kubeconfig', api.writeKubeconfig(dir), '--node-name', NODE_NAME, '--policy-dir', policyDir, '--builtin-policies', 'none', '--metrics-series-ttl', '10s'];
    [byPod, byBinary] = await Promise.all([
      AgentProcess.start([...flags, '--metrics-label-filter', 'namespace,pod']),
      AgentProcess.start([...flags, '--metrics-label-filter', 'binary']),
    ]);
    for (const a of [byPod, byBinary]) {
      await a.scrapeUntil((s) => select(s, 'tally_kube_pods')[0]?.value === 2, 'the agent to list both pods');
      await a.scrapeUntil((s) => select(s, 'tally_policy_state', { state: 'ok' }).filter((x) => x.value === 1).length === 3, 'the three policies to load');
    }
  });

  after(async () => {
    await Promise.all([byPod?.stop(), byBinary?.stop()]);
    for (const cg of made.reverse()) cg.destroy();
    root?.destroy();
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts exactly the execs of pods the selectors admit, whether the pod was known first or not', async () => {
    await execs(web, 3);
    await execs(batch, 2);
    // Neither pod is listed yet: their cgroups cannot be mapped, so the kernel counts their execs pending.
    await execs(lateShop, 4);
    await execs(lateJobs, 5);
    await execs(lateJobs, 1, special); // selector 0 admits it: decided at once, nothing waits
    await execs(batch, 1, special);
    await execs(gone, 2);
    for (const a of [byPod, byBinary]) {
      const waiting = kernelCounters(a.child.pid!).filter((c) => (c.flags & KEY_NS_PENDING) !== 0);
      assert.ok(waiting.some((c) => c.cgroupId === lateShop.cg.id), 'late-web counted pending its namespace');
      assert.ok(waiting.some((c) => c.cgroupId === lateJobs.cg.id), 'late-batch counted pending its namespace');
    }
    // gone-web ends, and its cgroup with it, before the API server lists it.
    gone.cg.destroy();
    made.splice(made.indexOf(gone.cg), 1);
    api.addPod(lateShop.spec);
    api.addPod(lateJobs.spec);
    api.addPod(gone.spec);

    // Each pod: n execs of the copy of true and one of the shell.
    const pods = (s: Series[], name: string): Array<[string, number]> =>
      select(s, name)
        .filter((x) => x.labels.namespace !== undefined)
        .map((x): [string, number] => [`${x.labels.namespace}/${x.labels.pod}`, x.value])
        .sort();
    const all = (s: Series[]): boolean => pods(s, NOT_SHOP).length === 2 && pods(s, IN_SHOP).length === 5 && pods(s, EVENTS).length === 2;
    const s = await byPod.scrapeUntil(all, 'every pod\'s series', 30000).catch(async (e: Error) => {
      const last = await byPod.scrape();
      throw new Error(`${e.message}; last seen: ${JSON.stringify([IN_SHOP, NOT_SHOP, EVENTS].map((n) => pods(last, n)))}`);
    });
    // The special binary counts in jobs through selector 0; everything else of jobs waited on selector 1 and was dropped.
    assert.deepEqual(pods(s, IN_SHOP), [['jobs/batch', 1], ['jobs/late-batch', 1], ['shop/gone-web', 3], ['shop/late-web', 5], ['shop/web', 4]]);
    assert.deepEqual(pods(s, NOT_SHOP), [['jobs/batch', 5], ['jobs/late-batch', 8]]);
    assert.deepEqual(pods(s, EVENTS), [['jobs/batch', 5], ['jobs/late-batch', 8]]);
    // Each run's shell starts outside any pod, then moves in: NotIn counts those host execs, In does not.
    assert.ok(select(s, NOT_SHOP).some((x) => x.labels.namespace === undefined && x.value >= 7), 'host execs under NotIn');
    // Only pods of jobs count for the namespaced policy: processes outside pods do not.
    assert.deepEqual(select(s, EVENTS).filter((x) => x.labels.namespace !== 'jobs'), []);
    assert.deepEqual(select(s, IN_SHOP).filter((x) => x.labels.namespace === undefined), [], 'no host execs under In');

    // No cgroup in the key: the same decisions, summed over pods, for the test's own binary.
    const real = fs.realpathSync(bin);
    const mine = (x: Series[], name: string): number | undefined => select(x, name, { binary: real })[0]?.value;
    const b = await byBinary.scrapeUntil((x) => mine(x, IN_SHOP) === 3 + 4 + 2 && mine(x, NOT_SHOP) === 2 + 5 && mine(x, EVENTS) === 2 + 5, 'the binary agent\'s counts', 30000);
    assert.deepEqual([mine(b, IN_SHOP), mine(b, NOT_SHOP), mine(b, EVENTS)], [9, 7, 7]);
    assert.equal(select(b, IN_SHOP, { binary: fs.realpathSync(special) })[0]?.value, 2);

    // Sweeps map the late pods' cgroups, with their namespace, and fold the pending entries in.
    const late = [lateShop.cg.id, lateJobs.cg.id];
    const waitingFor = (a: AgentProcess): number => kernelCounters(a.child.pid!).filter((c) => (c.flags & KEY_NS_PENDING) !== 0 && late.includes(c.cgroupId)).length;
    for (let deadline = Date.now() + 30000; waitingFor(byPod) + waitingFor(byBinary) > 0; ) {
      if (Date.now() > deadline) throw new Error('the pending entries were not folded in within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // At least late-batch's wait on selector 1 of in-shop, and late-web's and gone-web's under not-shop and
    // jobs-execs, were dropped (other cgroups on the host may add theirs).
    const unmatched = (x: Series[]): number => select(x, 'tally_namespace_unmatched_entries_total', { map: 'tally_counters' })[0]?.value ?? 0;
    await byPod.scrapeUntil((x) => unmatched(x) >= 5, 'the dropped entries to show in tally_namespace_unmatched_entries_total');
    // Now the kernel decides: new execs count at once, and nothing waits.
    await execs(lateShop, 2);
    await execs(lateJobs, 1);
    const after2 = await byPod.scrapeUntil((x) => pods(x, IN_SHOP).some(([p, v]) => p === 'shop/late-web' && v === 8), 'the mapped pod\'s new execs');
    assert.deepEqual(pods(after2, IN_SHOP), [['jobs/batch', 1], ['jobs/late-batch', 1], ['shop/gone-web', 3], ['shop/late-web', 8], ['shop/web', 4]]);
    assert.deepEqual(pods(after2, EVENTS), [['jobs/batch', 5], ['jobs/late-batch', 10]]);
    const b2 = await byBinary.scrapeUntil((x) => mine(x, IN_SHOP) === 11, 'the binary agent\'s new counts');
    assert.deepEqual([mine(b2, IN_SHOP), mine(b2, NOT_SHOP), mine(b2, EVENTS)], [11, 8, 8]);
    assert.equal(waitingFor(byPod), 0, 'decided in the kernel');
    assert.equal(waitingFor(byBinary), 0, 'decided in the kernel');
  });
});
