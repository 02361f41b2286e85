/** The agent's life: ready only when attached, and nothing left behind on exit. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
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
