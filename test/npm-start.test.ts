/**
 * The README's promise, literally: `npm start -- --metrics-server 127.0.0.1:PORT`,
 * then the two-cgroup scenario reads exactly N on both sides, and SIGTERM to
 * the npm process alone (as a service manager sends it) stops the agent.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn, ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { awaitUnloaded, waitExit } from './helpers/agent-process';
import { waitFor } from './helpers/cleanup';
import * as fs from 'node:fs';
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
    // Its own process group, so after() can kill whatever is left of it.
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
    if (npm) {
      try {
        process.kill(-npm.pid!, 'SIGKILL'); // whatever of the group is left
      } catch {
        /* the group is gone already */
      }
      await waitExit(npm).catch(() => undefined);
    }
  });

  it('serves both counters, exact to the byte, and leaves nothing behind on SIGTERM to npm alone', async () => {
    const N = 1_048_583;
    await transfer(sender, receiver, N);
    const series = parsePromText(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    assert.equal(sum(select(series, 'tally_tcp_sent_bytes_total', { workload: sender.name })), N, log);
    assert.equal(sum(select(series, 'tally_tcp_received_bytes_total', { workload: receiver.name })), N, log);

    // The agent's programs, found through the process group npm runs it in.
    const group = processGroup(npm.pid!);
    const ids = group.flatMap(programIdsOf);
    assert.ok(ids.length >= 2, `programs held under npm start: ${ids.length}`);
    assert.ok(group.length >= 2, `processes of npm start: ${group.join(', ')}`);
    const started = Date.now();
    // npm's pid only, not its group: npm forwards SIGTERM to its script's
    // process, which must be the agent itself (a shell in between would die
    // of it and leave the agent running, reparented to PID 1).
    process.kill(npm.pid!, 'SIGTERM');
    await waitExit(npm, 10000);
    // npm may exit before the agent under it has finished shutting down.
    await waitFor(() => group.every((pid) => !fs.existsSync(`/proc/${pid}`)), `every process of npm start (${group.join(', ')}) to exit`, 10000);
    const ms = Date.now() - started;
    assert.ok(ms < 5000, `npm start took ${ms} ms to exit\n${log}`);
    assert.match(log, /msg="agent stopped"/, log);
    assert.deepEqual(await awaitUnloaded(ids), [], 'programs still loaded after npm start exited');
  });
});
