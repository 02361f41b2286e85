/**
 * tcp-peers end to end, with real BPF: bytes from known cgroups to addresses
 * of every peer class, over IPv4, IPv6 and IPv4-mapped IPv6, through a veth
 * pair between two network namespaces (and loopback, and this node's own
 * address). Each class's bytes are exact, and the sum over peers equals
 * tcp-bytes' totals for the same cgroups. Then the peer table is replaced
 * mid-traffic, in place: new bytes go to the new class, none are lost.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { parsePromText, select, Series, sum } from './helpers/prom-text';
import { addPeerNetworks, byClass, nodeAddress, PeerStream, Place, sendTo } from './helpers/peer-traffic';
import { parseFlags } from '../src/cli/args';
import { Agent } from '../src/agent/agent';
import { Logger } from '../src/util/log';
import { parsePeerCidrs } from '../src/peers/peer-cidrs';
import { nodeAddresses } from '../src/peers/peer-map';

const PEER_SENT = 'tally_tcp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_tcp_peer_received_bytes_total';
const SENT = 'tally_tcp_sent_bytes_total';
const RECEIVED = 'tally_tcp_received_bytes_total';

const CIDRS = 'vpc=10.0.0.0/8,partner=203.0.113.0/24,vpc=fd00::/8,partner=2001:db8::/32';

describe('tcp-peers: exact bytes per peer class, IPv4 and IPv6', () => {
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    pair = new NetnsPair();
    for (const r of ['sender', 'receiver']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'tcp-bytes,tcp-peers', '--metrics-peer-cidrs', CIDRS]);
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
  });

  it('counts each class exactly, on both sides, and the sums equal tcp-bytes', async () => {
    const p = pair!;
    const v6 = addPeerNetworks(p);
    const sender: Place = { cg: cg.sender, ns: p.a };
    const remote: Place = { cg: cg.receiver, ns: p.b };
    const local: Place = { cg: cg.receiver, ns: p.a };
    const transfers: Array<[host: string, to: Place, bytes: number, cls: string]> = [
      [p.addrB, remote, 100_003, 'vpc'],
      ['203.0.113.2', remote, 200_005, 'partner'],
      ['198.51.100.2', remote, 300_007, 'unknown'],
      [`${v6.v6vpc}2`, remote, 110_011, 'vpc'],
      [`${v6.v6partner}2`, remote, 120_013, 'partner'],
      [`${v6.v6unknown}2`, remote, 130_017, 'unknown'],
      ['::ffff:203.0.113.2', remote, 140_019, 'partner'], // an IPv6 socket to an IPv4 peer
      ['127.0.0.1', local, 150_001, 'loopback'],
      ['::1', local, 160_003, 'loopback'],
    ];
    // The namespaces' addresses must not be this node's: the node's own class would take them.
    const mine = new Set(nodeAddresses());
    for (const [host] of transfers) assert.ok(!mine.has(host.replace('::ffff:', '')), `${host} is an address of this node; pick another for the test`);
    const node = nodeAddress();
    // The node's own address, from its own network namespace (the agent's).
    if (node) transfers.push([node, { cg: cg.receiver }, 170_009, 'node']);
    const expected: Record<string, number> = {};
    for (const [host, to, bytes, cls] of transfers) {
      const from = to.ns === undefined ? { cg: cg.sender } : sender;
      const t = await sendTo(p, from, to, host, bytes);
      assert.deepEqual(t, { sent: bytes, received: bytes }, `both ends of ${host} counted ${bytes}`);
      expected[cls] = (expected[cls] ?? 0) + bytes;
    }
    const total = transfers.reduce((a, t) => a + t[2], 0);

    const series = await agent!.scrape();
    const sentBy = byClass(series, PEER_SENT, cg.sender.name);
    const receivedBy = byClass(series, PEER_RECEIVED, cg.receiver.name);
    console.log(`peer classes measured: sent ${JSON.stringify(sentBy)}, received ${JSON.stringify(receivedBy)}, total ${total}`);
    assert.deepEqual(sentBy, expected, 'sent, by peer class');
    // The receiver's peer is the sender's address in the same network: the same class.
    assert.deepEqual(receivedBy, expected, 'received, by peer class');
    // The sums over peers are tcp-bytes' totals, for the same cgroups.
    assert.equal(sum(select(series, SENT, { workload: cg.sender.name })), total);
    assert.equal(sum(select(series, RECEIVED, { workload: cg.receiver.name })), total);
    assert.equal(sum(select(series, PEER_SENT, { workload: cg.sender.name })), sum(select(series, SENT, { workload: cg.sender.name })));
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.receiver.name })), sum(select(series, RECEIVED, { workload: cg.receiver.name })));
    // Nothing the other way: the receiver sent nothing, the sender received nothing.
    assert.equal(sum(select(series, PEER_SENT, { workload: cg.receiver.name })), 0);
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.sender.name })), 0);
  });
});

describe('tcp-peers: the peer table replaced mid-traffic', () => {
  let agent: Agent | undefined;
  let pair: NetnsPair | undefined;
  const streams: PeerStream[] = [];
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    pair = new NetnsPair();
    for (const r of ['stepper', 'streamer', 'receiver']) cg[r] = TestCgroup.create(r);
    // In this process, to call the agent's internal replacePeerCidrs().
    const parsed = parseFlags(['--metrics-server', '127.0.0.1:0', '--metrics-label-filter', 'workload', '--builtin-policies', 'tcp-bytes,tcp-peers', '--metrics-peer-cidrs', 'old=10.0.0.0/8', '--log-level', 'warn']);
    assert.equal(parsed.kind, 'run');
    if (parsed.kind !== 'run') return;
    agent = new Agent(parsed.config, new Logger('warn'));
    await agent.start();
  });
  after(async () => {
    for (const s of streams) s.kill();
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
  });

  const scrape = async (): Promise<Series[]> => parsePromText(await (await fetch(`http://127.0.0.1:${agent!.port}/metrics`)).text());

  it('moves new bytes to the new class, keeps counted bytes where they were, and loses none', async () => {
    const p = pair!;
    const to: Place = { cg: cg.receiver, ns: p.b };
    // One connection stepped by the test (exact before and after), one streaming throughout.
    const stepper = await PeerStream.open(p, { cg: cg.stepper, ns: p.a }, to, p.addrB);
    const streamer = await PeerStream.open(p, { cg: cg.streamer, ns: p.a }, to, p.addrB);
    streams.push(stepper, streamer);
    let streaming = true;
    let streamed = 0;
    const background = (async () => {
      while (streaming) {
        await streamer.send(1_000);
        streamed += 1_000;
      }
    })();
    const until = async (bytes: number): Promise<void> => {
      while (streamed < bytes) await new Promise((r) => setTimeout(r, 10));
    };

    const BEFORE = 123_457;
    const AFTER = 654_323;
    try {
      await stepper.send(BEFORE);
      await until(50_000); // some streamed bytes before the change, so it comes mid-stream
      const change = agent!.replacePeerCidrs(parsePeerCidrs('new=10.0.0.0/8'));
      assert.deepEqual(change, { written: 1, deleted: 0, entries: change.entries }, 'one entry rewritten in place');
      await stepper.send(AFTER);
      await until(streamed + 50_000);
    } finally {
      streaming = false;
      await background;
    }
    const s1 = await stepper.close();
    const s2 = await streamer.close();
    assert.equal(s1.sent, BEFORE + AFTER);

    const series = await scrape();
    const stepped = byClass(series, PEER_SENT, cg.stepper.name);
    const streamedBy = byClass(series, PEER_SENT, cg.streamer.name);
    console.log(`live update measured: stepper ${JSON.stringify(stepped)}, streamer ${JSON.stringify(streamedBy)} of ${s2.sent} sent`);
    assert.deepEqual(stepped, { old: BEFORE, new: AFTER });
    assert.ok(streamedBy.old > 0 && streamedBy.new > 0, `the stream counted under both classes: ${JSON.stringify(streamedBy)}`);
    assert.equal(streamedBy.old + streamedBy.new, s2.sent, 'nothing of the stream lost across the change');
    assert.equal(sum(select(series, SENT, { workload: cg.streamer.name })), s2.sent);
    // The receiver's side moved too, every byte counted once.
    assert.equal(sum(select(series, PEER_RECEIVED, { workload: cg.receiver.name })), s1.received + s2.received);
  });
});
