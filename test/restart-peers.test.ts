/**
 * tcp-peers across an agent restart (--bpf-pin-dir, docs/restart.md), with
 * real BPF. Each agent numbers peers as it meets them; here the two agents
 * list the same classes in another order, so the previous agent's id for
 * "vpc" is the next agent's id for "other". Bytes the pinned programs count
 * while no agent runs carry the previous agent's ids, and must be exported
 * under the peer they were counted for: the next agent translates each id by
 * the peer's name (src/persist/translate.ts). udp-peers' packet hooks, on the
 * cgroup v2 root by pinned links, are handed over the same way.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { AgentProcess, scaled } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { select, sum } from './helpers/prom-text';
import { byClass, PeerStream } from './helpers/peer-traffic';
import { restartState, usePinDir } from './helpers/pin-dir';
import { datagrams } from './helpers/udp-traffic';

const PEER_SENT = 'tally_tcp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_tcp_peer_received_bytes_total';


describe('tcp-peers across a restart with --bpf-pin-dir', () => {
  const agents: AgentProcess[] = [];
  const cgs: TestCgroup[] = [];
  let pair: NetnsPair | undefined;
  let stream: PeerStream | undefined;
  after(async () => {
    stream?.kill();
    for (const a of agents) await a.stop();
    for (const c of cgs) c.destroy();
    pair?.destroy();
  });

  it('exports the bytes counted while no agent ran under the peer they were counted for, though the next agent numbers peers otherwise', async (tc) => {
    const dir = usePinDir(tc);
    pair = new NetnsPair();
    const sender = TestCgroup.create('sender');
    const receiver = TestCgroup.create('receiver');
    cgs.push(sender, receiver);
    const flags = (cidrs: string) => ['--bpf-pin-dir', dir, '--metrics-label-filter', 'workload', '--builtin-policies', 'tcp-bytes,tcp-peers', '--metrics-series-limit', '1000000', '--metrics-peer-cidrs', cidrs];
    // The first agent gives "other" id 3 and "vpc" id 4; the second the other way round.
    const a = await AgentProcess.start(flags('other=192.0.2.0/24,vpc=10.0.0.0/8'));
    agents.push(a);
    stream = await PeerStream.open(pair, { cg: sender, ns: pair.a }, { cg: receiver, ns: pair.b }, pair.addrB);
    await stream.send(100_003);
    await a.scrapeUntil((s) => sum(select(s, PEER_SENT, { workload: sender.name })) === 100_003, 'the first bytes');
    assert.equal((await a.stop()).code, 0);

    // No agent runs: the pinned programs count under the first agent's peer ids.
    await stream.send(200_005);
    await new Promise((r) => setTimeout(r, scaled(500)));

    const b = await AgentProcess.start(flags('vpc=10.0.0.0/8,other=192.0.2.0/24'));
    agents.push(b);
    assert.deepEqual(restartState(await b.scrape()), { adopted: 1 });
    await stream.send(300_007);
    const t = await stream.close();
    stream = undefined;
    assert.deepEqual(t, { sent: 600_015, received: 600_015 });

    const series = await b.scrape();
    assert.deepEqual(byClass(series, PEER_SENT, sender.name), { vpc: 600_015 }, `sent by class; the new agent's log:\n${b.stderr}`);
    assert.deepEqual(byClass(series, PEER_RECEIVED, receiver.name), { vpc: 600_015 }, 'received by class');
    assert.doesNotMatch(b.stderr, /were dropped/, 'nothing dropped at the handover');
  });
});

describe('udp-peers across a restart with --bpf-pin-dir', () => {
  const agents: AgentProcess[] = [];
  const cgs: TestCgroup[] = [];
  let pair: NetnsPair | undefined;
  after(async () => {
    for (const a of agents) await a.stop();
    for (const c of cgs) c.destroy();
    pair?.destroy();
  });

  it('the pinned cgroup_skb links count while no agent runs, and the next agent exports it under the right peer, once', async (tc) => {
    const dir = usePinDir(tc);
    pair = new NetnsPair();
    const sender = TestCgroup.create('udp-sender');
    const receiver = TestCgroup.create('udp-receiver');
    cgs.push(sender, receiver);
    const flags = (cidrs: string) => ['--bpf-pin-dir', dir, '--metrics-label-filter', 'workload', '--builtin-policies', 'udp-peers', '--metrics-series-limit', '1000000', '--metrics-peer-cidrs', cidrs];
    const send = async (sizes: number[]): Promise<void> => {
      const n = sizes.reduce((x, y) => x + y, 0);
      assert.deepEqual(await datagrams(pair, { cg: sender, ns: pair!.a }, { cg: receiver, ns: pair!.b }, pair!.addrB, 'sendto', sizes), { sent: n, received: n });
    };
    const a = await AgentProcess.start(flags('other=192.0.2.0/24,vpc=10.0.0.0/8'));
    agents.push(a);
    await send([1003, 2000]);
    await a.scrapeUntil((s) => sum(select(s, 'tally_udp_peer_sent_bytes_total', { workload: sender.name })) === 3003, 'the first datagrams');
    assert.equal((await a.stop()).code, 0);

    await send([4005]); // no agent runs

    const b = await AgentProcess.start(flags('vpc=10.0.0.0/8,other=192.0.2.0/24'));
    agents.push(b);
    assert.deepEqual(restartState(await b.scrape()), { adopted: 1 });
    await send([6007, 1]);
    const series = await b.scrape();
    assert.deepEqual(byClass(series, 'tally_udp_peer_sent_bytes_total', sender.name), { vpc: 13_016 }, `sent by class; the new agent's log:\n${b.stderr}`);
    assert.deepEqual(byClass(series, 'tally_udp_peer_received_bytes_total', receiver.name), { vpc: 13_016 }, 'received by class');
    assert.doesNotMatch(b.stderr, /were dropped/, 'nothing dropped at the handover');
  });
});
