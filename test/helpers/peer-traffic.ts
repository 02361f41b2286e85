/**
 * TCP traffic to a chosen remote address, from a known cgroup (and network
 * namespace) to another, for tests of peer classes: a python3 receiver bound
 * to the address, and a sender that sends what its stdin asks, line by line,
 * and says so only once the bytes are in the socket (sock_send_length has
 * fired by then: it fires inside the send call). Each side reports what it
 * moved itself: the ground truth the agent's numbers are checked against.
 */
import * as os from 'node:os';
import * as readline from 'node:readline';
import { ChildProcess, execFileSync } from 'node:child_process';
import { TestCgroup } from './cgroup';
import { NetnsPair } from './netns';
import { waitExit } from './agent-process';
import { select, Series } from './prom-text';

/** argv: HOST. Prints its port, then per connection {"received": N} once the peer closed it. */
const RECEIVER = [
  'import json, socket, sys',
  'host = sys.argv[1]',
  'ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET); ls.bind((host, 0)); ls.listen(8)',
  'print(ls.getsockname()[1], flush=True)',
  'while True:',
  '    c, _ = ls.accept(); n = 0',
  '    while True:',
  '        b = c.recv(65536)',
  '        if not b: break',
  '        n += len(b)',
  '    c.close(); print(json.dumps({"received": n}), flush=True)',
].join('\n');

/** argv: HOST PORT. Per stdin line N: sends N bytes, prints "ok". At stdin's end: closes, prints {"sent": total}. */
const SENDER = [
  'import json, socket, sys',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2]))); total = 0',
  'print("connected", flush=True)',
  'for line in sys.stdin:',
  '    n = int(line); s.sendall(b"p" * n); total += n; print("ok", flush=True)',
  's.shutdown(socket.SHUT_WR)',
  'while s.recv(65536): pass',
  's.close(); print(json.dumps({"sent": total}), flush=True)',
].join('\n');

/** Where a process runs: a cgroup, and a namespace of the pair (none: the agent's own). */
export interface Place {
  cg: TestCgroup;
  ns?: string;
}

function start(pair: NetnsPair | undefined, at: Place, script: string, args: string[]): ChildProcess {
  const argv = ['-c', script, ...args];
  const opts = { stdio: ['pipe', 'pipe', 'pipe'] as Array<'pipe'> };
  return at.ns && pair ? pair.spawn(at.ns, at.cg, '/usr/bin/python3', argv, opts) : at.cg.spawn('/usr/bin/python3', argv, opts);
}

function lines(child: ChildProcess): () => Promise<string> {
  const it = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return async () => {
    const r = await it.next();
    if (r.done) throw new Error(`python3 ${child.pid} ended early: ${err}`);
    return r.value;
  };
}

/** A sender's connection, driven step by step: send(n) resolves once n bytes are sent. */
export class PeerStream {
  private constructor(
    private readonly sender: ChildProcess,
    private readonly receiver: ChildProcess,
    private readonly tx: () => Promise<string>,
    private readonly rx: () => Promise<string>,
  ) {}

  static async open(pair: NetnsPair | undefined, from: Place, to: Place, host: string): Promise<PeerStream> {
    const receiver = start(pair, to, RECEIVER, [host]);
    const rx = lines(receiver);
    const port = await rx();
    const sender = start(pair, from, SENDER, [host, port]);
    const tx = lines(sender);
    await tx(); // connected
    return new PeerStream(sender, receiver, tx, rx);
  }

  async send(bytes: number): Promise<void> {
    this.sender.stdin!.write(`${bytes}\n`);
    const r = await this.tx();
    if (r !== 'ok') throw new Error(`sender said ${r}`);
  }

  /** Closes the connection; what each side counted. */
  async close(): Promise<{ sent: number; received: number }> {
    this.sender.stdin!.end();
    const { sent } = JSON.parse(await this.tx());
    const { received } = JSON.parse(await this.rx());
    await waitExit(this.sender);
    this.receiver.kill();
    await waitExit(this.receiver);
    return { sent, received };
  }

  /** Ends both processes, whatever state they are in (cleanup after a failure). */
  kill(): void {
    this.sender.kill('SIGKILL');
    this.receiver.kill('SIGKILL');
  }
}

/** One connection that moves `bytes` from `from` to `to` at host; what each side counted. */
export async function sendTo(pair: NetnsPair | undefined, from: Place, to: Place, host: string, bytes: number): Promise<{ sent: number; received: number }> {
  const s = await PeerStream.open(pair, from, to, host);
  try {
    await s.send(bytes);
    return await s.close();
  } catch (e) {
    s.kill();
    throw e;
  }
}

/** Each peer class's bytes of one workload's series of a metric by peer. */
export function byClass(series: Series[], metric: string, workload: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(series, metric, { workload })) out[s.labels.peer_class] = (out[s.labels.peer_class] ?? 0) + s.value;
  return out;
}

/** Each peer's bytes of one workload's series of a metric by peer, keyed class/namespace/service. */
export function byPeer(series: Series[], metric: string, workload: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of select(series, metric, { workload })) {
    const key = `${s.labels.peer_class}/${s.labels.peer_namespace ?? ''}/${s.labels.peer_service ?? ''}`;
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/**
 * Extra networks on the pair's veth, .1 / ::1 in a and .2 / ::2 in b, for
 * tests of peer classes: 203.0.113.0/24 and 198.51.100.0/24, and three IPv6
 * /64s whose prefixes carry a tag of the pair's own, so pairs side by side
 * never share one.
 */
export function addPeerNetworks(pair: NetnsPair): { v6vpc: string; v6partner: string; v6unknown: string } {
  const tag = pair.addrA.split('.').slice(1, 3).map(Number).map((n) => n.toString(16)).join('');
  for (const net of ['203.0.113', '198.51.100']) {
    execFileSync('ip', ['-n', pair.a, 'addr', 'add', `${net}.1/24`, 'dev', pair.devA]);
    execFileSync('ip', ['-n', pair.b, 'addr', 'add', `${net}.2/24`, 'dev', pair.devB]);
  }
  const v6 = { v6vpc: `fd00:${tag}::`, v6partner: `2001:db8:${tag}::`, v6unknown: `3fff:${tag}::` };
  for (const prefix of Object.values(v6)) {
    // nodad: usable at once, without duplicate address detection's wait.
    execFileSync('ip', ['-n', pair.a, 'addr', 'add', `${prefix}1/64`, 'dev', pair.devA, 'nodad']);
    execFileSync('ip', ['-n', pair.b, 'addr', 'add', `${prefix}2/64`, 'dev', pair.devB, 'nodad']);
  }
  return v6;
}

/** A non-loopback IPv4 address of this host (the agent's network namespace): peer class node. */
export function nodeAddress(): string | undefined {
  return Object.values(os.networkInterfaces()).flat().find((a) => a && !a.internal && a.family === 'IPv4')?.address;
}
