/**
 * A policy of your own on packet hooks, with real BPF: ports read as the
 * socket sees them, whichever way the packet goes. DPort on egress is the
 * receiver's port; SPort on ingress is the receiver's own (local) port, the
 * header's destination. Datagrams to one port of a namespace are counted
 * exactly, on both sides, and those to another port not at all.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { select, sum } from './helpers/prom-text';
import { datagrams } from './helpers/udp-traffic';

/** Ports in the far namespace, which is the test's own: nothing else binds there. */
const COUNTED = 4433;
const OTHER = 5353;

const POLICY = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: quic-bytes}
spec:
  packets:
  - direction: egress
    args: [{index: 0, type: packet}, {index: 1, type: uint32}]
    selectors:
    - matchArgs:
      - {index: 0, operator: Protocol, values: [IPPROTO_UDP]}
      - {index: 0, operator: DPort, values: ["${COUNTED}"]}
    metrics:
    - {name: quic_sent_bytes_total, help: UDP payload bytes sent to port ${COUNTED}., value: {arg: 1}}
  - direction: ingress
    args: [{index: 0, type: packet}, {index: 1, type: uint32}]
    selectors:
    - matchArgs:
      - {index: 0, operator: Protocol, values: [IPPROTO_UDP]}
      - {index: 0, operator: SPort, values: ["${COUNTED}"]}
    metrics:
    - {name: quic_received_bytes_total, help: UDP payload bytes received at local port ${COUNTED}., value: {arg: 1}}
`;

describe('packet hooks: ports as the socket sees them', () => {
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  let dir: string | undefined;
  const cg: Record<string, TestCgroup> = {};

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-packet-ports-'));
    fs.writeFileSync(path.join(dir, 'quic.yaml'), POLICY);
    pair = new NetnsPair();
    for (const r of ['client', 'server']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', dir]);
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('DPort on egress and SPort on ingress select the server\'s port, exactly', async () => {
    const p = pair!;
    const from = { cg: cg.client, ns: p.a };
    const to = { cg: cg.server, ns: p.b };
    assert.deepEqual(await datagrams(p, from, to, p.addrB, 'sendto', [1200, 1200, 7], COUNTED), { sent: 2407, received: 2407 });
    assert.deepEqual(await datagrams(p, from, to, p.addrB, 'connect', [3000], COUNTED), { sent: 3000, received: 3000 });
    assert.deepEqual(await datagrams(p, from, to, p.addrB, 'sendto', [999, 1], OTHER), { sent: 1000, received: 1000 });
    const series = await agent!.scrape();
    assert.equal(sum(select(series, 'quic_sent_bytes_total', { workload: cg.client.name })), 5407, 'sent to the counted port');
    assert.equal(sum(select(series, 'quic_received_bytes_total', { workload: cg.server.name })), 5407, 'received at the counted port');
    assert.equal(sum(select(series, 'quic_sent_bytes_total', { workload: cg.server.name })), 0, 'the server sent nothing');
    assert.equal(sum(select(series, 'quic_received_bytes_total', { workload: cg.client.name })), 0, 'the client received nothing');
  });
});
