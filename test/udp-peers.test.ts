/**
 * udp-peers end to end, with real BPF: UDP datagrams from known cgroups to
 * addresses of every peer class, over IPv4, IPv6 and IPv4-mapped IPv6, from
 * connected and unconnected sockets, through a veth pair between two network
 * namespaces (and loopback, and this node's own address). Some datagrams are
 * larger than the veth's MTU: IP fragments them after the egress hook and
 * reassembles them before the ingress hook, so each still counts once, whole.
 * Each class's payload bytes are exact on both sides.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { select, sum } from './helpers/prom-text';
import { addPeerNetworks, byClass, nodeAddress, Place } from './helpers/peer-traffic';
import { datagrams, UdpMode } from './helpers/udp-traffic';
import { nodeAddresses } from '../src/peers/peer-map';

const PEER_SENT = 'tally_udp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_udp_peer_received_bytes_total';

const CIDRS = 'vpc=10.0.0.0/8,partner=203.0.113.0/24,vpc=fd00::/8,partner=2001:db8::/32';

describe('udp-peers: exact payload bytes per peer class, IPv4 and IPv6, connected and not', () => {
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    pair = new NetnsPair();
    for (const r of ['sender', 'receiver']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'udp-peers', '--metrics-peer-cidrs', CIDRS]);
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
  });

  it('counts each class exactly, on both sides, whole datagrams however fragmented', async () => {
    const p = pair!;
    const v6 = addPeerNetworks(p);
    const sender: Place = { cg: cg.sender, ns: p.a };
    const remote: Place = { cg: cg.receiver, ns: p.b };
    const local: Place = { cg: cg.receiver, ns: p.a };
    // 4000 and 9000 bytes: more than the veth's MTU of 1500, so fragmented on the wire.
    const transfers: Array<[host: string, to: Place, mode: UdpMode, sizes: number[], cls: string]> = [
      [p.addrB, remote, 'connect', [1, 1000, 4000], 'vpc'],
      ['203.0.113.2', remote, 'sendto', [7, 1472, 9000], 'partner'],
      ['198.51.100.2', remote, 'connect', [13, 512], 'unknown'],
      [`${v6.v6vpc}2`, remote, 'sendto', [17, 1452, 4001], 'vpc'],
      [`${v6.v6partner}2`, remote, 'connect', [19, 3000], 'partner'],
      [`${v6.v6unknown}2`, remote, 'sendto', [23, 100], 'unknown'],
      ['::ffff:203.0.113.2', remote, 'sendto', [29, 2000], 'partner'], // an IPv6 socket to an IPv4 peer
      ['127.0.0.1', local, 'connect', [31, 60_000], 'loopback'],
      ['::1', local, 'sendto', [37, 5000], 'loopback'],
    ];
    const mine = new Set(nodeAddresses());
    for (const [host] of transfers) assert.ok(!mine.has(host.replace('::ffff:', '')), `${host} is an address of this node; pick another for the test`);
    const node = nodeAddress();
    if (node) transfers.push([node, { cg: cg.receiver }, 'sendto', [41, 1234], 'node']);
    const expected: Record<string, number> = {};
    for (const [host, to, mode, sizes, cls] of transfers) {
      const from = to.ns === undefined ? { cg: cg.sender } : sender;
      const bytes = sizes.reduce((a, b) => a + b, 0);
      const t = await datagrams(p, from, to, host, mode, sizes);
      assert.deepEqual(t, { sent: bytes, received: bytes }, `both ends of ${host} (${mode}) moved ${bytes}`);
      expected[cls] = (expected[cls] ?? 0) + bytes;
    }
    const total = Object.values(expected).reduce((a, b) => a + b, 0);

    const series = await agent!.scrape();
    const sentBy = byClass(series, PEER_SENT, cg.sender.name);
    const receivedBy = byClass(series, PEER_RECEIVED, cg.receiver.name);
    console.log(`udp peer classes measured: sent ${JSON.stringify(sentBy)}, received ${JSON.stringify(receivedBy)}, total ${total}`);
    assert.deepEqual(sentBy, expected, 'sent, by peer class');
    // The receiver's peer is the datagram's source: the sender's address in the same network, the same class.
    assert.deepEqual(receivedBy, expected, 'received, by peer class');
    assert.equal(sum(select(series, PEER_SENT, { workload: cg.receiver.name })), 0, 'the receiver sent nothing');
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.sender.name })), 0, 'the sender received nothing');
  });
});
