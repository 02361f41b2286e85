/**
 * Cleanup that runs however the test process ends: normally, or interrupted
 * by SIGINT/SIGTERM/SIGHUP (after which the process dies of that signal).
 */
const tasks: Array<() => void> = [];
let installed = false;

export function onExit(task: () => void): void {
  tasks.push(task);
  if (installed) return;
  installed = true;
  const runAll = (): void => {
    for (const t of tasks.splice(0)) {
      try {
        t();
      } catch {
        /* best effort: keep cleaning */
      }
    }
  };
  process.on('exit', runAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      runAll();
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Polls cond every 20 ms; throws naming `what` after timeoutMs, stretched by
 * TALLY_TEST_TIME_SCALE as every wait of the suite (helpers/agent-process.ts).
 */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
  timeoutMs *= Math.max(1, Number(process.env.TALLY_TEST_TIME_SCALE ?? 1) || 1);
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
