/**
 * Errors nothing expected: the running agent logs one line and exits with
 * code 70 (EXIT_FATAL), leaving nothing loaded, for an uncaught exception and
 * for an unhandled rejection alike. The faults are real ones, thrown inside
 * the agent's process: a module preloaded with node's --require raises them
 * when the test sends SIGUSR2, so the agent runs unmodified.
 *
 * Also: the metrics server survives an error of its listening socket.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { AgentProcess, awaitUnloaded, waitExit } from './helpers/agent-process';
import { EXIT_FATAL } from '../src/cli/fatal';
import { MetricsServer } from '../src/exporters/metrics-server';

const FAULT = `
process.on('SIGUSR2', () => {
  if (process.env.TALLY_TEST_FAULT === 'reject') {
    Promise.reject(new RangeError('a promise nobody awaited'));
  } else {
    setImmediate(() => { throw new TypeError("Cannot read properties of null (reading 'metadata')"); });
  }
});
`;

describe('a fatal error in the running agent', () => {
  let dir: string;
  const agents: AgentProcess[] = [];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-fault-'));
    fs.writeFileSync(path.join(dir, 'fault.js'), FAULT);
  });
  after(async () => {
    for (const a of agents) await a.stop('SIGKILL').catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [kind, what, error] of [
    ['throw', 'uncaught exception', "TypeError: Cannot read properties of null (reading 'metadata')"],
    ['reject', 'unhandled promise rejection', 'RangeError: a promise nobody awaited'],
  ] as const) {
    it(`an ${what}: one log line, exit code ${EXIT_FATAL}, nothing left loaded`, async () => {
      const agent = await AgentProcess.start(['--builtin-policies', 'tcp-bytes'], {
        env: { NODE_OPTIONS: `--require ${path.join(dir, 'fault.js')}`, TALLY_TEST_FAULT: kind },
      });
      agents.push(agent);
      const ids = agent.programIds();
      assert.ok(ids.length > 0);
      const logged = agent.stderr.length;
      agent.child.kill('SIGUSR2');
      const exit = await waitExit(agent.child, 10000);
      assert.deepEqual([exit.code, exit.signal], [EXIT_FATAL, null], agent.stderr);
      const lines = agent.stderr.slice(logged).split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `one line, not a stack trace:\n${lines.join('\n')}`);
      assert.match(lines[0], new RegExp(`^time=\\S+ level=error msg="fatal: ${what}; exiting with code ${EXIT_FATAL} [^"]*" error=${JSON.stringify(JSON.stringify(error)).slice(1, -1).replace(/[()]/g, '\\$&')} at="[^"]*fault\\.js`));
      assert.deepEqual(await awaitUnloaded(ids), [], 'programs still loaded after the fatal exit');
    });
  }
});

describe('the metrics server', () => {
  let server: MetricsServer | undefined;
  after(async () => server?.close());

  it('keeps serving after an error of its listening socket (as Node reports a failed accept)', async () => {
    const errors: Error[] = [];
    server = new MetricsServer({ registry: new Registry(), beforeScrape: () => undefined, notReadyReason: () => undefined, onError: (e) => errors.push(e) });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
    // What net.Server emits when accept() fails; with no listener Node would throw it.
    (server as unknown as { server: import('node:http').Server }).server.emit('error', emfile);
    assert.deepEqual(errors, [emfile]);
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.deepEqual([res.status, await res.text()], [200, 'ok\n']);
  });
});
