/**
 * The V8 heap limit, however tally is started. With no limit of its own, V8
 * lets the heap grow towards a quarter or more of the machine's memory before
 * collecting hard, and a DaemonSet's memory limit kills the agent first; at
 * HEAP_LIMIT_MB, V8 collects instead of growing, and 100k series fit
 * (BENCHMARKS.md).
 *
 * `npm start` and bin/tally's shebang pass the flag to node. `node bin/tally`
 * and `node dist/src/cli/main.js` do not, so the entry point restarts node
 * in place (execv, same pid) with it. A limit the user gave (on node's
 * command line or in NODE_OPTIONS) is kept as it is.
 */
import { native } from '../native/addon';

export const HEAP_LIMIT_MB = 384;
const FLAG = /(^|\s)--max[-_]old[-_]space[-_]size(=|\s|$)/;
/** Set before the restart, so a node that ignored the flag is not restarted again and again. */
const MARK = 'TALLY_HEAP_LIMIT_SET';

/** Whether node runs with a heap limit given on its command line or in NODE_OPTIONS. */
export function hasHeapLimit(execArgv: readonly string[], nodeOptions = ''): boolean {
  return execArgv.some((a) => FLAG.test(a)) || FLAG.test(nodeOptions);
}

/** The argv to restart node with: its own flags, the heap limit, then the script and its arguments. */
export function argvWithHeapLimit(execPath: string, execArgv: readonly string[], argv: readonly string[]): string[] {
  return [execPath, ...execArgv, `--max-old-space-size=${HEAP_LIMIT_MB}`, ...argv.slice(1)];
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
