/**
 * For the restart-persistence tests (docs/restart.md): a pin directory in a
 * bpffs mounted for the test alone, and the agent's tally_restart_state.
 */
import type { TestContext } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { onExit } from './cleanup';
import { select, Series } from './prom-text';
import { PinDir } from '../../src/persist/pin-dir';

/** Only the policy under test, and room for every series of a host where other suites make thousands of cgroups. */
export const ISOLATED = ['--builtin-policies', 'tcp-bytes', '--metrics-series-limit', '1000000'];

/**
 * A pin directory of this test's own, in a bpffs mounted for it (the host
 * may have none at /sys/fs/bpf), removed (links first) and unmounted even
 * if the test fails.
 */
export function usePinDir(t: TestContext): string {
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-test-bpffs-'));
  execFileSync('mount', ['-t', 'bpf', 'bpf', mount]);
  const dir = path.join(mount, `tally-${randomBytes(4).toString('hex')}`);
  let done = false;
  const clear = (): void => {
    if (done) return;
    done = true;
    // Each step whatever the one before did: unmounting the bpffs releases whatever is still pinned in it.
    const steps = [() => new PinDir(dir).clear(), () => execFileSync('umount', [mount]), () => fs.rmdirSync(mount)];
    const failures: string[] = [];
    for (const step of steps) {
      try {
        step();
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    if (failures.length) process.stderr.write(`cleaning up ${dir}: ${failures.join('; ')}\n`);
  };
  onExit(clear);
  t.after(clear);
  return dir;
}

export const restartState = (series: Series[]): Record<string, number> =>
  Object.fromEntries(select(series, 'tally_restart_state').map((s) => [s.labels.outcome, s.value]));

