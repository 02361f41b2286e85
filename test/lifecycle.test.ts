/** The agent's life: ready only when attached, and nothing left behind on exit. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { select } from './helpers/prom-text';
import { AgentProcess, awaitUnloaded, loadedProgramIds } from './helpers/agent-process';

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  describe(`on ${signal}`, () => {
    it('stops serving, detaches every program and exits 0 within a few seconds', async () => {
      const agent = await AgentProcess.start();
      try {
        assert.equal((await fetch(agent.url('/healthz'))).status, 200);
        assert.equal((await fetch(agent.url('/readyz'))).status, 200);
        const ids = agent.programIds();
        assert.ok(ids.length >= 2, `agent holds ${ids.length} programs`);
        const loaded = loadedProgramIds();
        for (const id of ids) assert.ok(loaded.has(id), `program ${id} is in bpftool's list while running`);

        const exit = await agent.stop(signal);
        assert.equal(exit.code, 0, agent.stderr);
        assert.ok(exit.ms < 5000, `exit took ${exit.ms} ms`);
        assert.deepEqual(await awaitUnloaded(ids), [], 'programs still loaded after exit');
        assert.ok(await portIsFree(agent.port), 'the metrics port is released');
        assert.match(agent.stderr, /msg="agent stopped"/);
      } finally {
        await agent.stop('SIGKILL');
      }
    });
  });
}

describe('readiness follows the built-in policies', () => {
  it('answers 503 naming a built-in that cannot attach, and 200 when only a user policy fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-ready-'));
    // A user policy whose function does not exist: in error, reported, not a readiness matter.
    fs.writeFileSync(path.join(dir, 'bad.yaml'), `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: test-no-such-hook}
spec:
  tracepoints:
  - {subsystem: sched, event: no_such_tracepoint_here, raw: true, metrics: [{name: test_never_total, help: never, type: counter}]}
`);
    // Without tp_btf and raw_tp the process built-in has no way to attach.
    const broken = await AgentProcess.start(['--builtin-policies', 'process', '--policy-dir', dir], { env: { TALLY_KERNEL_WITHOUT: 'tp_btf,raw_tp' }, until: 'started' });
    const fine = await AgentProcess.start(['--builtin-policies', 'process', '--policy-dir', dir]);
    try {
      const r = await fetch(broken.url('/readyz'));
      assert.equal(r.status, 503);
      assert.match(await r.text(), /^not ready: built-in policy process failed: tracepoint:sched\/sched_process_exec/);
      const ok = await fetch(fine.url('/readyz'));
      assert.equal(ok.status, 200);
      const s = await fine.scrape();
      assert.deepEqual(select(s, 'tally_policy_state', { policy: 'test-no-such-hook', state: 'error' }).map((x) => x.value), [1]);
    } finally {
      await broken.stop();
      await fine.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
