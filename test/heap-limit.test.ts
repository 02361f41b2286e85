/**
 * The V8 heap limit holds however the agent is started: `node bin/tally` and
 * `node dist/src/cli/main.js` (no shebang read, no npm) restart node in place
 * with --max-old-space-size=384, --max-semi-space-size=4 and --expose-gc, keeping the pid
 * and stdio; a limit the user gave, on node's command line or in
 * NODE_OPTIONS, is kept. npm start and bin/tally's shebang give the same flags.
 */
import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, ChildProcess } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { waitExit } from './helpers/agent-process';
import { waitFor } from './helpers/cleanup';
import { argvWithHeapLimit, hasHeapLimit, HEAP_LIMIT_MB, MEMORY_FLAGS } from '../src/cli/heap';

describe('hasHeapLimit', () => {
  const table: Array<[string[], string | undefined, boolean]> = [
    [[], undefined, false],
    [['--max-old-space-size=384'], undefined, true],
    [['--max_old_space_size=100'], undefined, true],
    [['--inspect'], '--max-old-space-size=512', true],
    [[], '--trace-warnings --max-old-space-size 512', true],
    [['--max-semi-space-size=16'], '--max-old-space-sizes', false],
  ];
  for (const [execArgv, nodeOptions, want] of table) {
    it(`${JSON.stringify(execArgv)} NODE_OPTIONS=${JSON.stringify(nodeOptions)}: ${want}`, () => assert.equal(hasHeapLimit(execArgv, nodeOptions), want));
  }
  it('the restart keeps node\'s flags, then adds the limits before the script', () => {
    assert.deepEqual(argvWithHeapLimit('/usr/bin/node', ['--trace-warnings'], ['/usr/bin/node', 'bin/tally', '--log-level', 'debug']),
      ['/usr/bin/node', '--trace-warnings', `--max-old-space-size=${HEAP_LIMIT_MB}`, '--max-semi-space-size=4', '--expose-gc', 'bin/tally', '--log-level', 'debug']);
  });
  it('a young-generation size the user gave is kept', () => {
    assert.deepEqual(argvWithHeapLimit('/usr/bin/node', ['--max-semi-space-size=16'], ['/usr/bin/node', 'bin/tally']),
      ['/usr/bin/node', '--max-semi-space-size=16', `--max-old-space-size=${HEAP_LIMIT_MB}`, '--expose-gc', 'bin/tally']);
  });
  it('npm start and bin/tally\'s shebang give node the same memory flags', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.scripts.start, `exec node ${MEMORY_FLAGS.join(' ')} dist/src/cli/main.js`);
    assert.equal(fs.readFileSync(path.join(PROJECT_ROOT, 'bin', 'tally'), 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${MEMORY_FLAGS.join(' ')}`);
  });
});

describe('the agent\'s heap limit, however it is started', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  /** Starts node with these args; once it serves, returns its command line as /proc shows it for the same pid. */
  async function commandLineOf(nodeArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
    const child = spawn(process.execPath, [...nodeArgs, '--metrics-server', '127.0.0.1:0', '--builtin-policies', 'none'], {
      cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    // The log arriving proves stderr survived the restart.
    await waitFor(() => /msg="serving metrics"/.test(stderr) || child.exitCode !== null, 'the agent to serve', 20000);
    assert.equal(child.exitCode, null, stderr);
    const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    child.kill('SIGTERM');
    assert.deepEqual(await waitExit(child, 10000).then((e) => [e.code, e.signal]), [0, null], 'SIGTERM to the same pid stops it cleanly');
    return cmdline;
  }

  const MAIN = path.join('dist', 'src', 'cli', 'main.js');
  for (const script of ['bin/tally', MAIN]) {
    it(`node ${script}: restarted in place with ${MEMORY_FLAGS.join(' ')}`, async () => {
      const cmd = await commandLineOf([script]);
      assert.deepEqual(cmd.slice(0, 2 + MEMORY_FLAGS.length), [process.execPath, ...MEMORY_FLAGS, path.join(PROJECT_ROOT, script)]);
    });
  }

  it('a limit given on node\'s command line or in NODE_OPTIONS is kept, with no restart', async () => {
    assert.deepEqual((await commandLineOf(['--max-old-space-size=200', MAIN])).slice(1, 3), ['--max-old-space-size=200', MAIN]);
    const cmd = await commandLineOf([MAIN], { NODE_OPTIONS: '--max-old-space-size=256' });
    assert.equal(cmd[1], MAIN);
    assert.ok(!cmd.some((a) => a.startsWith('--max-old-space-size')), cmd.join(' '));
  });
});
