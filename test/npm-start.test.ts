/**
 * The README's promise, literally: `npm start -- --metrics-server 127.0.0.1:PORT`,
 * then the two-cgroup scenario reads exactly N on both sides.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { awaitUnloaded, waitExit } from './helpers/agent-process';
import { processGroup, programIdsOf } from './helpers/procfs';
import { TestCgroup } from './helpers/cgroup';
import { parsePromText, select, sum } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('npm start', () => {
  let npm: ChildProcess;
  let port: number;
  let log = '';
  let sender: TestCgroup;
  let receiver: TestCgroup;

  before(async () => {
    port = await freePort();
    // Its own process group, so the agent under npm can be signalled with it.
    npm = spawn('npm', ['start', '--silent', '--', '--metrics-server', `127.0.0.1:${port}`], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    npm.stdout!.on('data', (d) => (log += d));
    npm.stderr!.on('data', (d) => (log += d));
    const deadline = Date.now() + 60000;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (res?.status === 200) break;
      if (npm.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not become ready:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    sender = TestCgroup.create('sender');
    receiver = TestCgroup.create('receiver');
  });

  after(async () => {
    sender?.destroy();
    receiver?.destroy();
    if (npm && npm.exitCode === null) {
      process.kill(-npm.pid!, 'SIGKILL');
      await waitExit(npm).catch(() => undefined);
    }
  });

  it('serves both counters, exact to the byte, and leaves nothing behind on SIGTERM', async () => {
    const N = 1_048_583;
    await transfer(sender, receiver, N);
    const series = parsePromText(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    assert.equal(sum(select(series, 'tally_tcp_sent_bytes_total', { workload: sender.name })), N, log);
    assert.equal(sum(select(series, 'tally_tcp_received_bytes_total', { workload: receiver.name })), N, log);

    // The agent's programs, found through the process group npm runs it in.
    const ids = processGroup(npm.pid!).flatMap(programIdsOf);
    assert.ok(ids.length >= 2, `programs held under npm start: ${ids.length}`);
    process.kill(-npm.pid!, 'SIGTERM');
    const exit = await waitExit(npm, 10000);
    assert.ok(exit.ms < 5000, `npm start took ${exit.ms} ms to exit\n${log}`);
    assert.match(log, /msg="agent stopped"/, log);
    assert.deepEqual(await awaitUnloaded(ids), [], 'programs still loaded after npm start exited');
  });
});
