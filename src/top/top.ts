/**
 * `tally top`: reads a running agent's /metrics and shows, per value of one
 * label, the rates of what it counts. On a terminal, a live table (see
 * live-screen.ts); otherwise one snapshot, from two reads --interval apart,
 * as a table or (--json) as JSON.
 */
import * as tty from 'node:tty';
import { UsageError } from '../cli/args';
import { ExpositionError, parseExposition } from './exposition-parse';
import { fetchMetrics, FetchError, MetricsTarget } from './fetch-metrics';
import { healthLine, healthOf } from './health-line';
import { LiveScreen } from './live-screen';
import { parseTopFlags, TOP_HELP, TopOptions } from './options';
import { missingLabelNote, Reading, rowsBetween, sortRows } from './rates';
import { renderTable } from './table';

export interface TopIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: Readonly<Record<string, string | undefined>>;
}

export async function readAgent(target: MetricsTarget, signal?: AbortSignal): Promise<Reading> {
  const text = await fetchMetrics(target, signal);
  // A monotonic clock, so that a step of the wall clock (NTP) cannot make an interval negative.
  return { atMs: performance.timeOrigin + performance.now(), samples: parseExposition(text) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two reads --interval apart; the table (or JSON) of the rates between them. */
async function snapshot(opts: TopOptions, first: Reading, io: TopIo): Promise<void> {
  // On stderr, so that a script (or a test) knows when the measured interval starts.
  io.stderr.write(`tally top: first read done; the rates are over the next ${opts.intervalMs / 1000}s\n`);
  await sleep(opts.intervalMs);
  const second = await readAgent(opts.target);
  const rows = sortRows(rowsBetween(first, second, opts.columns, opts.by), opts.order);
  const seconds = (second.atMs - first.atMs) / 1000;
  const health = healthOf(second.samples);
  if (opts.json) {
    const perColumn = (values: number[]): Record<string, number> => Object.fromEntries(opts.columns.map((c, i) => [c.key, values[i]]));
    const json = {
      server: opts.target.url.href,
      by: opts.by,
      seconds,
      health,
      columns: opts.columns.map((c) => ({ key: c.key, metric: c.metric, unit: c.unit })),
      rows: rows.map((r) => ({ name: r.name, rates: perColumn(r.rates), increases: perColumn(r.increases) })),
    };
    io.stdout.write(`${JSON.stringify(json)}\n`);
    return;
  }
  const lines = [
    `tally top  ${opts.target.url.href}  by ${opts.by}  rates over ${seconds.toFixed(2)}s to ${new Date(second.atMs).toISOString()}`,
    healthLine(health),
    missingLabelNote(rows, opts.by) ?? '',
    ...renderTable({ by: opts.by, columns: opts.columns, rows, order: opts.order }),
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
}

/** Exit code: 0, 1 when the agent cannot be read, 2 for a wrong command line. */
export async function runTop(argv: string[], io: TopIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }): Promise<number> {
  let opts: TopOptions;
  try {
    opts = parseTopFlags(argv, io.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`tally top: ${e.message}\n`);
    return 2;
  }
  if (opts.help) {
    io.stdout.write(TOP_HELP);
    return 0;
  }
  try {
    const first = await readAgent(opts.target);
    const interactive = !opts.json && io.stdout.isTTY && io.stdin.isTTY;
    if (!interactive) {
      await snapshot(opts, first, io);
      return 0;
    }
    const read = (signal: AbortSignal): Promise<Reading> => readAgent(opts.target, signal);
    const screen = new LiveScreen({ server: opts.target.url.host, by: opts.by, columns: opts.columns, order: opts.order, intervalMs: opts.intervalMs, read }, first, io.stdout as tty.WriteStream, io.stdin as tty.ReadStream);
    await screen.run();
    return 0;
  } catch (e) {
    if (!(e instanceof FetchError || e instanceof ExpositionError)) throw e;
    io.stderr.write(`tally top: ${(e as Error).message}\n`);
    return 1;
  }
}
