/**
 * The container image, end to end: `npm run image`'s build, run with podman
 * as the Helm chart runs it (the node's pid namespace and network, the chart's
 * read-only host mounts, a read-only root file system), checked from the host:
 * /readyz, exact TCP bytes between two cgroups of the host, and a stop that
 * leaves none of its BPF programs loaded.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { awaitUnloaded, waitExit } from './helpers/agent-process';
import { waitFor } from './helpers/cleanup';
import { TestCgroup } from './helpers/cgroup';
import { buildImage, podmanCannotRun, TallyContainer } from './helpers/image';
import { freePort } from './helpers/ports';
import { programIdsOf } from './helpers/procfs';
import { parsePromText, select } from './helpers/prom-text';
import { transfer } from './helpers/tcp-traffic';

// The first build debootstraps the base (minutes on a busy 2-core machine);
// later ones find it cached.
const BUILD_TIMEOUT = 20 * 60_000;
const NODE = fs.realpathSync(process.execPath);

describe('the container image', () => {
  let skip: string | undefined;
  let container: TallyContainer | undefined;
  let port = 0;
  let sender: TestCgroup;
  let receiver: TestCgroup;

  before(async () => {
    skip = await podmanCannotRun();
    if (skip) return;
    await buildImage();
    sender = TestCgroup.create('img-sender');
    receiver = TestCgroup.create('img-receiver');
  }, { timeout: BUILD_TIMEOUT });

  after(() => {
    sender?.destroy();
    receiver?.destroy();
    container?.remove();
  });

  it('serves /readyz, counts exact TCP bytes of host cgroups, and stops leaving no program', { timeout: 180_000 }, async (t) => {
    if (skip) return t.skip(skip);
    port = await freePort();
    container = TallyContainer.start(['--metrics-server', `127.0.0.1:${port}`]);
    const c = container;

    const deadline = Date.now() + 60_000;
    let ready: Response | undefined;
    for (;;) {
      ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (ready?.status === 200) break;
      if (c.child.exitCode !== null) assert.fail(`the container exited with ${c.child.exitCode}:\n${c.log}`);
      if (Date.now() > deadline) assert.fail(`/readyz did not answer 200 within 60 s (last: ${ready?.status}):\n${c.log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(await ready.text(), /^ready/);
    // The v2 hierarchy came through the chart's /sys/fs/cgroup mount. (The
    // log reaches us through podman a moment after /readyz may answer.)
    await waitFor(() => /msg="agent started"/.test(c.log), 'the agent\'s "agent started" line', 10_000).catch(() => undefined);
    assert.match(c.log, /msg="agent started" cgroup2=\/sys\/fs\/cgroup/);

    // Ground truth: the peers count what they sent and read themselves.
    const N = 2_000_000 + Math.floor(Math.random() * 100_000);
    const tr = await transfer(sender, receiver, N);
    assert.deepEqual(tr, { sent: N, received: N });
    const series = parsePromText(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    // One series each, labelled with the host cgroup and the host's node
    // binary: the agent in the container resolves both from the host.
    assert.deepEqual(
      select(series, 'tally_tcp_sent_bytes_total', { workload: sender.name }).map((s) => [s.labels, s.value]),
      [[{ workload: sender.name, binary: NODE }, N]],
    );
    assert.deepEqual(
      select(series, 'tally_tcp_received_bytes_total', { workload: receiver.name }).map((s) => [s.labels, s.value]),
      [[{ workload: receiver.name, binary: NODE }, N]],
    );

    // The agent's programs, seen from the host through its pid there.
    const ids = programIdsOf(c.hostPid());
    assert.ok(ids.length >= 2, `programs held by the agent in the container: ${ids.length}\n${c.log}`);
    c.stop();
    const exit = await waitExit(c.child, 30_000);
    assert.equal(exit.code, 0, `podman run's exit (the agent's)\n${c.log}`);
    assert.match(c.log, /msg="shutting down" signal=SIGTERM/);
    assert.match(c.log, /msg="agent stopped"/);
    assert.deepEqual(await awaitUnloaded(ids), [], 'programs still loaded after the container stopped');
  });
});
