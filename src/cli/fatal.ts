/**
 * The last line of defence: an exception nothing caught, or a rejected
 * promise nothing handled, means a bug (tally's or a dependency's) left the
 * agent in a state nobody planned for. Rather than run on in it, or die
 * with a stack trace spread over many log lines and Node's exit code 1
 * (which tally also uses for "the machine lacks something"), the agent logs
 * one line and exits with EXIT_FATAL. The kernel releases every program,
 * link and map with the process (nothing is pinned), and the DaemonSet's
 * restart brings the agent back.
 *
 * Known sources of such errors (the Kubernetes watch, the OTLP exporter,
 * fs.watch, the HTTP server) are guarded where they are; this catches what
 * is left.
 */
import { Logger } from '../util/log';

/** Exit code after an uncaught exception or unhandled rejection: EX_SOFTWARE of sysexits.h. See docs/runbooks.md. */
export const EXIT_FATAL = 70;

/** The first few stack frames, on one line: where it came from, without a multi-line trace. */
export function whereFrom(e: Error, frames = 3): string {
  return (e.stack ?? '')
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, frames)
    .map((l) => l.trim().replace(/^at /, ''))
    .join(' < ');
}

export function installFatalHandlers(log: Logger): void {
  const fatal = (what: string) => (e: unknown): void => {
    const err = e instanceof Error ? e : new Error(`a non-Error value: ${String(e)}`);
    log.error(`fatal: ${what}; exiting with code ${EXIT_FATAL} (a bug: please report it with this line)`, {
      error: `${err.name}: ${err.message}`,
      at: whereFrom(err) || 'unknown',
    });
    process.exit(EXIT_FATAL);
  };
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled promise rejection'));
}
