/**
 * tcp-peers with Kubernetes, end to end with real BPF: the agent watches
 * EndpointSlices and its Node from the protocol-faithful test API server, and
 * the kernel resolves each connection's remote address to the Service whose
 * endpoint it is (peer_namespace, peer_service) and to where that endpoint
 * runs against this node's zone (same-node, same-zone, cross-zone). Bytes
 * from known cgroups, IPv4 and IPv6, to endpoints of three Services, to a
 * CIDR class and to an address of nothing, are exact per peer, and their sum
 * is tcp-bytes' total. Then an EndpointSlice moves an endpoint to another
 * zone mid-connection: the bytes before stay with the old peer, the bytes
 * after go to the new one, and none are lost.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AgentProcess, scaled } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { EndpointSliceSpec, FakeKubeApi } from './helpers/fake-kube-api';
import { select, Series, sum } from './helpers/prom-text';
import { byPeer, PeerStream, Place, sendTo } from './helpers/peer-traffic';
import { nodeAddresses } from '../src/peers/peer-map';

const NODE = 'peers-node';
const PEER_SENT = 'tally_tcp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_tcp_peer_received_bytes_total';

const one = (series: Series[], name: string): number => select(series, name)[0]?.value ?? NaN;

describe('tcp-peers: exact bytes per Service and zone, from EndpointSlices', () => {
  let api: FakeKubeApi | undefined;
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  let dir: string | undefined;
  const streams: PeerStream[] = [];
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-peers-'));
    api = await new FakeKubeApi().start();
    api.setNode({ name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
    pair = new NetnsPair();
    for (const r of ['sender', 'receiver']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE,
      '--metrics-label-filter', 'workload',
      '--builtin-policies', 'tcp-bytes,tcp-peers',
      '--metrics-peer-cidrs', 'partner=2001:db8::/32',
    ]);
  });
  after(async () => {
    for (const s of streams) s.kill();
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
    await api?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until the agent has written its peer table `n` times in all (tally_peer_table_writes_total). */
  async function tableWrites(n: number, what: string): Promise<Series[]> {
    const deadline = Date.now() + scaled(20000);
    for (;;) {
      const series = await agent!.scrape();
      if (one(series, 'tally_peer_table_writes_total') >= n) return series;
      if (Date.now() > deadline) throw new Error(`the peer table was not written after ${what}: ${one(series, 'tally_peer_table_writes_total')} writes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('counts each Service endpoint by zone, a CIDR class and unknown exactly; the sums equal tcp-bytes', async () => {
    const p = pair!;
    const tag = p.addrA.split('.').slice(1, 3).map(Number).map((n) => n.toString(16)).join('');
    const v6 = { api: `fd00:${tag}::`, partner: `2001:db8:${tag}::` };
    execFileSync('ip', ['-n', p.a, 'addr', 'add', '198.51.100.1/24', 'dev', p.devA]);
    execFileSync('ip', ['-n', p.b, 'addr', 'add', '198.51.100.2/24', 'dev', p.devB]);
    execFileSync('ip', ['-n', p.a, 'addr', 'add', '203.0.113.1/24', 'dev', p.devA]);
    execFileSync('ip', ['-n', p.b, 'addr', 'add', '203.0.113.2/24', 'dev', p.devB]);
    for (const prefix of Object.values(v6)) {
      execFileSync('ip', ['-n', p.a, 'addr', 'add', `${prefix}1/64`, 'dev', p.devA, 'nodad']);
      execFileSync('ip', ['-n', p.b, 'addr', 'add', `${prefix}2/64`, 'dev', p.devB, 'nodad']);
    }
    const mine = new Set(nodeAddresses());
    for (const a of [p.addrB, '203.0.113.2', '198.51.100.2', `${v6.api}2`]) assert.ok(!mine.has(a), `${a} is an address of this node; pick another`);

    // The agent has written its table once at start; the slices come after, through the watch.
    const slices: EndpointSliceSpec[] = [
      { namespace: 'shop', name: 'web-x1', service: 'web', endpoints: [{ addresses: [p.addrB], nodeName: 'n2', zone: 'zone-a' }] },
      { namespace: 'shop', name: 'db-x1', service: 'db', endpoints: [{ addresses: ['203.0.113.2'], nodeName: 'n3', zone: 'zone-b' }] },
      { namespace: 'ops', name: 'api-x1', service: 'api', addressType: 'IPv6', endpoints: [{ addresses: [`${v6.api}2`], nodeName: NODE, zone: 'zone-a' }] },
    ];
    // The watch starts once tcp-peers runs, and writes no table before this node's zone is known.
    const base = one(await agent!.scrape(), 'tally_peer_table_entries');
    for (const s of slices) api!.addEndpointSlice(s);
    await agent!.scrapeUntil((x) => one(x, 'tally_peer_table_entries') === base + 3 && one(x, 'tally_peer_endpoint_slices') === 3, 'the 3 endpoints in the peer table', 20000);

    const sender: Place = { cg: cg.sender, ns: p.a };
    const remote: Place = { cg: cg.receiver, ns: p.b };
    const transfers: Array<[host: string, bytes: number, peer: string]> = [
      [p.addrB, 100_003, 'same-zone/shop/web'],
      ['203.0.113.2', 200_005, 'cross-zone/shop/db'],
      [`${v6.api}2`, 110_011, 'same-node/ops/api'],
      [`::ffff:${p.addrB}`, 120_013, 'same-zone/shop/web'], // an IPv6 socket to the IPv4 endpoint
      [`${v6.partner}2`, 130_017, 'partner//'],
      ['198.51.100.2', 140_019, 'unknown//'],
    ];
    const expected: Record<string, number> = {};
    for (const [host, bytes, peer] of transfers) {
      assert.deepEqual(await sendTo(p, sender, remote, host, bytes), { sent: bytes, received: bytes }, `both ends of ${host}`);
      expected[peer] = (expected[peer] ?? 0) + bytes;
    }
    const total = transfers.reduce((a, t) => a + t[1], 0);
    const series = await agent!.scrape();
    const sent = byPeer(series, PEER_SENT, cg.sender.name);
    console.log(`peers measured: ${JSON.stringify(sent)}, total ${total}`);
    assert.deepEqual(sent, expected, 'sent, by peer');
    // The receiver's peer is the sender's address, which no slice names: unknown, except the CIDR class.
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.receiver.name })), total);
    assert.equal(sum(select(series, PEER_SENT, { workload: cg.sender.name })), sum(select(series, 'tally_tcp_sent_bytes_total', { workload: cg.sender.name })));
    assert.equal(sum(select(series, 'tally_tcp_sent_bytes_total', { workload: cg.sender.name })), total);
  });

  it('an endpoint moved to another zone mid-connection: bytes before stay, bytes after go to the new peer, none lost', async () => {
    const p = pair!;
    const mover = TestCgroup.create('mover');
    cg.mover = mover;
    const s = await PeerStream.open(p, { cg: mover, ns: p.a }, { cg: cg.receiver, ns: p.b }, p.addrB);
    streams.push(s);
    await s.send(50_021);
    const before = one(await agent!.scrape(), 'tally_peer_table_writes_total');
    api!.updateEndpointSlice({ namespace: 'shop', name: 'web-x1', service: 'web', endpoints: [{ addresses: [p.addrB], nodeName: 'n4', zone: 'zone-c' }] });
    await tableWrites(before + 1, 'the EndpointSlice changed');
    await s.send(60_029);
    assert.deepEqual(await s.close(), { sent: 110_050, received: 110_050 });
    const sent = byPeer(await agent!.scrape(), PEER_SENT, mover.name);
    assert.deepEqual(sent, { 'same-zone/shop/web': 50_021, 'cross-zone/shop/web': 60_029 });
  });
});

describe('a policy of your own with peer_service: the agent watches EndpointSlices only once it runs', () => {
  let api: FakeKubeApi | undefined;
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  let dir: string | undefined;
  let cg: TestCgroup | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-peers-own-'));
    fs.mkdirSync(path.join(dir, 'policies'));
    api = await new FakeKubeApi().start();
    api.setNode({ name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
    pair = new NetnsPair();
    cg = TestCgroup.create('own-peers');
    api.addEndpointSlice({ namespace: 'shop', name: 'web-y1', service: 'web', endpoints: [{ addresses: [pair.addrB], nodeName: 'n2', zone: 'zone-a' }] });
    agent = await AgentProcess.start(['--kubeconfig', api.writeKubeconfig(dir), '--node-name', NODE, '--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', path.join(dir, 'policies')]);
  });
  after(async () => {
    cg?.destroy();
    pair?.destroy();
    await agent?.stop();
    await api?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resolves the Service for its label, and no EndpointSlice request is made before', async () => {
    const series = await agent!.scrape();
    assert.equal(select(series, 'tally_peer_endpoint_slices').length, 0, 'no watch without a policy that asks');
    assert.equal(api!.endpointSliceLists().length, 0, 'no list of EndpointSlices');
    const policy = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: own-peers}
spec:
  tracepoints:
  - subsystem: sock
    event: sock_send_length
    raw: true
    taskContext: true
    args: [{index: 0, type: sock}, {index: 1, type: int}]
    selectors:
    - matchArgs:
      - {index: 0, operator: Protocol, values: [IPPROTO_TCP]}
      - {index: 1, operator: GT, values: ["0"]}
    metrics:
    - name: own_sent_bytes_total
      help: Bytes sent, by Service.
      value: {arg: 1}
      labels: [{name: to_service, arg: 0, field: daddr, peer: service}]
  # Kernels before 6.3 have no sock_send_length: the return of tcp_sendmsg(), as tcp-peers does.
  kprobes:
  - call: tcp_sendmsg
    syscall: false
    return: true
    taskContext: true
    fallbackFor: tracepoint:sock/sock_send_length
    args: [{index: 0, type: sock}]
    returnArg: {index: 0, type: int}
    metrics:
    - name: own_sent_bytes_total
      help: Bytes sent, by Service.
      value: return
      labels: [{name: to_service, arg: 0, field: daddr, peer: service}]
`;
    fs.writeFileSync(path.join(dir!, 'policies', 'own.yaml'), policy);
    await agent!.scrapeUntil((s) => select(s, 'tally_peer_endpoint_slices')[0]?.value === 1 && (select(s, 'tally_peer_table_writes_total')[0]?.value ?? 0) >= 2, 'the EndpointSlice watch to write the table', 20000);
    const place: Place = { cg: cg!, ns: pair!.a };
    assert.deepEqual(await sendTo(pair!, place, { cg: cg!, ns: pair!.b }, pair!.addrB, 70_001), { sent: 70_001, received: 70_001 });
    const after = await agent!.scrape();
    assert.deepEqual(select(after, 'own_sent_bytes_total', { workload: cg!.name }).map((x) => [x.labels.to_service, x.value]), [['web', 70_001]]);
  });
});
