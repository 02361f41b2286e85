/** Sends exactly N bytes over loopback TCP from one cgroup to another. */
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ChildProcess } from 'node:child_process';
import { TestCgroup } from './cgroup';
import { waitExit } from './agent-process';

const PEER = path.join(__dirname, '..', 'fixtures', 'tcp-peer.js');

function lines(child: ChildProcess): AsyncIterableIterator<string> {
  return readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

async function nextJson(it: AsyncIterableIterator<string>, child: ChildProcess): Promise<Record<string, number>> {
  const r = await it.next();
  if (r.done) throw new Error(`peer ${child.pid} ended without output`);
  return JSON.parse(r.value);
}

export interface Transfer {
  sent: number;
  received: number;
}

/** Which program sends: the node peer, or python3 for a second, different binary. */
export type SenderKind = 'node' | 'python3';

const PY_SEND = [
  'import json, socket, sys',
  's = socket.create_connection(("127.0.0.1", int(sys.argv[1])))',
  'n = int(sys.argv[2]); left = n; i = 0',
  'while left > 0:',
  '    k = min(left, [5, 500, 5000, 50000][i % 4]); s.sendall(b"p" * k); left -= k; i += 1',
  's.shutdown(socket.SHUT_WR); s.recv(1); s.close()',
  'print(json.dumps({"sent": n}), flush=True)',
].join('\n');

/** Runs a receiver in `to` and a sender in `from`; returns what each peer counted itself. */
export async function transfer(from: TestCgroup, to: TestCgroup, bytes: number, kind: SenderKind = 'node'): Promise<Transfer> {
  const receiver = to.spawn(process.execPath, [PEER, 'receive']);
  const rx = lines(receiver);
  const { port } = await nextJson(rx, receiver);
  const sender =
    kind === 'node'
      ? from.spawn(process.execPath, [PEER, 'send', String(port), String(bytes)])
      : from.spawn('/usr/bin/python3', ['-c', PY_SEND, String(port), String(bytes)]);
  const tx = lines(sender);
  const [{ sent }, { received }] = await Promise.all([nextJson(tx, sender), nextJson(rx, receiver)]);
  await Promise.all([waitExit(sender), waitExit(receiver)]);
  return { sent, received };
}
