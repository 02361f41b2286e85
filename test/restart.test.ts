/**
 * Counters across an agent restart (--bpf-pin-dir, docs/restart.md), end to
 * end: real BPF, two leaf cgroups, and a sender paced so that it runs
 * before, during and after the restart, with no agent running for a while.
 * The peers count their own bytes; the counters must hold every one of them.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { AgentProcess, awaitUnloaded, scaled, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';
import { ISOLATED, restartState, usePinDir } from './helpers/pin-dir';

const SENT = 'tally_tcp_sent_bytes_total';
const RECEIVED = 'tally_tcp_received_bytes_total';
const PEER = path.join(__dirname, 'fixtures', 'tcp-peer.js');

/** Sends `chunk` bytes every `everyMs` for `forMs`, then prints {"sent": n}: traffic that spans a restart. */
const PACED_SEND = [
  'import json, socket, sys, time',
  's = socket.create_connection(("127.0.0.1", int(sys.argv[1])))',
  'chunk, every, end = int(sys.argv[2]), float(sys.argv[3]) / 1000, time.time() + float(sys.argv[4]) / 1000',
  'n = 0',
  'while time.time() < end:',
  '    s.sendall(b"r" * chunk); n += chunk; time.sleep(every)',
  's.shutdown(socket.SHUT_WR); s.recv(1); s.close()',
  'print(json.dumps({"sent": n}), flush=True)',
].join('\n');

async function firstJson(child: ReturnType<TestCgroup['spawn']>): Promise<Record<string, number>> {
  const it = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const r = await it.next();
  if (r.done) throw new Error(`peer ${child.pid} ended without output`);
  return JSON.parse(r.value);
}

function pacedTransfer(from: TestCgroup, to: TestCgroup, forMs: number): Promise<{ sent: number; received: number }> {
  const receiver = to.spawn(process.execPath, [PEER, 'receive']);
  const rxLines = readline.createInterface({ input: receiver.stdout! })[Symbol.asyncIterator]();
  return (async () => {
    const { port } = JSON.parse((await rxLines.next()).value);
    const sender = from.spawn('/usr/bin/python3', ['-c', PACED_SEND, String(port), '997', '3', String(forMs)]);
    const [{ sent }, rx] = await Promise.all([firstJson(sender), rxLines.next()]);
    await Promise.all([waitExit(sender, forMs + 10000), waitExit(receiver, forMs + 10000)]);
    return { sent, received: JSON.parse(rx.value).received };
  })();
}

describe('restart with --bpf-pin-dir', () => {
  const cgs: TestCgroup[] = [];
  const agents: AgentProcess[] = [];
  after(async () => {
    for (const a of agents) await a.stop();
    for (const c of cgs) c.destroy();
  });

  it('finds every byte sent before, during (no agent running) and after a restart, and no series restarts', async (tc) => {
    const dir = usePinDir(tc);
    const sender = TestCgroup.create('sender');
    const receiver = TestCgroup.create('receiver');
    cgs.push(sender, receiver);
    const flags = ['--bpf-pin-dir', dir, ...ISOLATED];
    const a = await AgentProcess.start(flags);
    agents.push(a);
    assert.deepEqual(restartState(await a.scrape()), { fresh: 1 });

    const traffic = pacedTransfer(sender, receiver, scaled(8000));
    const before = await a.scrapeUntil((s) => sum(select(s, SENT, { workload: sender.name })) > 0, 'the first bytes');
    const last = sum(select(before, SENT, { workload: sender.name }));
    const aPrograms = a.programIds();
    assert.equal((await a.stop()).code, 0);
    assert.ok(fs.existsSync(path.join(dir, 'state')), 'the state is pinned');
    assert.ok(fs.readdirSync(path.join(dir, 'links')).length > 0, 'the links are pinned');
    // No agent runs for a while; the pinned programs go on counting.
    await new Promise((r) => setTimeout(r, scaled(1500)));

    const b = await AgentProcess.start(flags);
    agents.push(b);
    const first = await b.scrape();
    assert.deepEqual(restartState(first), { adopted: 1 });
    assert.ok(sum(select(first, SENT, { workload: sender.name })) >= last, 'the first scrape continues from the last one');
    assert.ok(!fs.existsSync(dir), 'the pins are taken over and removed');
    assert.deepEqual(await awaitUnloaded(aPrograms), [], "the previous agent's programs are detached once taken over");

    const t = await traffic;
    assert.equal(t.received, t.sent, 'the receiver read every byte');
    const series = await b.scrapeUntil((s) => sum(select(s, RECEIVED, { workload: receiver.name })) >= t.received, 'every byte').catch(() => b.scrape());
    const overflow = select(series, SENT).filter((x) => x.labels.overflow === 'true');
    assert.equal(sum(select(series, SENT, { workload: sender.name })), t.sent, `every byte sent, exactly; before the restart ${last}; overflow ${JSON.stringify(overflow)}; the previous agent's log:\n${a.stderr}\nthe new agent's log:\n${b.stderr}`);
    assert.equal(sum(select(series, RECEIVED, { workload: receiver.name })), t.received, 'every byte received, exactly');

    // And counting goes on as before, in the new agent's own maps.
    const more = await transfer(sender, receiver, 123_457);
    const after2 = await b.scrape();
    assert.equal(sum(select(after2, SENT, { workload: sender.name })), t.sent + more.sent);
  });

  it('exports a cgroup removed while no agent ran with every byte it sent, until the TTL retires it', async (tc) => {
    const dir = usePinDir(tc);
    const doomed = TestCgroup.create('doomed');
    const receiver = TestCgroup.create('receiver');
    cgs.push(doomed, receiver);
    const flags = ['--bpf-pin-dir', dir, '--metrics-series-ttl', '3s', ...ISOLATED];
    const a = await AgentProcess.start(flags);
    agents.push(a);
    const first = await transfer(doomed, receiver, 111_111);
    assert.equal(sum(select(await a.scrape(), SENT, { workload: doomed.name })), first.sent);
    await a.stop();
    // While no agent runs: more bytes, then the cgroup goes.
    const second = await transfer(doomed, receiver, 22_222);
    doomed.destroy();

    const b = await AgentProcess.start(flags);
    agents.push(b);
    assert.deepEqual(restartState(await b.scrape()), { adopted: 1 });
    assert.equal(sum(select(await b.scrape(), SENT, { workload: doomed.name })), first.sent + second.sent, 'every byte of the removed cgroup, under its own labels');
    await b.scrapeUntil((s) => select(s, SENT, { workload: doomed.name }).length === 0, 'the TTL to retire the removed cgroup', 20000);
  });

});
