/**
 * A real terminal for tests of full-screen programs: a detached tmux session
 * on a server of its own (its own socket, no user config), keys sent with
 * send-keys, the screen read back with capture-pane. The server is killed by
 * kill(), or when the test process ends however it ends.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onExit } from './cleanup';
import { scaled } from './agent-process';

const live = new Set<TmuxSession>();
onExit(() => {
  for (const s of [...live]) s.kill();
});

export class TmuxSession {
  /** The server's socket lives in a directory of its own, removed with it (tmux leaves the socket behind). */
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-tmux-'));
  private readonly socket = path.join(this.dir, 'socket');

  private constructor() {
    live.add(this);
  }

  private tmux(args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs argv (no shell) in a new width x height terminal. */
  static start(argv: string[], size: { width: number; height: number }): TmuxSession {
    const s = new TmuxSession();
    try {
      s.tmux(['new-session', '-d', '-s', 'test', '-x', String(size.width), '-y', String(size.height), ...argv]);
    } catch (e) {
      s.kill();
      throw e;
    }
    return s;
  }

  /** The visible screen, one string per line, trailing blanks removed. */
  screen(): string[] {
    return this.tmux(['capture-pane', '-p', '-t', 'test']).split('\n').map((l) => l.trimEnd());
  }

  /** Types text as keys, character by character (send-keys -l: no key names). */
  type(text: string): void {
    this.tmux(['send-keys', '-t', 'test', '-l', text]);
  }

  /** Presses keys by their tmux names: Left, Right, C-c… */
  press(...keys: string[]): void {
    this.tmux(['send-keys', '-t', 'test', ...keys]);
  }

  /** Polls the screen until cond holds of it, which it returns; throws with the screen on timeout. */
  async waitFor(cond: (lines: string[]) => boolean, what: string, timeoutMs = 20000): Promise<string[]> {
    const deadline = Date.now() + scaled(timeoutMs);
    for (;;) {
      const lines = this.screen();
      if (cond(lines)) return lines;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the screen:\n${lines.join('\n').trimEnd()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    if (!live.delete(this)) return;
    try {
      this.tmux(['kill-server']);
    } catch {
      /* already gone */
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
