/**
 * The set-up step's long steps show they are alive: scripts/progress.js
 * passes a command's output through and, while the command is silent, says
 * every few seconds what still runs; setup.sh runs npm ci and make through it.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';

const PROGRESS = path.join(PROJECT_ROOT, 'scripts', 'progress.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [PROGRESS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (r.stdout += d));
  child.stderr.on('data', (d) => (r.stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ ...r, code })));
}

describe('scripts/progress.js', () => {
  it('passes output through and, during a silent step, names it every interval', async () => {
    // A 2.3 s silent step after one announced line; a tick every 0.5 s of silence.
    const r = await run(['--every', '0.5', '--prefix', '[t]', 'building', '--', 'sh', '-c', 'echo "[build] build/bpf/policy.bpf.o"; sleep 2.3; echo done']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '[build] build/bpf/policy.bpf.o\ndone\n');
    const ticks = r.stderr.split('\n').filter(Boolean);
    for (const t of ticks) assert.match(t, /^\[t\] \.\.\. still building: build\/bpf\/policy\.bpf\.o \(\d+s\)$/);
    // 2.3 s of silence at one tick per 0.5 s: four ticks (at 0.5, 1, 1.5, 2 s), give or take one for timer slack.
    assert.ok(ticks.length >= 3 && ticks.length <= 5, `ticks: ${ticks.length}\n${r.stderr}`);
  });

  it('says nothing more for a command that is never silent that long', async () => {
    const r = await run(['--every', '5', 'building', '--', 'sh', '-c', 'echo one; echo two']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'one\ntwo\n');
    assert.equal(r.stderr, '');
  });

  it('exits with the command\'s status', async () => {
    assert.equal((await run(['x', '--', 'sh', '-c', 'exit 3'])).code, 3);
    const missing = await run(['x', '--', '/nonexistent/tool']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /^\[setup\] error: cannot run \/nonexistent\/tool: /);
  });

  it('refuses a malformed command line in one line', async () => {
    const r = await run(['--every', 'soon', 'x', '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr.split('\n')[0], /^progress\.js: --every must be a positive number of seconds, got "soon"$/);
  });
});

describe('scripts/setup.sh', () => {
  it('runs npm ci and make, its two long steps, through progress.js', () => {
    const setup = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'setup.sh'), 'utf8');
    assert.match(setup, /^progress\(\) \{ node "\$ROOT\/scripts\/progress\.js" /m);
    assert.match(setup, /^ {2}progress "installing npm dependencies" -- npm ci /m);
    assert.match(setup, /^progress building -- make /m);
    // Nothing else calls them bare.
    assert.doesNotMatch(setup.replace(/^.*progress.*$/gm, ''), /^\s*(npm ci|make) /m);
  });
});
