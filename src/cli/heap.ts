/**
 * The V8 heap limit, however tally is started. With no limit of its own, V8
 * lets the heap grow towards a quarter or more of the machine's memory before
 * collecting hard, and a DaemonSet's memory limit kills the agent first; at
 * HEAP_LIMIT_MB, V8 collects instead of growing, and 100k series fit
 * (BENCHMARKS.md).
 *
 * The young generation is capped too, at YOUNG_SEMI_SPACE_MB per
 * semi-space: V8 doubles it (to 16 MiB each, 32 MiB resident) under the
 * allocation of policy loads and large scrapes and never gives it back. At
 * 4 MiB an agent after loading and removing 60 policies held 87 MiB of RSS
 * instead of 108, and 315 MiB instead of 376 at 100k series, with scrapes
 * no slower (BENCHMARKS.md, "Agent memory").
 *
 * --expose-gc lets the agent collect once a burst of policy changes is over
 * (src/util/reclaim-memory.ts): V8 alone would leave their dead Buffers,
 * C heap it does not count as its own, until its heap filled.
 *
 * `npm start` and bin/tally's shebang pass the flags to node. `node bin/tally`
 * and `node dist/src/cli/main.js` do not, so the entry point restarts node
 * in place (execv, same pid) with them. A limit the user gave (on node's
 * command line or in NODE_OPTIONS) is kept as it is, with no restart.
 */
import { native } from '../native/addon';

export const HEAP_LIMIT_MB = 384;
export const YOUNG_SEMI_SPACE_MB = 4;
/** node's flags for tally's memory, as npm start and bin/tally give them. */
export const MEMORY_FLAGS = [`--max-old-space-size=${HEAP_LIMIT_MB}`, `--max-semi-space-size=${YOUNG_SEMI_SPACE_MB}`, '--expose-gc'];
const FLAG = /(^|\s)--max[-_]old[-_]space[-_]size(=|\s|$)/;
/** Set before the restart, so a node that ignored the flag is not restarted again and again. */
const MARK = 'TALLY_HEAP_LIMIT_SET';

/** Whether node runs with a heap limit given on its command line or in NODE_OPTIONS. */
export function hasHeapLimit(execArgv: readonly string[], nodeOptions = ''): boolean {
  return execArgv.some((a) => FLAG.test(a)) || FLAG.test(nodeOptions);
}

/** The argv to restart node with: its own flags, the memory flags, then the script and its arguments. */
export function argvWithHeapLimit(execPath: string, execArgv: readonly string[], argv: readonly string[]): string[] {
  const semi = execArgv.some((a) => /^--max[-_]semi[-_]space[-_]size/.test(a));
  return [execPath, ...execArgv, ...MEMORY_FLAGS.filter((f) => !semi || !f.startsWith('--max-semi')), ...argv.slice(1)];
}

/** Restarts node in place with the heap limit when it has none; returns only when nothing needed doing (or could be done). */
export function ensureHeapLimit(): void {
  if (hasHeapLimit(process.execArgv, process.env.NODE_OPTIONS) || process.env[MARK]) return;
  process.env[MARK] = '1';
  try {
    native().reexec(process.execPath, argvWithHeapLimit(process.execPath, process.execArgv, process.argv));
  } catch (e) {
    // Without the addon (not built yet) the agent cannot run anyway; --help and policy check can.
    process.stderr.write(`tally: warning: running without the ${HEAP_LIMIT_MB} MiB heap limit, restarting node with it failed: ${(e as Error).message}\n`);
  }
}
