/**
 * tcp-bytes' receive count on kernels before 6.3, with real BPF on any kernel:
 * the skb_copy_datagram_iovec tracepoint that stands in for sock_recv_length.
 * The test loads the built-in policy's own text with the sock_recv_length
 * hook renamed to a tracepoint no kernel has, so its fallback is what loads,
 * as on 5.10 and 6.1. Then: bytes received are exact per cgroup, over IPv4
 * and IPv6, for a reader that reads as the data comes and for one that sleeps
 * in recv() while another policy attaches on the same kernel function (where
 * the fexit fallback it replaces lost that read: docs/kernels.md).
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, sum } from './helpers/prom-text';
import { PeerStream, sendTo } from './helpers/peer-traffic';
import { PROJECT_ROOT } from '../src/util/paths';

/** tcp-bytes.yaml as shipped, its metrics renamed (tally_* names are the built-ins'), its receive tracepoint made absent. */
function fallbackPolicy(): string {
  const text = fs.readFileSync(path.join(PROJECT_ROOT, 'policies', 'tcp-bytes.yaml'), 'utf8');
  const out = text
    .replace(/name: tcp-bytes/, 'name: test-recv-fallback')
    .replace(/tally_tcp_/g, 'test_fallback_tcp_')
    .replace(/event: sock_recv_length\n/, 'event: sock_recv_length_absent\n')
    .replace(/fallbackFor: tracepoint:sock\/sock_recv_length\n/, 'fallbackFor: tracepoint:sock/sock_recv_length_absent\n');
  assert.ok(out.includes('sock_recv_length_absent\n    raw') && out.includes('fallbackFor: tracepoint:sock/sock_recv_length_absent'), 'the policy text changed; update the test');
  return out;
}

const RECEIVED = 'test_fallback_tcp_received_bytes_total';
const SENT = 'test_fallback_tcp_sent_bytes_total';

describe('tcp-bytes: receives counted from skb_copy_datagram_iovec (kernels before 6.3)', () => {
  let agent: AgentProcess | undefined;
  const cg: Record<string, TestCgroup> = {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-recv-fallback-'));
  const streams: PeerStream[] = [];

  before(async () => {
    fs.writeFileSync(path.join(dir, 'tcp-bytes.yaml'), fallbackPolicy());
    for (const r of ['sender', 'reader', 'sleeper']) cg[r] = TestCgroup.create(r);
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', dir]);
  });
  after(async () => {
    for (const s of streams) s.kill();
    for (const c of Object.values(cg)) c.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the fallback in place of the missing tracepoint, and the policy is ok', async () => {
    const s = await agent!.scrape();
    assert.deepEqual(select(s, 'tally_policy_state', { policy: 'test-recv-fallback', state: 'ok' }).map((x) => x.value), [1]);
    const hooks = select(s, 'tally_bpf_hook_attached').filter((x) => x.labels.object.startsWith('policy/test-recv-fallback') && x.value === 1).map((x) => x.labels.hook);
    assert.ok(hooks.includes('tracepoint:skb/skb_copy_datagram_iovec'), `attached: ${hooks.join(', ')}`);
  });

  it('counts exactly the bytes each reader received, IPv4 and IPv6', async () => {
    const sizes: Array<[string, number]> = [['127.0.0.1', 100_003], ['::1', 200_005], ['127.0.0.1', 7]];
    for (const [host, bytes] of sizes) assert.deepEqual(await sendTo(undefined, { cg: cg.sender }, { cg: cg.reader }, host, bytes), { sent: bytes, received: bytes });
    const total = sizes.reduce((a, [, n]) => a + n, 0);
    const s = await agent!.scrape();
    assert.equal(sum(select(s, RECEIVED, { workload: cg.reader.name })), total);
    assert.equal(sum(select(s, SENT, { workload: cg.sender.name })), total);
    assert.equal(sum(select(s, RECEIVED, { workload: cg.sender.name })), 0);
  });

  it('counts a read that sleeps in recv() while another policy attaches to the same hooks', async () => {
    const stream = await PeerStream.open(undefined, { cg: cg.sender }, { cg: cg.sleeper }, '127.0.0.1');
    streams.push(stream);
    // The receiver now sleeps in recv(). A second copy of the policy attaches beside the first.
    fs.writeFileSync(path.join(dir, 'second.yaml'), fallbackPolicy().replace(/test-recv-fallback/, 'test-recv-fallback-2').replace(/test_fallback_tcp_/g, 'test_fallback2_tcp_'));
    await agent!.scrapeUntil((s) => select(s, 'tally_policy_state', { policy: 'test-recv-fallback-2', state: 'ok' }).some((x) => x.value === 1), 'the second policy loaded');
    await stream.send(50_021);
    const t = await stream.close();
    assert.equal(t.received, 50_021);
    const s = await agent!.scrape();
    assert.equal(sum(select(s, RECEIVED, { workload: cg.sleeper.name })), 50_021, 'the first policy counted the read it slept through');
  });
});
