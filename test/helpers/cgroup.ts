/**
 * Leaf cgroups for tests, under the cgroup v2 mount, with unique names so
 * tests can run side by side. Every cgroup is removed (its processes killed
 * first) by destroy(), by removeAllTestCgroups(), or when the test process
 * exits or is interrupted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { findCgroup2Mount } from '../../src/labels/cgroup-mount';
import { onExit } from './cleanup';

const live = new Set<TestCgroup>();

export class TestCgroup {
  readonly dir: string;
  /** Path relative to the cgroup2 mount, as the agent sees it. */
  readonly relPath: string;
  readonly id: bigint;

  private constructor(readonly mount: string, readonly name: string, parent?: TestCgroup) {
    this.relPath = `${parent ? parent.relPath : ''}/${name}`;
    this.dir = path.join(mount, this.relPath);
    fs.mkdirSync(this.dir);
    this.id = fs.statSync(this.dir, { bigint: true }).ino;
    live.add(this);
  }

  /** A new leaf cgroup named tally-test-<random>-<role>. */
  static create(role: string): TestCgroup {
    return new TestCgroup(findCgroup2Mount(), `tally-test-${randomBytes(4).toString('hex')}-${role}`);
  }

  /** A child cgroup with an exact leaf name: two parents may hold the same name. */
  child(leafName: string): TestCgroup {
    return new TestCgroup(this.mount, leafName, this);
  }

  /**
   * Runs cmd inside this cgroup: a shell moves itself in, then execs cmd, so
   * every socket cmd opens is created in the cgroup.
   */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const script = `echo $$ > "${this.dir}/cgroup.procs" && exec "$@"`;
    return spawn('/bin/sh', ['-c', script, 'sh', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  /** Runs cmd in this cgroup to its end; throws with its stderr unless it exits 0 within timeoutMs. */
  run(cmd: string, args: string[], timeoutMs = 30000): Promise<void> {
    const child = this.spawn(cmd, args);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${cmd} did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${cmd} exited with ${code ?? signal}: ${err}`));
      });
    });
  }

  pids(): number[] {
    try {
      return fs.readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  destroy(): void {
    if (!live.delete(this)) return;
    for (let i = 0; i < 50; i++) {
      const pids = this.pids();
      if (pids.length === 0) break;
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(this.dir);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }
}

export function removeAllTestCgroups(): void {
  for (const cg of [...live]) cg.destroy();
}

onExit(removeAllTestCgroups);
