/**
 * `tally top` end to end: the real agent, traffic from known cgroups, and
 * `tally top` in a real terminal (tmux), driven by keys and read back from
 * the screen; then the snapshot it prints when its output is a pipe. Rates
 * depend on time, so the screen is checked for its rows, labels and order,
 * and rates within bounds; the snapshot's increases are exact.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { useScenario } from './helpers/scenario';
import { AGENT_NODE_FLAGS, MAIN, scaled, waitExit } from './helpers/agent-process';
import { transfer } from './helpers/tcp-traffic';
import { TmuxSession } from './helpers/tmux';
import { waitFor } from './helpers/cleanup';

const UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, k: 1e3, M: 1e6 };

/** "195.3 KiB" or "0.50" or "1.2k" as a number. */
function rateOf(cell: string): number {
  const m = /^(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB|k|M)?$/.exec(cell);
  assert.ok(m, `"${cell}" is a rate`);
  return Number(m[1]) * UNITS[m[2] ?? ''];
}

interface Table {
  heading: string[];
  rows: Map<string, string[]>;
  order: string[];
}

/** The table on the screen: the line that starts with WORKLOAD, and the rows under it. */
function tableOf(lines: string[]): Table {
  const at = lines.findIndex((l) => /^\*?WORKLOAD /.test(l));
  assert.ok(at >= 0, `a table on the screen:\n${lines.join('\n')}`);
  const cells = (l: string): string[] => l.split(/\s{2,}/);
  const rows = lines.slice(at + 1).filter((l) => l !== '').map(cells);
  return { heading: cells(lines[at]), rows: new Map(rows.map((r) => [r[0], r.slice(1)])), order: rows.map((r) => r[0]) };
}

const above = (t: Table, a: string, b: string): boolean => t.order.indexOf(a) >= 0 && t.order.indexOf(b) >= 0 && t.order.indexOf(a) < t.order.indexOf(b);

/** Listens on loopback, prints its port, reads one connection until killed. */
const RECEIVER = 'import socket\ns = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)\nprint(s.getsockname()[1], flush=True)\nc, _ = s.accept()\nwhile c.recv(65536): pass\n';
/** Sends 4 KiB every 20 ms to the port it is given, until killed. */
const SENDER = 'import socket, sys, time\nc = socket.create_connection(("127.0.0.1", int(sys.argv[1])))\nwhile True:\n    c.sendall(b"s" * 4096); time.sleep(0.02)\n';
/** Starts two programs (true, sleep) every 200 ms or more. */
const EXECS = 'while :; do /bin/true; sleep 0.2; done';
/** Writes 8 KiB to a regular file every 50 ms until killed. */
const WRITER = 'import sys, time\nf = open(sys.argv[1], "wb")\nwhile True:\n    f.write(b"w" * 8192); f.flush(); time.sleep(0.05)\n';

/** How far a rate may run over its bound: two reads of /metrics are timed by the client, the counts by the agent. */
const SLACK = 1.5;

describe('tally top against a running agent', () => {
  const sc = useScenario([], ['sender', 'receiver', 'writer', 'snapsend', 'snaprecv']);

  it('shows live rows per workload in a terminal; keys sort them; q quits', async () => {
    const { sender, receiver, writer } = sc.cg;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-top-'));
    const written = path.join(dir, 'written');
    // Steady flows from long-lived processes, so every refresh sees each of
    // them even on a loaded machine (a process per transfer spends most of
    // its time starting).
    const rx = receiver.spawn('/usr/bin/python3', ['-c', RECEIVER]);
    let port = '';
    rx.stdout!.on('data', (d) => (port += d));
    await waitFor(() => port.endsWith('\n'), 'the receiver to listen');
    sender.spawn('/usr/bin/python3', ['-c', SENDER, port.trim()]);
    sender.spawn('/bin/sh', ['-c', EXECS]);
    writer.spawn('/usr/bin/python3', ['-c', WRITER, written]);
    // A tall terminal, so rows of the host's other cgroups cannot push ours off it.
    const term = TmuxSession.start(
      ['sh', '-c', '"$@"; echo "tally top exited with $?"; sleep 600', 'sh', process.execPath, ...AGENT_NODE_FLAGS, MAIN, 'top', '--server', `127.0.0.1:${sc.agent.port}`, '--interval', '1s'],
      { width: 160, height: 200 },
    );
    try {
      const ours = [sender.name, receiver.name, writer.name];
      // One refresh where each shows in its column: bytes sent, received, written, and programs started.
      const busy = (t: Table): boolean =>
        rateOf(t.rows.get(sender.name)?.[0] ?? '0') > 0 &&
        rateOf(t.rows.get(sender.name)?.[4] ?? '0') > 0 &&
        rateOf(t.rows.get(receiver.name)?.[1] ?? '0') > 0 &&
        rateOf(t.rows.get(writer.name)?.[3] ?? '0') > 0;
      let lines = await term.waitFor((l) => l.some((x) => /^\*?WORKLOAD /.test(x)) && busy(tableOf(l)), 'rates for the sender, the receiver and the writer', 30000);

      assert.match(lines[0], new RegExp(`^tally top  127\\.0\\.0\\.1:${sc.agent.port}  by workload  every 1s  \\d\\d:\\d\\d:\\d\\d UTC  agent \\S+$`));
      assert.match(lines[1], /^series [\d,]+ \| map \S+ [\d,]+\/[\d,]+ \(\d+\.\d%\) \| map overflow [\d,]+ updates, [\d,]+ lost$/);
      assert.match(lines[2], /^sort: TCP SENT\/s, highest first {2}\(keys: /);
      let t = tableOf(lines);
      assert.deepEqual(t.heading, ['WORKLOAD', '*TCP SENT/s', 'TCP RECV/s', 'RETRANS/s', 'FILE WR/s', 'EXECS/s']);
      // Each busy in its own column, idle in the others it has nothing to do with.
      // Bounds from the sleeps: at most one more chunk than whole periods in an interval of 1 s or more, and
      // SLACK for a scrape the loaded machine answered late (its counts then cover more than the interval).
      const [sent, recv, , file, execs] = t.rows.get(sender.name)!.map(rateOf);
      assert.ok(sent > 0 && sent <= 4096 * 51 * SLACK, `sender: ${sent} B/s`);
      assert.ok(execs > 0 && execs <= 2 * 6 * SLACK, `sender: ${execs} execs/s`);
      assert.equal(recv, 0);
      assert.equal(file, 0);
      assert.equal(rateOf(t.rows.get(receiver.name)![0]), 0, 'the receiver sends nothing');
      const fileRate = rateOf(t.rows.get(writer.name)![3]);
      assert.ok(fileRate > 0 && fileRate <= 8192 * 21 * SLACK, `writer: ${fileRate} B/s`);
      assert.ok(rateOf(t.rows.get(receiver.name)![1]) <= 4096 * 51 * SLACK);
      assert.ok(above(t, sender.name, receiver.name), `sorted by sent: ${t.order.join(', ')}`);

      term.press('Right');
      lines = await term.waitFor((l) => l.some((x) => x.includes('*TCP RECV/s')), 'the sort to move to TCP RECV/s');
      t = tableOf(lines);
      assert.match(lines[2], /^sort: TCP RECV\/s, highest first/);
      assert.ok(above(t, receiver.name, sender.name), `sorted by received: ${t.order.join(', ')}`);
      term.type('<');
      await term.waitFor((l) => l.some((x) => x.includes('*TCP SENT/s')), 'the sort to move back to TCP SENT/s');

      term.type('4');
      t = tableOf(await term.waitFor((l) => l.some((x) => x.includes('*FILE WR/s')), 'the sort to move to FILE WR/s'));
      assert.ok(above(t, writer.name, sender.name) && above(t, writer.name, receiver.name), `sorted by file writes: ${t.order.join(', ')}`);

      term.type('r');
      lines = await term.waitFor((l) => l.some((x) => x.startsWith('sort: FILE WR/s, lowest first')), 'the order to reverse');
      t = tableOf(lines);
      assert.ok(above(t, sender.name, writer.name) && above(t, receiver.name, writer.name), `reversed: ${t.order.join(', ')}`);

      term.type('0');
      t = tableOf(await term.waitFor((l) => l.some((x) => x.startsWith('*WORKLOAD ')), 'the sort to move to the names'));
      assert.deepEqual(t.order, [...t.order].sort());
      assert.deepEqual(ours.filter((n) => t.rows.has(n)).sort(), [...ours].sort());

      term.type('q');
      lines = await term.waitFor((l) => l.some((x) => x.startsWith('tally top exited with')), 'tally top to quit');
      assert.ok(lines.includes('tally top exited with 0'), lines.join('\n'));
      assert.ok(!lines.some((l) => l.startsWith('tally top  ')), 'the terminal is back as it was (the alternate screen is gone)');
    } finally {
      term.kill();
      // The flows end with their cgroups; stop them now, before the snapshot's test.
      for (const cg of [sender, receiver, writer]) cg.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints one snapshot through a pipe: exact increases over the interval, and the table', async () => {
    const { snapsend, snaprecv } = sc.cg;
    const N = 1_234_567;
    // Long enough for a transfer to start and end inside it on a loaded machine (or an emulated guest).
    const S = scaled(5000) / 1000;
    const argv = [...AGENT_NODE_FLAGS, MAIN, 'top', '--server', `127.0.0.1:${sc.agent.port}`, '--interval', `${S}s`, '--metric', 'sent,received,execs'];
    const run = async (extra: string[], between: () => Promise<void>): Promise<{ out: string; moved: boolean }> => {
      const child = spawn(process.execPath, [...argv, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      try {
        await waitFor(() => err.includes('first read done') || child.exitCode !== null, 'the first read', scaled(20000));
        assert.equal(err, `tally top: first read done; the rates are over the next ${S}s\n`);
        await between();
        const moved = out === '';
        const exit = await waitExit(child, 20000);
        assert.equal(exit.code, 0, err);
        return { out, moved };
      } finally {
        child.kill('SIGKILL');
      }
    };

    const json = await run(['--json'], async () => {
      const t = await transfer(snapsend, snaprecv, N);
      assert.deepEqual(t, { sent: N, received: N });
    });
    assert.ok(json.moved, 'the transfer ended before the second read');
    const snap = JSON.parse(json.out);
    const row = (name: string): { rates: Record<string, number>; increases: Record<string, number> } => snap.rows.find((r: { name: string }) => r.name === name);
    assert.ok(snap.seconds >= S && snap.seconds < 3 * S, `${snap.seconds}`);
    assert.deepEqual(row(snapsend.name).increases, { sent: N, received: 0, execs: 1 }, 'one node started in the cgroup, which sent N bytes');
    assert.deepEqual(row(snaprecv.name).increases, { sent: 0, received: N, execs: 1 });
    assert.ok(Math.abs(row(snapsend.name).rates.sent - N / snap.seconds) < 1e-6);
    assert.equal(snap.by, 'workload');
    assert.ok(snap.health.series > 0 && snap.health.maps.length > 0, JSON.stringify(snap.health));

    const text = await run([], async () => {
      await transfer(snapsend, snaprecv, N);
    });
    const lines = text.out.trimEnd().split('\n');
    assert.ok(!text.out.includes('\x1b'), 'no terminal sequences in a pipe');
    assert.match(lines[0], /^tally top  http:\/\/127\.0\.0\.1:\d+\/metrics  by workload  rates over \d+\.\d\ds to /);
    assert.match(lines[1], /^series [\d,]+ \| map /);
    const t = tableOf(lines);
    assert.deepEqual(t.heading, ['WORKLOAD', '*TCP SENT/s', 'TCP RECV/s', 'EXECS/s']);
    const [sent, recv] = t.rows.get(snapsend.name)!.map(rateOf);
    // N bytes over S seconds and a little more (241 KiB/s for 5 s), shown to 0.1 KiB.
    assert.ok(sent <= N / S + 100 && sent >= N / (3 * S), `${sent}`);
    assert.equal(recv, 0);
    assert.ok(above(t, snapsend.name, snaprecv.name));
  });
});
