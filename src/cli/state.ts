/**
 * `tally state clear [--bpf-pin-dir DIR]`: removes what an agent run with
 * --bpf-pin-dir pinned (docs/restart.md). Its links go first, so the
 * programs that kept counting while no agent ran stop and detach; then the
 * counter maps and the state. Run it once the agent is gone for good (an
 * uninstall): an agent started afterwards starts from zero.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { PinDir } from '../persist/pin-dir';
import { pinDir } from './args';

export const STATE_USAGE = 'usage: tally state clear [--bpf-pin-dir DIR] (default /sys/fs/bpf/tally)';
export const DEFAULT_PIN_DIR = '/sys/fs/bpf/tally';

export class StateUsageError extends Error {}

export function runStateCommand(argv: string[], out: (line: string) => void): number {
  if (argv[0] !== 'clear') throw new StateUsageError(`${argv[0] === undefined ? 'no command after "state"' : `unknown command "state ${argv[0]}"`}; ${STATE_USAGE}`);
  let dir: string;
  try {
    const { values } = parseArgs({ args: argv.slice(1), options: { 'bpf-pin-dir': { type: 'string', default: DEFAULT_PIN_DIR } } });
    dir = pinDir(values['bpf-pin-dir']!);
  } catch (e) {
    throw new StateUsageError(`${(e as Error).message.split('\n')[0]}; ${STATE_USAGE}`);
  }
  if (!fs.existsSync(dir)) {
    out(`${dir}: nothing pinned`);
    return 0;
  }
  const removed = new PinDir(dir).clear();
  out(`${dir}: removed ${removed.length} pins (${removed.filter((r) => r.startsWith('links/')).length} links, their programs detached) and the directory`);
  return 0;
}
