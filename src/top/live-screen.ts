/**
 * The interactive `tally top`: the terminal's alternate screen redrawn in
 * place with plain ANSI sequences (no curses library), a read of /metrics
 * every interval, and single keys read in raw mode. Whatever ends it (q,
 * Ctrl-C, SIGINT, SIGTERM, SIGHUP, an exception) puts the terminal back as it was.
 */
import * as tty from 'node:tty';
import { Column } from './columns';
import { AgentHealth, healthLine, healthOf } from './health-line';
import { missingLabelNote, Reading, Row, rowsBetween, SortOrder, sortRows } from './rates';
import { renderTable } from './table';

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export interface LiveOptions {
  server: string;
  by: string;
  columns: readonly Column[];
  order: SortOrder;
  intervalMs: number;
  /** One read of the agent; `signal` aborts it when the screen stops. */
  read: (signal: AbortSignal) => Promise<Reading>;
}

/** The next sort order after a key; undefined for keys that do not sort. Columns run from -1 (the name) to count - 1. */
export function sortAfterKey(key: string, order: SortOrder, count: number): SortOrder | undefined {
  const choose = (column: number): SortOrder => ({ column, descending: column >= 0 });
  if (key === 'r') return { ...order, descending: !order.descending };
  if (key === '<' || key === ',') return choose(Math.max(-1, order.column - 1));
  if (key === '>' || key === '.') return choose(Math.min(count - 1, order.column + 1));
  if (key === '0') return choose(-1);
  if (/^[1-9]$/.test(key) && Number(key) <= count) return choose(Number(key) - 1);
  return undefined;
}

/** Keys in what the terminal sent: the left and right arrows' escape sequences count as < and >. */
export function keysOf(text: string): string[] {
  return [...text.replace(/\x1b\[D|\x1bOD/g, '<').replace(/\x1b\[C|\x1bOC/g, '>')];
}

export class LiveScreen {
  private order: SortOrder;
  private rows: Row[] = [];
  private health?: AgentHealth;
  private error?: string;
  private last: Reading;
  private timer?: NodeJS.Timeout;
  private done?: () => void;
  private stopped = false;
  /** Aborts a read under way at stop, so that q does not wait for a slow agent. */
  private readonly reads = new AbortController();
  /** Whether two reads have been compared yet. */
  private measured = false;

  constructor(private readonly opts: LiveOptions, first: Reading, private readonly out: tty.WriteStream, private readonly input: tty.ReadStream) {
    this.order = opts.order;
    this.last = first;
    this.health = healthOf(first.samples);
  }

  /** Runs until q or Ctrl-C; the terminal is restored before it resolves. */
  run(): Promise<void> {
    const restore = (): void => {
      this.out.write(LEAVE);
      if (this.input.isTTY) this.input.setRawMode(false);
    };
    const onSignal = (): void => this.stop();
    const onKeys = (data: Buffer): void => this.keys(data.toString('utf8'));
    const onResize = (): void => this.draw();
    this.out.write(ENTER);
    this.input.setRawMode(true);
    this.input.on('data', onKeys).resume();
    this.out.on('resize', onResize);
    process.on('SIGTERM', onSignal).on('SIGHUP', onSignal).on('SIGINT', onSignal).on('exit', restore);
    this.draw();
    this.schedule();
    return new Promise<void>((resolve) => (this.done = resolve)).finally(() => {
      clearTimeout(this.timer);
      this.input.off('data', onKeys).pause();
      this.out.off('resize', onResize);
      process.off('SIGTERM', onSignal).off('SIGHUP', onSignal).off('SIGINT', onSignal).off('exit', restore);
      restore();
    });
  }

  stop(): void {
    this.stopped = true;
    this.reads.abort();
    this.done?.();
  }

  private keys(text: string): void {
    for (const key of keysOf(text)) {
      if (key === 'q' || key === 'Q' || key === '\x03') return this.stop();
      const next = sortAfterKey(key, this.order, this.opts.columns.length);
      if (next) this.order = next;
    }
    this.draw();
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.refresh(), this.opts.intervalMs);
  }

  private async refresh(): Promise<void> {
    try {
      const now = await this.opts.read(this.reads.signal);
      this.rows = rowsBetween(this.last, now, this.opts.columns, this.opts.by);
      this.health = healthOf(now.samples);
      this.last = now;
      this.measured = true;
      this.error = undefined;
    } catch (e) {
      // The agent restarting or a network hiccup: say so and keep trying, as top would.
      this.error = (e as Error).message;
    }
    if (this.stopped) return;
    this.draw();
    this.schedule();
  }

  private frame(width: number, height: number): string[] {
    const time = new Date(this.last.atMs).toISOString().slice(11, 19);
    const sortName = this.order.column < 0 ? this.opts.by : this.opts.columns[this.order.column].title;
    const lines = [
      `tally top  ${this.opts.server}  by ${this.opts.by}  every ${this.opts.intervalMs / 1000}s  ${time} UTC${this.health?.version ? `  agent ${this.health.version}` : ''}`,
      this.health ? healthLine(this.health) : '',
      this.error
        ? `error: ${this.error} (retrying)`
        : `sort: ${sortName}, ${this.order.descending ? 'highest' : 'lowest'} first  (keys: < > or 0-${Math.min(9, this.opts.columns.length)} sort, r reverse, q quit)`,
      missingLabelNote(this.rows, this.opts.by) ?? '',
    ];
    if (!this.measured && !this.error) lines.push(`measuring: the first rates come after the second read, in ${this.opts.intervalMs / 1000}s`);
    else if (this.measured && !this.rows.length) lines.push(`the agent has no series of ${this.opts.columns.map((c) => c.metric).join(', ')}`);
    const view = { by: this.opts.by, columns: this.opts.columns, rows: sortRows(this.rows, this.order), order: this.order };
    lines.push(...renderTable(view, width, Math.max(0, height - lines.length - 1)));
    return lines.map((l) => l.slice(0, width));
  }

  private draw(): void {
    const width = this.out.columns || 80;
    const height = this.out.rows || 24;
    this.out.write(HOME + this.frame(width, height).join(`${CLEAR_LINE_END}\r\n`) + CLEAR_LINE_END + CLEAR_BELOW);
  }
}
