/**
 * Exact per-cgroup TCP byte accounting, end to end: the real agent, real BPF,
 * two leaf cgroups, and N bytes whose count the test itself controls.
 */
import { after, before, describe, it } from 'node:test';
import { useScenario } from './helpers/scenario';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { kernelCounters, kernelLabelSets, kernelPromoted } from './helpers/kernel-maps';
import { BUCKET_SUM, KEY_LABEL_SET, KEY_RAW_CGROUP } from '../src/bpf/layout';
import { kernelIdOf, select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { waitFor } from './helpers/cleanup';

const SENT = 'tally_tcp_sent_bytes_total';
const RECEIVED = 'tally_tcp_received_bytes_total';
const SEND_SIZE = 'tally_tcp_send_size_bytes';

const NODE = fs.realpathSync(process.execPath);
const PYTHON = fs.realpathSync('/usr/bin/python3');

describe('TCP bytes with the default label filter', () => {
  const sc = useScenario([], ['sender', 'receiver']);

  it('counts exactly N bytes sent by one cgroup and received by the other', async () => {
    const { agent } = sc;
    const { sender, receiver } = sc.cg;
    const N = 3_000_000 + Math.floor(Math.random() * 100_000);
    const t = await transfer(sender, receiver, N);
    assert.equal(t.sent, N);
    assert.equal(t.received, N, 'the receiver itself read N bytes');

    const series = await agent.scrape();
    assert.equal(sum(select(series, SENT, { workload: sender.name })), N);
    assert.equal(sum(select(series, RECEIVED, { workload: receiver.name })), N);
    // Nothing leaks across: the sender received nothing and the receiver sent nothing.
    assert.equal(sum(select(series, RECEIVED, { workload: sender.name })), 0);
    assert.equal(sum(select(series, SENT, { workload: receiver.name })), 0);

    // Labelled with the workload and the executable's full path; namespace and pod absent.
    assert.deepEqual(select(series, SENT, { workload: sender.name }).map((s) => s.labels), [{ workload: sender.name, binary: NODE }]);
    assert.deepEqual(select(series, RECEIVED, { workload: receiver.name }).map((s) => s.labels), [{ workload: receiver.name, binary: NODE }]);
  });

  it('splits one cgroup by binary, each exact, and stays cumulative', async () => {
    const { agent } = sc;
    const { sender, receiver } = sc.cg;
    const before = sum(select(await agent.scrape(), SENT, { workload: sender.name, binary: NODE }));
    const M = 250_001;
    const K = 99_999;
    await transfer(sender, receiver, M, 'python3');
    await transfer(sender, receiver, K, 'node');
    const series = await agent.scrape();
    assert.equal(sum(select(series, SENT, { workload: sender.name, binary: PYTHON })), M);
    assert.equal(sum(select(series, SENT, { workload: sender.name, binary: NODE })), before + K);
  });
});

describe('TCP bytes with --metrics-label-filter workload', () => {
  const sc = useScenario(['--metrics-label-filter', 'workload'], ['sender', 'receiver']);

  it('series carry only the workload label; two binaries share one kernel entry', async () => {
    const { agent } = sc;
    const { sender, receiver } = sc.cg;
    const N = 777_777;
    const M = 31_337;
    await transfer(sender, receiver, N, 'node');
    await transfer(sender, receiver, M, 'python3');
    const series = await agent.scrape();
    for (const s of [...select(series, SENT), ...select(series, RECEIVED)]) {
      assert.deepEqual(Object.keys(s.labels).filter((k) => k !== 'workload' && k !== 'overflow'), [], `unexpected labels on ${JSON.stringify(s)}`);
    }
    assert.deepEqual(select(series, SENT, { workload: sender.name }).map((s) => s.value), [N + M]);
    assert.deepEqual(select(series, RECEIVED, { workload: receiver.name }).map((s) => s.value), [N + M]);

    // In the kernel: the sender's sum of send sizes is not keyed by binary. It
    // is counted under the raw cgroup until the agent maps it to its label
    // set (a sweep then folds the raw entry into user space), then under that
    // set, then (promoted) outside the hash: where the two transfers land is
    // the sweeps' timing (a TCG guest's is slow), so every place is looked
    // at. The exact total is the series' above. The sent-bytes counter is
    // read from the sum and has no entry of its own.
    const pid = agent.child.pid!;
    const sizeId = kernelIdOf(series, SEND_SIZE);
    const labelSet = kernelLabelSets(pid).get(sender.id);
    const mine = (e: { cgroupId: bigint; flags: number; metric: number; bucket: number }): boolean =>
      e.metric === sizeId && e.bucket === BUCKET_SUM &&
      ((e.flags === KEY_RAW_CGROUP && e.cgroupId === sender.id) || (labelSet !== undefined && e.flags === KEY_LABEL_SET && e.cgroupId === BigInt(labelSet)));
    const kernel = kernelCounters(pid);
    const entries = [...kernel.filter(mine), ...kernelPromoted(pid).filter(mine)];
    assert.ok(entries.length > 0, 'the sender has kernel entries');
    assert.deepEqual(entries.map((e) => e.binaryId), entries.map(() => 0n), 'no entry is keyed by binary');
    assert.deepEqual(kernel.filter((e) => e.metric === kernelIdOf(series, SENT)), []);
  });
});

/** cgroup2's superblock magic: /sys/fs/cgroup is already the v2 hierarchy (a pure v2 host, the kernel matrix's guests). */
const PURE_V2 = fs.statfsSync('/sys/fs/cgroup').type === 0x63677270;

describe('TCP bytes on a pure cgroup v2 layout', () => {
  // On a hybrid host, in a private mount namespace, mount the v2 hierarchy at
  // /sys/fs/cgroup itself, as on a pure v2 host: same cgroups, the other layout.
  const sc = useScenario(['--metrics-label-filter', 'workload'], ['sender', 'receiver'], {
    shellPrefix: PURE_V2 ? '' : 'umount -l /sys/fs/cgroup/unified 2>/dev/null; mount -t cgroup2 none /sys/fs/cgroup',
  });

  it('finds the hierarchy at /sys/fs/cgroup and labels the bytes exactly', async () => {
    const { agent } = sc;
    const { sender, receiver } = sc.cg;
    assert.match(agent.stderr, /cgroup2=\/sys\/fs\/cgroup /);
    const N = 400_003;
    await transfer(sender, receiver, N);
    const series = await agent.scrape();
    assert.deepEqual(select(series, SENT, { workload: sender.name }).map((s) => s.value), [N]);
    assert.deepEqual(select(series, RECEIVED, { workload: receiver.name }).map((s) => s.value), [N]);
  });
});

describe('a process that was running before the agent started', () => {
  let agent: AgentProcess | undefined;
  let sender: TestCgroup;
  let receiver: TestCgroup;

  before(() => {
    sender = TestCgroup.create('early');
    receiver = TestCgroup.create('receiver');
  });
  after(async () => {
    sender?.destroy();
    receiver?.destroy();
    await agent?.stop();
  });

  it('is labelled with its executable, resolved in the kernel on its first send', async () => {
    // python3 starts (and execs) before the agent exists, then waits for a port.
    const script = [
      'import json, socket, sys',
      'print("ready", flush=True)',
      'port, n = map(int, sys.stdin.readline().split())',
      's = socket.create_connection(("127.0.0.1", port)); s.sendall(b"e" * n)',
      's.shutdown(socket.SHUT_WR); s.recv(1); s.close()',
      'print(json.dumps({"sent": n}), flush=True)',
    ].join('\n');
    const early = sender.spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    early.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 'python3 to start');

    agent = await AgentProcess.start();
    const peer = receiver.spawn(process.execPath, [require('node:path').join(__dirname, 'fixtures', 'tcp-peer.js'), 'receive']);
    let rx = '';
    peer.stdout!.on('data', (d) => (rx += d));
    await waitFor(() => rx.includes('port'), 'the receiver to listen');
    const { port } = JSON.parse(rx.split('\n')[0]);
    const M = 654_321;
    early.stdin!.end(`${port} ${M}\n`);
    await waitFor(() => out.includes('sent') && rx.includes('received'), 'the transfer');

    const series = await agent.scrape();
    assert.deepEqual(select(series, SENT, { workload: sender.name }).map((s) => [s.labels.binary, s.value]), [[PYTHON, M]]);
  });
});

describe('TCP bytes with --metrics-label-filter binary', () => {
  const sc = useScenario(['--metrics-label-filter', 'binary'], ['sender', 'receiver']);

  it('the kernel keys by binary only, not by cgroup', async () => {
    const { agent } = sc;
    const { sender, receiver } = sc.cg;
    await transfer(sender, receiver, 50_000, 'python3');
    const series = await agent.scrape();
    for (const s of [...select(series, SENT), ...select(series, RECEIVED)]) {
      assert.deepEqual(Object.keys(s.labels).filter((k) => k !== 'binary' && k !== 'overflow'), [], JSON.stringify(s));
    }
    const entries = kernelCounters(agent.child.pid!);
    assert.ok(entries.length > 0);
    assert.deepEqual(entries.filter((e) => e.cgroupId !== 0n), [], 'no entry is keyed by cgroup');
    assert.ok(select(series, SENT, { binary: PYTHON })[0].value >= 50_000);
  });
});
