/**
 * Flags of `tally top`, validated and defaulted like the agent's: every
 * mistake is a UsageError of one line naming the flag and what it takes.
 */
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import { UsageError } from '../cli/args';
import { FILTER_LABELS } from '../labels/label-filter';
import { DurationError, parseDuration } from '../util/duration';
import { Column, ColumnError, DEFAULT_COLUMNS, parseColumns } from './columns';
import { MetricsTarget } from './fetch-metrics';
import { SortOrder } from './rates';

export const TOP_USAGE = 'usage: tally top [--server ADDR] [--by LABEL] [--metric LIST] [--sort COLUMN] [--interval DURATION] [--json]';

export const TOP_HELP = `${TOP_USAGE}

A live table of what the agent counts, per label value: rates per second
between two reads of its /metrics. Keys: < and > (or the arrows, or 1-9,
and 0 for the name) choose the sort column, r reverses it, q quits. When
the output is not a terminal, it reads twice, --interval apart, prints one
table and exits.

  --server ADDR          the agent's --metrics-server: HOST:PORT, :PORT, or an
                         http:// or https:// URL (default "127.0.0.1:2112")
  --by LABEL             one row per value of ${FILTER_LABELS.join(', ')} (default "workload")
  --metric LIST          columns, from ${DEFAULT_COLUMNS.join(', ')}, or any counter's
                         name ending in _total (default: all five)
  --sort COLUMN          the column to sort by first, highest first (default: the first)
  --interval DURATION    time between reads (default "2s")
  --json                 print one snapshot as JSON (rates and increases), then exit
  --user USER            basic auth user; the password from $TALLY_PASSWORD or --password-file
  --password-file FILE   the basic auth password (its first line)
  --ca-file FILE         the CA that signed the agent's certificate (PEM)
  --cert-file FILE       client certificate (PEM), with --key-file, for client_auth_type
  --key-file FILE        the client certificate's key (PEM)
  --insecure             accept any certificate from the agent
`;

export interface TopOptions {
  target: MetricsTarget;
  by: string;
  columns: Column[];
  order: SortOrder;
  intervalMs: number;
  json: boolean;
  help: boolean;
}

/** "host:port", ":port" (this host), or a URL; a URL without a path reads /metrics. */
export function metricsUrl(text: string): URL {
  if (/^https?:\/\//.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new UsageError(`--server "${text}" is not a URL`);
    }
    if (url.pathname === '/') url.pathname = '/metrics';
    return url;
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]]*):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new UsageError(`--server "${text}" is not HOST:PORT or a URL; examples: 127.0.0.1:2112, :2112, https://node-1:2112`);
  }
  return new URL(`http://${m[1] || '127.0.0.1'}:${m[2]}/metrics`);
}

function readFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

export function parseTopFlags(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env): TopOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string', default: '127.0.0.1:2112' },
        by: { type: 'string', default: 'workload' },
        metric: { type: 'string', default: DEFAULT_COLUMNS.join(',') },
        sort: { type: 'string' },
        interval: { type: 'string', default: '2s' },
        json: { type: 'boolean', default: false },
        user: { type: 'string' },
        'password-file': { type: 'string' },
        'ca-file': { type: 'string' },
        'cert-file': { type: 'string' },
        'key-file': { type: 'string' },
        insecure: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError(`top: ${(e as Error).message.split('\n')[0].replace(/\.$/, '')}; ${TOP_USAGE}`);
  }
  const by = values.by!;
  if (!(FILTER_LABELS as readonly string[]).includes(by)) throw new UsageError(`--by "${by}" is not one of ${FILTER_LABELS.join(', ')}`);
  let columns: Column[];
  try {
    columns = parseColumns(values.metric!);
  } catch (e) {
    if (e instanceof ColumnError) throw new UsageError(e.message);
    throw e;
  }
  let column = 0;
  if (values.sort !== undefined) {
    if (values.sort === by) column = -1;
    else {
      column = columns.findIndex((c) => c.key === values.sort || c.metric === values.sort);
      if (column < 0) throw new UsageError(`--sort "${values.sort}" is not a shown column; give ${by} or one of ${columns.map((c) => c.key).join(', ')}`);
    }
  }
  let intervalMs: number;
  try {
    intervalMs = parseDuration('--interval', values.interval!);
  } catch (e) {
    if (e instanceof DurationError) throw new UsageError(e.message);
    throw e;
  }
  if (intervalMs < 100) throw new UsageError(`--interval "${values.interval}" is too short; give 100ms or more`);
  if ((values['cert-file'] === undefined) !== (values['key-file'] === undefined)) throw new UsageError('--cert-file and --key-file go together; give both or neither');
  if (values['password-file'] !== undefined && values.user === undefined) throw new UsageError('--password-file needs --user');
  // The password never goes on the command line, where ps shows it to everyone.
  const password = values['password-file'] === undefined ? env.TALLY_PASSWORD : readFile('--password-file', values['password-file']).toString('utf8').split(/\r?\n/)[0];
  return {
    target: {
      url: metricsUrl(values.server!),
      user: values.user,
      password,
      ca: values['ca-file'] === undefined ? undefined : readFile('--ca-file', values['ca-file']),
      cert: values['cert-file'] === undefined ? undefined : readFile('--cert-file', values['cert-file']),
      key: values['key-file'] === undefined ? undefined : readFile('--key-file', values['key-file']),
      insecure: values.insecure,
      timeoutMs: Math.max(5000, intervalMs),
    },
    by,
    columns,
    order: { column, descending: column >= 0 },
    intervalMs,
    json: values.json!,
    help: values.help!,
  };
}
