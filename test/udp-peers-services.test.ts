/**
 * udp-peers with Kubernetes, end to end with real BPF: the agent watches
 * EndpointSlices and its Node from the protocol-faithful test API server, and
 * the kernel resolves each datagram's remote address to the Service whose
 * endpoint it is (peer_namespace, peer_service) and to where that endpoint
 * runs against this node's zone. Datagrams from known cgroups, IPv4 and
 * IPv6, to endpoints of Services in this zone and another, to a CIDR class
 * and to an address of nothing, are exact per peer. Then an EndpointSlice
 * moves an endpoint to another zone between datagrams of one socket: the
 * bytes before stay with the old peer, those after go to the new one.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { EndpointSliceSpec, FakeKubeApi } from './helpers/fake-kube-api';
import { select, Series, sum } from './helpers/prom-text';
import { byPeer, Place } from './helpers/peer-traffic';
import { datagrams, UdpMode } from './helpers/udp-traffic';
import { nodeAddresses } from '../src/peers/peer-map';

const NODE = 'udp-peers-node';
const PEER_SENT = 'tally_udp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_udp_peer_received_bytes_total';

const one = (series: Series[], name: string): number => select(series, name)[0]?.value ?? NaN;

describe('udp-peers: exact payload bytes per Service and zone, from EndpointSlices', () => {
  let api: FakeKubeApi | undefined;
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  let dir: string | undefined;
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-udp-peers-'));
    api = await new FakeKubeApi().start();
    api.setNode({ name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
    pair = new NetnsPair();
    for (const r of ['sender', 'receiver', 'mover']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start([
      '--kubeconfig', api.writeKubeconfig(dir),
      '--node-name', NODE,
      '--metrics-label-filter', 'workload',
      '--builtin-policies', 'udp-peers',
      '--metrics-peer-cidrs', 'partner=2001:db8::/32',
    ]);
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
    await api?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts each Service endpoint by zone, a CIDR class and unknown exactly', async () => {
    const p = pair!;
    const tag = p.addrA.split('.').slice(1, 3).map(Number).map((n) => n.toString(16)).join('');
    const v6 = { api: `fd00:${tag}::`, partner: `2001:db8:${tag}::` };
    for (const net of ['198.51.100', '203.0.113']) {
      execFileSync('ip', ['-n', p.a, 'addr', 'add', `${net}.1/24`, 'dev', p.devA]);
      execFileSync('ip', ['-n', p.b, 'addr', 'add', `${net}.2/24`, 'dev', p.devB]);
    }
    for (const prefix of Object.values(v6)) {
      execFileSync('ip', ['-n', p.a, 'addr', 'add', `${prefix}1/64`, 'dev', p.devA, 'nodad']);
      execFileSync('ip', ['-n', p.b, 'addr', 'add', `${prefix}2/64`, 'dev', p.devB, 'nodad']);
    }
    const mine = new Set(nodeAddresses());
    for (const a of [p.addrB, '203.0.113.2', '198.51.100.2', `${v6.api}2`]) assert.ok(!mine.has(a), `${a} is an address of this node; pick another`);

    const slices: EndpointSliceSpec[] = [
      { namespace: 'shop', name: 'dns-x1', service: 'dns', endpoints: [{ addresses: [p.addrB], nodeName: 'n2', zone: 'zone-a' }] },
      { namespace: 'shop', name: 'quic-x1', service: 'quic', endpoints: [{ addresses: ['203.0.113.2'], nodeName: 'n3', zone: 'zone-b' }] },
      { namespace: 'ops', name: 'stats-x1', service: 'stats', addressType: 'IPv6', endpoints: [{ addresses: [`${v6.api}2`], nodeName: NODE, zone: 'zone-a' }] },
    ];
    const base = one(await agent!.scrape(), 'tally_peer_table_entries');
    for (const s of slices) api!.addEndpointSlice(s);
    await agent!.scrapeUntil((x) => one(x, 'tally_peer_table_entries') === base + 3 && one(x, 'tally_peer_endpoint_slices') === 3, 'the 3 endpoints in the peer table', 20000);

    const sender: Place = { cg: cg.sender, ns: p.a };
    const remote: Place = { cg: cg.receiver, ns: p.b };
    const transfers: Array<[host: string, mode: UdpMode, sizes: number[], peer: string]> = [
      [p.addrB, 'sendto', [53, 512, 1232], 'same-zone/shop/dns'],
      ['203.0.113.2', 'connect', [1200, 1200, 4000], 'cross-zone/shop/quic'],
      [`${v6.api}2`, 'sendto', [7, 8000], 'same-node/ops/stats'],
      [`::ffff:${p.addrB}`, 'connect', [11, 1350], 'same-zone/shop/dns'], // an IPv6 socket to the IPv4 endpoint
      [`${v6.partner}2`, 'connect', [13, 2000], 'partner//'],
      ['198.51.100.2', 'sendto', [17, 900], 'unknown//'],
    ];
    const expected: Record<string, number> = {};
    for (const [host, mode, sizes, peer] of transfers) {
      const bytes = sizes.reduce((a, b) => a + b, 0);
      assert.deepEqual(await datagrams(p, sender, remote, host, mode, sizes), { sent: bytes, received: bytes }, `both ends of ${host}`);
      expected[peer] = (expected[peer] ?? 0) + bytes;
    }
    const total = Object.values(expected).reduce((a, b) => a + b, 0);
    const series = await agent!.scrape();
    const sent = byPeer(series, PEER_SENT, cg.sender.name);
    console.log(`udp peers measured: ${JSON.stringify(sent)}, total ${total}`);
    assert.deepEqual(sent, expected, 'sent, by peer');
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.receiver.name })), total, 'received, in all');
  });

  it('an endpoint moved to another zone between datagrams: bytes before stay, bytes after go to the new peer', async () => {
    const p = pair!;
    const from: Place = { cg: cg.mover, ns: p.a };
    const to: Place = { cg: cg.receiver, ns: p.b };
    assert.deepEqual(await datagrams(p, from, to, p.addrB, 'connect', [5021, 3000]), { sent: 8021, received: 8021 });
    const before = one(await agent!.scrape(), 'tally_peer_table_writes_total');
    api!.updateEndpointSlice({ namespace: 'shop', name: 'dns-x1', service: 'dns', endpoints: [{ addresses: [p.addrB], nodeName: 'n4', zone: 'zone-c' }] });
    await agent!.scrapeUntil((x) => one(x, 'tally_peer_table_writes_total') >= before + 1, 'the table written after the EndpointSlice changed', 20000);
    assert.deepEqual(await datagrams(p, from, to, p.addrB, 'sendto', [6029, 1]), { sent: 6030, received: 6030 });
    const sent = byPeer(await agent!.scrape(), PEER_SENT, cg.mover.name);
    assert.deepEqual(sent, { 'same-zone/shop/dns': 8021, 'cross-zone/shop/dns': 6030 });
  });
});
