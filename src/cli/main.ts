/**
 * Entry point of `tally`. Failures the user can fix end in one line on stderr
 * and a non-zero exit: 2 for a wrong flag, 1 for what the machine lacks. An
 * error nothing expected ends the running agent with one log line and exit
 * code 70 (fatal.ts).
 */
import { HELP, parseFlags, UsageError } from './args';
import { checkKernelBtf, checkPrivileges, PreflightError } from './preflight';
import { Agent } from '../agent/agent';
import { Logger } from '../util/log';
import { VERSION } from '../util/version';
import { MetricsServerError } from '../exporters/metrics-server';
import { POLICY_CHECK_USAGE, PolicyLoader, runPolicyCheck } from './policy-check';
import { trialLoad, TrialOptions } from '../engine/trial-load';
import { probeKernel } from '../engine/kernel-features';
import { loadSyscalls } from '../engine/syscalls';
import { checkLayout } from '../bpf/layout';
import { checkHookConfigLayout } from '../engine/hook-config';
import { installFatalHandlers } from './fatal';
import { CardinalityUsageError, runCardinality } from './cardinality';
import { runStateCommand, StateUsageError } from './state';
import { ensureHeapLimit } from './heap';
import { runTop } from '../top/top';

function fail(message: string, code: number): never {
  process.stderr.write(`tally: ${message}\n`);
  process.exit(code);
}

/** For --load: privileges are checked and the kernel probed once, at the first policy loaded. */
function policyTrialLoader(): PolicyLoader {
  let opts: TrialOptions | undefined;
  return async (policy, { verbose }) => {
    if (!opts) {
      try {
        checkPrivileges();
        checkKernelBtf(undefined);
      } catch (e) {
        if (e instanceof PreflightError) fail(`--load: ${e.message}`, 1);
        throw e;
      }
      checkLayout();
      checkHookConfigLayout();
      opts = { features: probeKernel(), syscalls: loadSyscalls() };
    }
    return trialLoad(policy, { ...opts, verbose });
  };
}

/**
 * Writes a line to stdout, and nothing once its reader has gone: `tally policy
 * check … | head -1` closes the pipe early, and the EPIPE that follows would
 * otherwise end the process with a stack trace instead of its exit code.
 */
function stdoutLines(): (line: string) => void {
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
  });
  return (line) => {
    if (!closed) process.stdout.write(`${line}\n`);
  };
}

export async function main(argv: string[]): Promise<void> {
  // `tally policy check …` validates files and exits; it needs neither privileges nor BTF.
  if (argv[0] === 'policy') {
    if (argv[1] !== 'check') fail(`${argv[1] === undefined ? 'no command after "policy"' : `unknown command "policy ${argv[1]}"`}; ${POLICY_CHECK_USAGE}`, 2);
    process.exitCode = await runPolicyCheck(argv.slice(2), stdoutLines(), policyTrialLoader(), {
      report: (line) => process.stderr.write(`${line}\n`),
    });
    return;
  }
  // `tally top …` reads a running agent over HTTP; it needs no privileges either.
  if (argv[0] === 'top') {
    process.exitCode = await runTop(argv.slice(1));
    return;
  }
  // `tally cardinality …` asks a running agent; it needs neither privileges nor BTF.
  if (argv[0] === 'cardinality') {
    try {
      process.exitCode = await runCardinality(argv.slice(1), (line) => process.stdout.write(`${line}\n`));
    } catch (e) {
      if (e instanceof CardinalityUsageError) fail(e.message, 2);
      throw e;
    }
    return;
  }
  // `tally state clear` removes what --bpf-pin-dir pinned (an uninstall); it needs root only for the bpffs.
  if (argv[0] === 'state') {
    try {
      process.exitCode = runStateCommand(argv.slice(1), (line) => process.stdout.write(`${line}\n`));
    } catch (e) {
      if (e instanceof StateUsageError) fail(e.message, 2);
      fail((e as Error).message, 1);
    }
    return;
  }
  let parsed;
  try {
    parsed = parseFlags(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(e.message, 2);
    throw e;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(HELP);
    return;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`tally ${VERSION}\n`);
    return;
  }
  const config = parsed.config;
  try {
    checkPrivileges();
    checkKernelBtf(config.kernelBtfPath);
  } catch (e) {
    if (e instanceof PreflightError) fail(e.message, 1);
    throw e;
  }

  const log = new Logger(config.logLevel);
  installFatalHandlers(log);
  const agent = new Agent(config, log);
  let exiting = false;
  const shutdown = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    log.info('shutting down', { signal });
    // A stuck close must not keep the process alive past a few seconds.
    setTimeout(() => fail('shutdown took longer than 5s; exiting anyway', 1), 5000).unref();
    agent.stop().then(() => process.exit(0), (e) => fail(`shutdown failed: ${(e as Error).message}`, 1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    log.info('reloading policies', { signal: 'SIGHUP' });
    agent.reloadPolicies().catch((e: Error) => log.error('reloading policies failed', { error: e.message }));
  });

  try {
    await agent.start();
  } catch (e) {
    await agent.stop().catch(() => undefined);
    if (e instanceof MetricsServerError) fail(e.message, 1);
    const err = e as Error & { log?: string[] };
    const detail = err.log && err.log.length ? ` (${err.log.slice(-3).join(' | ')})` : '';
    fail(`${err.message}${detail}`, 1);
  }
}

/** The process's entry (bin/tally, `node dist/src/cli/main.js`): the heap limit first, then main. */
export function entry(): void {
  ensureHeapLimit();
  void main(process.argv.slice(2));
}

if (require.main === module) entry();
