/**
 * The hooks-per-agent limit (LIMITS.hooksPerAgent), kept the same way by the
 * agent and by `tally policy check`, so both refuse the same file with the
 * same line.
 *
 * A file holds the hooks its valid policies declare (fallbacks included,
 * whether or not they attach, and whether or not a policy later fails to
 * load), from the time it is admitted until it is removed or replaced: the
 * count depends on the files only, never on the kernel, so the checker can
 * say what the agent will do. A file that would take the total past the
 * limit is refused whole, before anything of it is loaded, and nothing that
 * runs is touched. It waits: when hooks are freed (a file removed, or
 * replaced by a smaller one) the files waiting are admitted again, in name
 * order, as long as they fit; the error goes away with its cause.
 */
import { PolicyFileResult } from './model';
import { fileProblem } from './problems';
import { LIMITS } from './limits';

/** Hooks a file's policies would load: those of its policies not in error. */
export function hooksOf(result: PolicyFileResult): number {
  return result.policies.reduce((n, p) => n + (p.state === 'error' ? 0 : p.hooks.length), 0);
}

export class HookBudget {
  /** Hooks held by each admitted file. */
  private readonly held = new Map<string, number>();
  /** Files refused for the limit, as they were read: admitted again once they fit. */
  private readonly waiting = new Map<string, PolicyFileResult>();

  constructor(readonly limit: number = LIMITS.hooksPerAgent) {}

  /** Hooks held by the files admitted. */
  get used(): number {
    let n = 0;
    for (const h of this.held.values()) n += h;
    return n;
  }

  /**
   * A file was added or changed: what to apply for it (itself, or a result
   * in error naming the limit), then any waiting file its change let in.
   */
  offer(result: PolicyFileResult): PolicyFileResult[] {
    const freed = this.release(result.file);
    const own = this.admit(result);
    return freed > hooksOf(result) ? [own, ...this.admitWaiting()] : [own];
  }

  /** A file was removed: the waiting files that now fit, to apply. */
  remove(file: string): PolicyFileResult[] {
    return this.release(file) > 0 ? this.admitWaiting() : [];
  }

  private release(file: string): number {
    this.waiting.delete(file);
    const had = this.held.get(file) ?? 0;
    this.held.delete(file);
    return had;
  }

  private admit(result: PolicyFileResult): PolicyFileResult {
    const hooks = hooksOf(result);
    const others = this.used;
    if (hooks === 0 || others + hooks <= this.limit) {
      this.held.set(result.file, hooks);
      return result;
    }
    this.waiting.set(result.file, result);
    return refusal(result, hooks, others, this.limit);
  }

  private admitWaiting(): PolicyFileResult[] {
    const admitted: PolicyFileResult[] = [];
    for (const file of [...this.waiting.keys()].sort()) {
      const result = this.waiting.get(file)!;
      if (this.used + hooksOf(result) > this.limit) continue;
      this.waiting.delete(file);
      this.held.set(file, hooksOf(result));
      admitted.push(result);
    }
    return admitted;
  }
}

/**
 * The file refused, at its first hook past the limit:
 * `x.yaml:40:7: (file): expected at most 256 hooks …, found 300: …`.
 */
function refusal(result: PolicyFileResult, hooks: number, others: number, limit: number): PolicyFileResult {
  const all = result.policies.flatMap((p) => (p.state === 'error' ? [] : p.hooks));
  const first = all[Math.max(0, limit - others)]?.origin ?? { line: 1, column: 1 };
  const expected = `at most ${limit} hooks in all the policies one agent runs (tally's limit hooksPerAgent)`;
  const found = others ? `${others + hooks}: this file's ${hooks} on top of ${others} in the files loaded before it` : `${hooks} in this file`;
  const hint = others
    ? 'remove policies from other files or hooks from this one; it loads by itself once there is room'
    : 'no agent can run it whole: split it, and give the parts to agents of their own';
  const problem = fileProblem(result.file, expected, found, first.line, first.column, hint);
  return { file: result.file, state: 'error', problems: [problem], policies: [] };
}
