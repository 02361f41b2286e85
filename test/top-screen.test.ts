/**
 * The live screen with a stand-in terminal: what it writes on entering and
 * leaving (the terminal restored), keys, and quitting while a read of the
 * agent hangs. The real terminal is tested in top-tmux.test.ts.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as tty from 'node:tty';
import { LiveScreen } from '../src/top/live-screen';
import { parseColumns } from '../src/top/columns';
import { Reading } from '../src/top/rates';

class FakeTerminal extends EventEmitter {
  written = '';
  raw: boolean[] = [];
  isTTY = true;
  columns = 100;
  rows = 20;
  write(s: string): boolean {
    this.written += s;
    return true;
  }
  setRawMode(on: boolean): this {
    this.raw.push(on);
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  /** The text of the last frame, without the escape sequences. */
  lastFrame(): string[] {
    const frames = this.written.split('\x1b[H');
    return frames[frames.length - 1].replace(/\x1b\[[?0-9;]*[A-Za-z]/g, '').split('\r\n');
  }
}

const reading = (atMs: number, sent: number): Reading => ({ atMs, samples: [{ name: 'tally_tcp_sent_bytes_total', labels: { workload: 'web' }, value: sent }] });

describe('top: the live screen', () => {
  it('enters the alternate screen in raw mode, draws the rates, sorts on keys, and restores the terminal on q', async () => {
    const term = new FakeTerminal();
    let n = 0;
    const screen = new LiveScreen(
      { server: 'h:1', by: 'workload', columns: parseColumns('sent,execs'), order: { column: 0, descending: true }, intervalMs: 100, read: async () => reading(1000 * ++n + 1000, 2048 * n) },
      reading(1000, 0),
      term as unknown as tty.WriteStream,
      term as unknown as tty.ReadStream,
    );
    const done = screen.run();
    try {
      assert.ok(term.written.startsWith('\x1b[?1049h\x1b[?25l'), 'the alternate screen, cursor hidden');
      assert.match(term.lastFrame()[4], /^measuring: the first rates come after the second read, in 0\.1s$/);
      await new Promise((r) => setTimeout(r, 350));
      let frame = term.lastFrame();
      assert.match(frame[0], /^tally top  h:1  by workload  every 0\.1s  \d\d:\d\d:\d\d UTC$/);
      assert.deepEqual(frame.slice(4, 6), ['WORKLOAD  *TCP SENT/s    EXECS/s', 'web           2.0 KiB          0']);
      term.emit('data', Buffer.from('\x1b[C'));
      frame = term.lastFrame();
      assert.equal(frame[2], 'sort: EXECS/s, highest first  (keys: < > or 0-2 sort, r reverse, q quit)');
      assert.equal(frame[4], 'WORKLOAD  TCP SENT/s   *EXECS/s');
      term.emit('data', Buffer.from('q'));
      await done;
      assert.ok(term.written.endsWith('\x1b[?25h\x1b[?1049l'), 'the cursor back, the main screen back');
      assert.deepEqual(term.raw, [true, false]);
    } finally {
      // A failed assertion must not leave the refresh timer running.
      screen.stop();
    }
  });

  it('quits at once while a read hangs, aborting it', async () => {
    const term = new FakeTerminal();
    let aborted = false;
    const hang = (signal: AbortSignal): Promise<Reading> =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(new Error('aborted')))));
    const screen = new LiveScreen(
      { server: 'h:1', by: 'workload', columns: parseColumns('sent'), order: { column: 0, descending: true }, intervalMs: 50, read: hang },
      reading(1000, 0),
      term as unknown as tty.WriteStream,
      term as unknown as tty.ReadStream,
    );
    const done = screen.run();
    try {
      await new Promise((r) => setTimeout(r, 150));
      const started = Date.now();
      term.emit('data', Buffer.from('\x03'));
      await done;
      assert.ok(Date.now() - started < 1000, 'q does not wait for the read');
      assert.equal(aborted, true);
      assert.ok(term.written.endsWith('\x1b[?25h\x1b[?1049l'));
    } finally {
      screen.stop();
    }
  });
});
