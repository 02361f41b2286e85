/**
 * UDP datagrams to a chosen remote address, from a known cgroup (and network
 * namespace) to another, for tests of udp-peers: a python3 receiver bound to
 * the address that reads an agreed number of datagrams, and a sender that
 * sends datagrams of given sizes, from a connected socket (send) or an
 * unconnected one (sendto). Each side reports the payload bytes it moved:
 * the ground truth the agent's numbers are checked against.
 */
import * as readline from 'node:readline';
import { ChildProcess } from 'node:child_process';
import { waitExit } from './agent-process';
import { NetnsPair } from './netns';
import { Place } from './peer-traffic';

/** argv: HOST COUNT [PORT]. Binds PORT (default: any), prints it, then {"received": BYTES, "datagrams": N} after COUNT datagrams (or 20 s). */
const RECEIVER = [
  'import json, socket, sys',
  'host, count, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0',
  's = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, port))',
  's.settimeout(20); print(s.getsockname()[1], flush=True)',
  'n = k = 0',
  'try:',
  '    while k < count:',
  '        b, _ = s.recvfrom(65536); n += len(b); k += 1',
  'except socket.timeout: pass',
  'print(json.dumps({"received": n, "datagrams": k}), flush=True)',
].join('\n');

/** argv: HOST PORT MODE SIZE...; MODE connect (send) or sendto. Prints {"sent": BYTES}. */
const SENDER = [
  'import json, socket, sys',
  'host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]',
  's = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM); total = 0',
  'if mode == "connect": s.connect((host, port))',
  'for n in map(int, sys.argv[4:]):',
  '    sent = s.send(b"u" * n) if mode == "connect" else s.sendto(b"u" * n, (host, port))',
  '    assert sent == n; total += n',
  'print(json.dumps({"sent": total}), flush=True)',
].join('\n');

export type UdpMode = 'connect' | 'sendto';

function start(pair: NetnsPair | undefined, at: Place, script: string, args: string[]): ChildProcess {
  const argv = ['-c', script, ...args];
  const opts = { stdio: ['pipe', 'pipe', 'pipe'] as Array<'pipe'> };
  return at.ns && pair ? pair.spawn(at.ns, at.cg, '/usr/bin/python3', argv, opts) : at.cg.spawn('/usr/bin/python3', argv, opts);
}

async function firstLines(child: ChildProcess, n: number): Promise<string[]> {
  const out: string[] = [];
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  for await (const line of readline.createInterface({ input: child.stdout! })) {
    out.push(line);
    if (out.length === n) return out;
  }
  throw new Error(`python3 ${child.pid} ended early: ${err}`);
}

/** Datagrams of `sizes` from `from` to `to` at host; the payload bytes each side counted. */
export async function datagrams(pair: NetnsPair | undefined, from: Place, to: Place, host: string, mode: UdpMode, sizes: number[], port?: number): Promise<{ sent: number; received: number }> {
  const receiver = start(pair, to, RECEIVER, [host, String(sizes.length), ...(port === undefined ? [] : [String(port)])]);
  let sender: ChildProcess | undefined;
  try {
    const rx = readline.createInterface({ input: receiver.stdout! })[Symbol.asyncIterator]();
    const port = (await rx.next()).value as string | undefined;
    if (!port) throw new Error(`the UDP receiver on ${host} did not start`);
    sender = start(pair, from, SENDER, [host, port, mode, ...sizes.map(String)]);
    const [line] = await firstLines(sender, 1);
    const { sent } = JSON.parse(line);
    const r = await rx.next();
    if (r.done) throw new Error(`the UDP receiver on ${host} ended early`);
    const { received, datagrams: got } = JSON.parse(r.value as string);
    if (got !== sizes.length) throw new Error(`${got} of ${sizes.length} datagrams reached ${host}`);
    await waitExit(sender);
    await waitExit(receiver);
    return { sent, received };
  } catch (e) {
    sender?.kill('SIGKILL');
    receiver.kill('SIGKILL');
    throw e;
  }
}
