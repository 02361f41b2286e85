/**
 * The set-up step's long steps show they are alive: scripts/progress.sh's
 * progress() leaves a command's output alone and, while the command runs,
 * says every few seconds that it still does; setup.sh runs npm ci and make
 * through it.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';

const PROGRESS_SH = path.join(PROJECT_ROOT, 'scripts', 'progress.sh');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Sources progress.sh in bash and runs `progress LABEL sh -c SCRIPT`, a tick every `every` seconds. */
function run(label: string, script: string, every: string): Promise<Run> {
  const started = Date.now();
  const child = spawn('bash', ['-c', `. "${PROGRESS_SH}" && progress "$0" sh -c "$1"`, label, script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PROGRESS_EVERY: every },
  });
  const r: Run = { code: null, stdout: '', stderr: '', ms: 0 };
  child.stdout.on('data', (d) => (r.stdout += d));
  child.stderr.on('data', (d) => (r.stderr += d));
  // 'close': every holder of the output pipes has gone, the ticker's sleep included.
  return new Promise((resolve) => child.on('close', (code) => resolve({ ...r, code, ms: Date.now() - started })));
}

describe('scripts/progress.sh', () => {
  it('leaves the output alone and says every interval that the step still runs', async () => {
    // 2.3 s of work at one tick per 0.5 s: four ticks (0.5, 1, 1.5, 2 s), give or take one for timer slack.
    const r = await run('building', 'echo "[build] build/bpf/policy.bpf.o"; sleep 2.3; echo done', '0.5');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '[build] build/bpf/policy.bpf.o\ndone\n');
    const ticks = r.stderr.split('\n').filter(Boolean);
    for (const t of ticks) assert.match(t, /^\[setup\] \.\.\. still building \(\d+s\)$/);
    assert.ok(ticks.length >= 3 && ticks.length <= 5, `ticks: ${ticks.length}\n${r.stderr}`);
    // It ends with the step, not an interval later.
    assert.ok(r.ms < 2300 + 400, `progress returned after ${r.ms} ms`);
  });

  it('says nothing for a step shorter than the interval, and returns at once', async () => {
    const r = await run('building', 'echo one; echo two', '5');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'one\ntwo\n');
    assert.equal(r.stderr, '');
    assert.ok(r.ms < 1000, `progress returned after ${r.ms} ms`);
  });

  it('returns the step\'s status', async () => {
    assert.equal((await run('x', 'exit 3', '5')).code, 3);
  });
});

describe('scripts/setup.sh', () => {
  it('runs npm ci and make, its two long steps, through progress', () => {
    const setup = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'setup.sh'), 'utf8');
    assert.match(setup, /^\. "\$ROOT\/scripts\/progress\.sh"$/m);
    assert.match(setup, /^ {2}progress "installing npm dependencies" npm ci /m);
    assert.match(setup, /^progress building make /m);
    // Neither runs bare anywhere else.
    assert.doesNotMatch(setup.replace(/^.*progress.*$/gm, ''), /^\s*(npm ci|make) /m);
  });
});
