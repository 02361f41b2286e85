/**
 * Every query of every panel of every dashboard, run in a real Prometheus
 * (scraping every second, with the alert rules loaded) that scrapes the
 * real agent while the test makes traffic: TCP between two Kubernetes pods
 * (a test API server and kubelet-shaped cgroups) and a host service, lossy
 * TCP through a pair of network namespaces for retransmits, execs, exits and
 * file writes, and a policy that fails. Variables are substituted as Grafana
 * substitutes them, for "All" and for one picked value each; every query
 * must return at least one finite sample, and for a picked workload only
 * that workload's series. The variable queries and the alert expressions
 * are checked against the same Prometheus.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ChildProcess } from 'node:child_process';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { KubeShop } from './helpers/kube-shop';
import { NetnsPair } from './helpers/netns';
import { SINK, STREAMER } from './helpers/python-peers';
import { parsePromText } from './helpers/prom-text';
import { PrometheusServer, PromSeries, hasFiniteValue } from './helpers/prometheus-server';
import {
  ALERT_RULES,
  Dashboard,
  PROMETHEUS_OWN,
  Query,
  Selection,
  familyOf,
  interpolate,
  labelValuesQuery,
  loadAlertRules,
  loadDashboards,
  metricNamesIn,
  panelsOf,
  queriesOf,
  variablesOf,
} from './helpers/dashboards';


const JOB = 'tally';
const NODE_NAME = `tally-dash-${randomBytes(3).toString('hex')}`;
const NAMESPACE = 'shop';
const SCRAPE_S = 1;
const RANGE_S = 60;
/**
 * How long after Prometheus starts the queries may take to show data (rates
 * need two scrapes): one deadline for all of them, so a broken dashboard
 * fails in this time, not in this time per query.
 */
const DATA_TIMEOUT_MS = 45000;
const LOSSY_PORT = 5555;
const UDP_PORT = 5556;
/** An address of the far namespace in the "internet" class the agent is given. */
const INTERNET_PEER = '198.51.100.2';

const dashboards = loadDashboards();

/** A policy that fails to parse: its state is error, the rest runs. */
const BAD_POLICY = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: dash-broken
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    metrics:
    - {name: dash-broken-total, help: Not a valid metric name., type: counter}
`;

/** Sends to addr:port in 16 KiB writes until killed. */
const LOSSY_SENDER = [
  'import socket, sys, time',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2])))',
  'while True:',
  '    s.sendall(b"r" * 16384); time.sleep(0.01)',
].join('\n');

/** argv: PORT HOST...; UDP datagrams to each host, from an unconnected socket, forever (udp-peers' series). */
const UDP_SENDER = [
  'import socket, sys, time',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  'while True:',
  '    for h in sys.argv[2:]: s.sendto(b"q" * 1200, (h, int(sys.argv[1])))',
  '    time.sleep(0.01)',
].join('\n');

/** argv: HOST PORT; drains UDP datagrams. */
const UDP_SINK = [
  'import socket, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2])))',
  'print("listening", flush=True)',
  'while True: s.recv(65536)',
].join('\n');

const LOSSY_SINK = [
  'import socket, sys, threading',
  'ls = socket.socket(); ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(8)',
  'print("listening", flush=True)',
  'def drain(c):',
  '    while c.recv(65536): pass',
  'while True:',
  '    c, _ = ls.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()',
].join('\n');

/** Execs that exit ok, with an error and by a signal, and file writes, until killed. */
const PROCESS_LOOP = 'while :; do /usr/bin/true; /usr/bin/false; /bin/sh -c \'kill -9 $$\'; head -c 20000 /dev/zero > "$0"; sleep 0.2; done';


function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl).trim());
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before answering: ${err}`)));
  });
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const show = (series: PromSeries[], n = 5): string =>
  series
    .slice(0, n)
    .map((s) => `${JSON.stringify(s.metric)} ${JSON.stringify(s.values.slice(-3))}`)
    .join('\n    ') + (series.length > n ? `\n    … ${series.length - n} more` : '');

describe('dashboards and alerts against a real Prometheus scraping the real agent', () => {
  let shop: KubeShop | undefined;
  let agent: AgentProcess;
  let prom: PrometheusServer;
  /**
   * A second Prometheus, with native histograms on: it negotiates protobuf
   * and (2.42 has no scrape_classic_histograms) stores tally's histograms as
   * native ones only, with no _bucket, _sum or _count series.
   */
  let nativeProm: PrometheusServer;
  let netns: NetnsPair;
  let dir: string;
  let webCg: TestCgroup;
  let dbCg: TestCgroup;
  let hostCg: TestCgroup;
  let instance: string;
  /** When queries must have shown their data. */
  let dataDeadline: number;


  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-dash-'));
    fs.mkdirSync(path.join(dir, 'policies'));
    fs.writeFileSync(path.join(dir, 'policies', 'broken.yaml'), BAD_POLICY);

    shop = await KubeShop.start('dash', NODE_NAME, NAMESPACE);
    webCg = shop.web.cg;
    dbCg = shop.db.cg;
    // A host service: a workload label (with a dot, as systemd units have) and no namespace.
    hostCg = TestCgroup.create('dash.service');
    shop.made.push(hostCg);

    netns = new NetnsPair();
    netns.exec(netns.b, 'nft', ['-f', '-'], `table inet tally_dash_loss {
      chain input {
        type filter hook input priority 0; policy accept;
        tcp dport ${LOSSY_PORT} numgen random mod 100 < 10 drop
      }
    }`);

    // The peer panels: the lossy path's far end is a Service's endpoint in another zone (shop/db, cross-zone),
    // and a second address there is in the "internet" class of --metrics-peer-cidrs.
    netns.exec(netns.a, 'ip', ['addr', 'add', `${INTERNET_PEER.replace(/\.2$/, '.1')}/24`, 'dev', netns.devA]);
    netns.exec(netns.b, 'ip', ['addr', 'add', `${INTERNET_PEER}/24`, 'dev', netns.devB]);
    shop.api.setNode({ name: NODE_NAME, labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
    shop.api.addEndpointSlice({ namespace: NAMESPACE, name: 'db-abcde', service: 'db', endpoints: [{ addresses: [netns.addrB], nodeName: 'other-node', zone: 'zone-b' }] });

    // --bpf-stats on: the BPF overhead panels and alert read the kernel's statistics.
    const flags = ['--kubeconfig', shop.api.writeKubeconfig(dir), '--node-name', NODE_NAME, '--policy-dir', path.join(dir, 'policies'), '--bpf-stats', 'on'];
    flags.push('--builtin-policies', 'tcp-bytes,tcp-retransmits,file-writes,process,tcp-peers,udp-peers', '--metrics-peer-cidrs', 'internet=198.51.100.0/24');
    // OTLP to a port nobody listens on, so the export panels have failures to show.
    flags.push('--otlp-endpoint', `http://127.0.0.1:${await closedPort()}`, '--otlp-interval', '1s');
    agent = await AgentProcess.start(flags);
    await agent.scrapeUntil((s) => s.some((x) => x.name === 'tally_kube_pods' && x.value === 2), 'the agent to know both pods', 20000);
    instance = `127.0.0.1:${agent.port}`;

    // Traffic, until the cgroups are destroyed: loopback streams pod to pod and host to pod, a lossy stream pod to pod.
    const sinkWeb = webCg.spawn('/usr/bin/python3', ['-c', SINK]);
    const sinkDb = dbCg.spawn('/usr/bin/python3', ['-c', SINK]);
    const [webPort, dbPort] = await Promise.all([firstLine(sinkWeb, 'the sink in web'), firstLine(sinkDb, 'the sink in db')]);
    const stream = (cg: TestCgroup, port: string): ChildProcess => cg.spawn('/usr/bin/python3', ['-c', STREAMER, port, '600'], { stdio: 'ignore' });
    stream(webCg, dbPort);
    stream(dbCg, webPort);
    stream(hostCg, webPort);
    const lossySink = netns.spawn(netns.b, dbCg, '/usr/bin/python3', ['-c', LOSSY_SINK, netns.addrB, String(LOSSY_PORT)]);
    const internetSink = netns.spawn(netns.b, dbCg, '/usr/bin/python3', ['-c', LOSSY_SINK, INTERNET_PEER, String(LOSSY_PORT)]);
    const udpSinks = [netns.addrB, INTERNET_PEER].map((h) => netns.spawn(netns.b, dbCg, '/usr/bin/python3', ['-c', UDP_SINK, h, String(UDP_PORT)]));
    await Promise.all([firstLine(lossySink, 'the lossy sink'), firstLine(internetSink, 'the internet sink'), ...udpSinks.map((u) => firstLine(u, 'a UDP sink'))]);
    // UDP to the db Service's endpoint and to the internet: the peer panels sum both protocols.
    netns.spawn(netns.a, webCg, '/usr/bin/python3', ['-c', UDP_SENDER, String(UDP_PORT), netns.addrB, INTERNET_PEER], { stdio: 'ignore' });
    netns.spawn(netns.a, webCg, '/usr/bin/python3', ['-c', LOSSY_SENDER, netns.addrB, String(LOSSY_PORT)], { stdio: 'ignore' });
    netns.spawn(netns.a, webCg, '/usr/bin/python3', ['-c', LOSSY_SENDER, INTERNET_PEER, String(LOSSY_PORT)], { stdio: 'ignore' });
    for (const cg of [webCg, hostCg]) cg.spawn('/bin/sh', ['-c', PROCESS_LOOP, path.join(dir, `written-${cg.name}`)], { stdio: 'ignore' });

    // Scrapes every second (SCRAPE_S), as job "tally" (JOB).
    [prom, nativeProm] = await Promise.all([
      PrometheusServer.start([instance], { ruleFiles: [ALERT_RULES] }),
      PrometheusServer.start([instance], { features: ['native-histograms'] }),
    ]);
    dataDeadline = Date.now() + DATA_TIMEOUT_MS;
  });

  after(async () => {
    // Whatever failed above: every process in the cgroups dies with them.
    shop?.destroyCgroups();
    netns?.destroy();
    await prom?.stop();
    await nativeProm?.stop();
    await agent?.stop();
    await shop?.api.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The metric families (# TYPE) and series names the agent exposes now. */
  async function exposedNow(): Promise<Set<string>> {
    const text = await agent.metricsText();
    return new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]).concat(parsePromText(text).map((s) => s.name)));
  }

  /**
   * Runs a dashboard query, its variables substituted, until it returns a
   * finite sample (and `check` holds of its series) or the deadline passes.
   */
  async function runUntilData(
    d: Dashboard,
    q: Query,
    selections: Record<string, Selection>,
    check?: (s: PromSeries[]) => string | undefined,
    server: PrometheusServer = prom,
  ): Promise<PromSeries[]> {
    const prom = server;
    const expr = interpolate(q.expr, variablesOf(d), selections, { intervalS: SCRAPE_S, scrapeIntervalS: SCRAPE_S, rangeS: RANGE_S });
    const kind = server === nativeProm ? 'native histograms' : 'classic histograms';
    const where = `${d.file}, panel "${q.panel}", query ${q.refId}, ${kind}, variables ${JSON.stringify(selections)}:\n  ${expr}`;
    for (;;) {
      const now = Date.now() / 1000;
      const a = await prom.evaluate(expr, q.instant ? { time: now } : { start: now - RANGE_S, end: now, step: SCRAPE_S });
      assert.equal(a.status, 'success', `${where}\nPrometheus refused it: ${a.errorType}: ${a.error}`);
      const finite = a.series.filter(hasFiniteValue);
      if (finite.length > 0) {
        const problem = check?.(a.series);
        assert.equal(problem, undefined, `${where}\n${problem}\nPrometheus answered:\n    ${show(a.series)}`);
        return a.series;
      }
      if (Date.now() > dataDeadline) {
        // Say which of the metrics it reads Prometheus has no series of at all.
        const absent: string[] = [];
        for (const n of metricNamesIn(expr).names) {
          const c = await prom.evaluate(`count(count_over_time({__name__="${n}"}[${RANGE_S}s]))`, { time: now });
          if (c.series.length === 0) absent.push(n);
        }
        assert.fail(
          `${where}\nno finite sample ${DATA_TIMEOUT_MS} ms after Prometheus started; Prometheus answered ${a.series.length} series:\n    ${show(a.series)}` +
            (absent.length ? `\nPrometheus has no series at all of: ${absent.join(', ')}` : ''),
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('Prometheus scrapes the agent', async () => {
    for (const p of [prom, nativeProm]) {
      for (;;) {
        const a = await p.evaluate(`up{job="${JOB}"}`, { time: Date.now() / 1000 });
        if (a.series.length === 1 && a.series[0].values[0][1] === '1') break;
        assert.ok(Date.now() < dataDeadline, `Prometheus never scraped ${instance}: ${JSON.stringify(a)}\n${p.log}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });

  it('the peer panels\' UDP part has data: web\'s datagrams to the db Service (cross-zone) and to the internet', async () => {
    const expr = `sum by (peer_class) (rate(tally_udp_peer_sent_bytes_total{namespace="${NAMESPACE}", workload="web"}[10s]))`;
    for (;;) {
      const a = await prom.evaluate(expr, { time: Date.now() / 1000 });
      const classes = a.series.filter((s) => Number(s.values[0][1]) > 0).map((s) => s.metric.peer_class).sort();
      if (classes.includes('cross-zone') && classes.includes('internet')) break;
      assert.ok(Date.now() < dataDeadline, `${expr} has ${JSON.stringify(classes)}, not cross-zone and internet`);
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  it('the native-histogram Prometheus has the send sizes as native histograms only, the classic one as buckets only', async () => {
    const now = (): number => Date.now() / 1000;
    const web = '{namespace="shop", workload="web"}';
    for (;;) {
      const a = await nativeProm.evaluate(`tally_tcp_send_size_bytes${web}`, { time: now() });
      if (a.series.some((s) => s.histograms?.length)) break;
      assert.ok(Date.now() < dataDeadline, `no native histogram of tally_tcp_send_size_bytes: ${JSON.stringify(a)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const a = await nativeProm.evaluate(`count(count_over_time(tally_tcp_send_size_bytes${suffix}[1h]))`, { time: now() });
      assert.deepEqual(a.series, [], `the native-histogram Prometheus has no tally_tcp_send_size_bytes${suffix}`);
    }
    const classic = await prom.evaluate(`tally_tcp_send_size_bytes${web}`, { time: now() });
    assert.deepEqual(classic.series, [], 'the classic Prometheus has no native histogram');
  });

  for (const d of dashboards) {
    const vars = variablesOf(d);
    const queryVars = vars.filter((v) => v.type === 'query').map((v) => v.name as string);
    const workloadDashboard = queryVars.includes('workload');
    const all: Record<string, Selection> = Object.fromEntries(queryVars.map((v) => [v, 'All']));
    // One pod workload picked; on the health dashboard, this agent.
    const picked = (): Record<string, Selection> => (workloadDashboard ? { namespace: [NAMESPACE], workload: ['web'] } : { job: [JOB], instance: [instance] });

    describe(d.file, () => {
      it('variables: label_values queries list the test\'s namespace, workloads, job and instance', async () => {
        const end = Date.now() / 1000;
        const values = async (name: string, sel: Record<string, Selection>): Promise<string[]> => {
          const v = vars.find((x) => x.name === name)!;
          const { selector, label } = labelValuesQuery(v);
          const s = interpolate(selector, vars, sel, { intervalS: SCRAPE_S, scrapeIntervalS: SCRAPE_S, rangeS: RANGE_S });
          // The workloads show up in Prometheus a scrape after their traffic starts.
          let a = await prom.labelValues(label, s, end - RANGE_S, Date.now() / 1000);
          while (a.status === 'success' && a.values.length === 0 && Date.now() < dataDeadline) {
            await new Promise((r) => setTimeout(r, 500));
            a = await prom.labelValues(label, s, end - RANGE_S, Date.now() / 1000);
          }
          assert.equal(a.status, 'success', `${d.file} variable ${name}: label_values(${s}, ${label}): ${a.error}`);
          return a.values;
        };
        if (workloadDashboard) {
          assert.deepEqual(await values('namespace', all), [NAMESPACE], `${d.file}: the namespace variable lists the pods' namespace`);
          const everyWorkload = await values('workload', all);
          // (db writes to files and execs too: starting its peers does.)
          for (const w of ['db', 'web', hostCg.name]) assert.ok(everyWorkload.includes(w), `${d.file}: with namespace All, the workload variable lists ${w}: ${everyWorkload}`);
          const inShop = await values('workload', { namespace: [NAMESPACE] });
          assert.deepEqual(inShop, ['db', 'web'], `${d.file}: with namespace ${NAMESPACE}, only its workloads`);
        } else {
          assert.deepEqual(await values('job', all), [JOB]);
          assert.deepEqual(await values('instance', { job: [JOB] }), [instance]);
        }
      });

      for (const p of panelsOf(d).filter((x) => x.json.type !== 'row')) {
        it(`panel "${p.json.title}": every query returns data, for All and for one ${workloadDashboard ? 'workload' : 'agent'}, with classic and with native histograms`, async () => {
          const queries = queriesOf(d).filter((q) => q.panel === p.json.title);
          assert.ok(queries.length > 0, `panel "${p.json.title}" has no query`);
          for (const [q, server] of queries.flatMap((x) => [[x, prom], [x, nativeProm]] as const)) {
            await runUntilData(d, q, all, undefined, server);
            const sel = picked();
            await runUntilData(d, q, sel, (series) => {
              // Only the picked workload's (or agent's) series: any label the filter names must have the picked value.
              for (const s of series) {
                for (const [label, want] of Object.entries(sel)) {
                  const got = s.metric[label];
                  if (got !== undefined && got !== (want as string[])[0]) return `a series with ${label}="${got}", not the picked ${label}="${(want as string[])[0]}"`;
                }
                if (workloadDashboard && s.metric.pod !== undefined && !s.metric.pod.startsWith('web-')) return `a series of pod ${s.metric.pod}, not of workload web`;
              }
              return undefined;
            }, server);
          }
        });
      }
    });
  }

  it('outside Kubernetes: All matches the host workload, which has no namespace label; picking it matches only it', async () => {
    const d = dashboards.find((x) => x.file === 'tally-network.json')!;
    const q = queriesOf(d).find((x) => x.panel === 'Bytes sent per second by workload')!;
    await runUntilData(d, q, { namespace: 'All', workload: 'All' }, (series) =>
      series.some((s) => s.metric.workload === hostCg.name && s.metric.namespace === undefined) ? undefined : `no series for ${hostCg.name} without a namespace`,
    );
    await runUntilData(d, q, { namespace: 'All', workload: [hostCg.name] }, (series) =>
      series.length === 1 && series[0].metric.workload === hostCg.name ? undefined : `expected exactly the series of ${hostCg.name}`,
    );
  });

  describe('alert rules', () => {
    const rules = loadAlertRules();

    it('read only metrics the agent exposes (or Prometheus makes)', async () => {
      // After the traffic above: a counter family appears with its first series.
      const exposed = await exposedNow();
      for (const r of rules) {
        for (const n of metricNamesIn(r.expr).names) {
          assert.ok(PROMETHEUS_OWN.has(n) || familyOf(n, exposed), `${r.alert} reads ${n}, which the agent does not expose`);
        }
      }
    });

    it('are all loaded by Prometheus and evaluate without error', async () => {
      for (;;) {
        const a = await prom.api('/api/v1/rules', [['type', 'alert']]);
        assert.equal(a.status, 'success', JSON.stringify(a));
        const loaded = ((a.data as any).groups as any[]).flatMap((g) => g.rules as any[]);
        assert.deepEqual(loaded.map((r) => r.name).sort(), rules.map((r) => r.alert).sort(), 'the rules Prometheus loaded');
        const bad = loaded.filter((r) => r.health !== 'ok');
        if (bad.length === 0) break;
        const unevaluated = bad.filter((r) => r.health === 'unknown');
        assert.equal(unevaluated.length, bad.length, `rules that failed to evaluate: ${JSON.stringify(bad.map((r) => [r.name, r.lastError]))}`);
        assert.ok(Date.now() < dataDeadline, `rules never evaluated: ${unevaluated.map((r) => r.name)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    });

    it('TallyPolicyError is active for the broken policy only, TallyTcpRetransmitRatioHigh for the lossy workload only; TallyTargetDown sees the agent up', async () => {
      type Alert = { labels: Record<string, string>; state: string };
      const active = (alerts: Alert[], name: string): Alert[] => alerts.filter((x) => x.labels.alertname === name && ['pending', 'firing'].includes(x.state));
      const ours = (alerts: Alert[]): Alert[] => active(alerts, 'TallyTcpRetransmitRatioHigh').filter((x) => [webCg.name, dbCg.name, hostCg.name, 'web', 'db'].includes(x.labels.workload));
      let alerts: Alert[] = [];
      for (;;) {
        const a = await prom.api('/api/v1/alerts', []);
        alerts = ((a.data as any)?.alerts ?? []) as Alert[];
        if (active(alerts, 'TallyPolicyError').length > 0 && ours(alerts).length > 0) break;
        assert.ok(Date.now() < dataDeadline, `TallyPolicyError and TallyTcpRetransmitRatioHigh for web never went pending; alerts: ${JSON.stringify(alerts)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.deepEqual(
        active(alerts, 'TallyPolicyError').map((x) => [x.labels.policy, x.labels.state, x.labels.instance]),
        [['dash-broken', 'error', instance]],
        'TallyPolicyError: the broken policy, and no other',
      );
      // Other tests may make retransmits of their own; of this test's workloads, only web sends over the lossy path.
      assert.deepEqual(ours(alerts).map((x) => [x.labels.namespace, x.labels.workload]), [[NAMESPACE, 'web']], 'TallyTcpRetransmitRatioHigh among this test\'s workloads');
      const up = await prom.evaluate('up{job=~".*tally.*"}', { time: Date.now() / 1000 });
      assert.deepEqual(up.series.map((s) => [s.metric.instance, s.values[0][1]]), [[instance, '1']], 'TallyTargetDown\'s selector finds the agent, up');
    });
  });
});
