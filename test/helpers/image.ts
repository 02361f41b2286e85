/**
 * tally's container image for tests: built with `npm run image`'s script
 * (cached after the first build), and run with podman the way the Helm chart
 * runs it. Containers are removed however the test ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, execFileSync, spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PROJECT_ROOT } from '../../src/util/paths';
import { onExit } from './cleanup';

const VERSION: string = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version;
export const IMAGE = `localhost/tally:${VERSION}`;
export const IMAGE_OUT = path.join(PROJECT_ROOT, 'build', 'image');
export const STAGE_DIR = path.join(IMAGE_OUT, 'stage-context', 'stage');
const SCRIPTS = path.join(PROJECT_ROOT, 'scripts', 'image');

/** crun refuses this kind of host's hybrid cgroups; runc runs on both layouts. */
export const PODMAN = ['podman', '--runtime', 'runc'];

function bash(script: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', script], { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Installs podman & co. if missing and makes the base image, then asks
 * podman to run a container of it. Returns why podman cannot run containers
 * here, or undefined when it can.
 */
export async function podmanCannotRun(): Promise<string | undefined> {
  await bash(`. ${SCRIPTS}/lib.sh && ensure_image_tools`);
  const base = await bash(`bash ${SCRIPTS}/base.sh`);
  const limits = ulimitArgs();
  try {
    execFileSync(PODMAN[0], [...PODMAN.slice(1), 'run', '--rm', '--network=none', '--pull=never', ...limits, base, 'true'], { stdio: 'pipe', timeout: 60000 });
    return undefined;
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return `podman cannot run a container here: ${(err.stderr?.toString() || err.message).trim().split('\n').pop()}`;
  }
}

/** `npm run image`'s build (the set-up step has built the checkout already); the gzip'ed size is not measured. */
export async function buildImage(): Promise<void> {
  await bash(`bash ${SCRIPTS}/build.sh`, { TALLY_IMAGE_GZIP_SIZE: '0' });
}

/** Runs a command in a throwaway container of the image, the entrypoint replaced; returns its stdout. */
export function runInImage(entrypoint: string, args: string[]): string {
  return execFileSync(PODMAN[0], [...PODMAN.slice(1), 'run', '--rm', '--network=none', '--pull=never', ...ulimitArgs(), '--entrypoint', entrypoint, IMAGE, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
}

const live = new Set<string>();
function removeContainer(name: string): void {
  try {
    execFileSync(PODMAN[0], [...PODMAN.slice(1), 'rm', '--force', '--time', '0', name], { stdio: 'ignore', timeout: 30000 });
  } catch {
    /* never created, or gone */
  }
  live.delete(name);
}
onExit(() => {
  for (const name of [...live]) removeContainer(name);
});

/** The largest limit the container may get: runc refuses one above this shell's hard limit. */
function hardLimit(resource: 'n' | 'u', cap: number): number {
  const out = execFileSync('bash', ['-c', `ulimit -H${resource}`], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? cap : Math.min(Number(out), cap);
}

/**
 * Explicit limits: podman's defaults (nofile 1048576, nproc 4194304) exceed
 * what runc may set from a shell with lower hard limits, and runc then
 * refuses to start the container (EPERM setting the rlimit).
 */
export function ulimitArgs(): string[] {
  const nofile = hardLimit('n', 65536);
  const nproc = hardLimit('u', 32768);
  return ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
}

export class TallyContainer {
  log = '';

  private constructor(readonly name: string, readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
  }

  /**
   * `podman run` in the foreground with the node's pid namespace and network
   * and the chart's host mounts, all read-only, on a read-only root file
   * system as the chart sets it.
   */
  static start(agentArgs: string[]): TallyContainer {
    const name = `tally-test-${randomBytes(4).toString('hex')}`;
    live.add(name);
    const mounts = ['/sys/fs/cgroup', '/sys/kernel/tracing', '/sys/kernel/btf', '/sys/fs/bpf'].flatMap((m) => ['-v', `${m}:${m}:ro`]);
    const child = spawn(
      PODMAN[0],
      [
        ...PODMAN.slice(1),
        'run', '--rm', '--name', name, '--pull=never',
        '--privileged', '--pid=host', '--network=host', '--read-only',
        ...ulimitArgs(),
        ...mounts,
        IMAGE, ...agentArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return new TallyContainer(name, child);
  }

  /** The agent's pid on the host (the container shares the host's pid namespace). */
  hostPid(): number {
    const out = execFileSync(PODMAN[0], [...PODMAN.slice(1), 'inspect', '--format', '{{.State.Pid}}', this.name], { encoding: 'utf8' });
    return Number(out.trim());
  }

  /** `podman stop`: SIGTERM, then SIGKILL after timeoutSecs. */
  stop(timeoutSecs = 10): void {
    execFileSync(PODMAN[0], [...PODMAN.slice(1), 'stop', '--time', String(timeoutSecs), this.name], { stdio: 'pipe', timeout: (timeoutSecs + 20) * 1000 });
  }

  remove(): void {
    removeContainer(this.name);
  }
}
