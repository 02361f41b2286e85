/**
 * The columns `tally top` shows: each one counter metric, shown as its rate
 * per second. The built-ins have short names (sent, received, …); --metric
 * may also name any counter the agent serves, such as one of a user policy.
 */

export type Unit = 'bytes' | 'count';

export interface Column {
  /** What --metric and --sort call it. */
  key: string;
  /** The counter it shows, as /metrics names it. */
  metric: string;
  /** The column's heading. */
  title: string;
  unit: Unit;
}

export const BUILTIN_COLUMNS: readonly Column[] = [
  { key: 'sent', metric: 'tally_tcp_sent_bytes_total', title: 'TCP SENT/s', unit: 'bytes' },
  { key: 'received', metric: 'tally_tcp_received_bytes_total', title: 'TCP RECV/s', unit: 'bytes' },
  { key: 'retransmits', metric: 'tally_tcp_retransmits_total', title: 'RETRANS/s', unit: 'count' },
  { key: 'file', metric: 'tally_file_written_bytes_total', title: 'FILE WR/s', unit: 'bytes' },
  { key: 'execs', metric: 'tally_process_execs_total', title: 'EXECS/s', unit: 'count' },
];

export const DEFAULT_COLUMNS = BUILTIN_COLUMNS.map((c) => c.key);

export class ColumnError extends Error {}

/** A counter of the agent (a user policy's, say) as a column: tally_x_bytes_total is "X/s" in bytes. */
function metricColumn(metric: string): Column {
  const base = metric.replace(/^tally_/, '').replace(/_total$/, '');
  return { key: metric, metric, title: `${base.replace(/_bytes$/, '').toUpperCase()}/s`, unit: /_bytes_total$/.test(metric) ? 'bytes' : 'count' };
}

/** --metric LIST: built-in keys or counter names (ending in _total), comma-separated, each once. */
export function parseColumns(list: string): Column[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new ColumnError(`--metric is empty; give some of ${DEFAULT_COLUMNS.join(', ')}, or a counter's name ending in _total`);
  const columns: Column[] = [];
  for (const name of names) {
    const builtin = BUILTIN_COLUMNS.find((c) => c.key === name || c.metric === name);
    if (!builtin && !/^[a-zA-Z_:][a-zA-Z0-9_:]*_total$/.test(name)) {
      throw new ColumnError(`--metric: "${name}" is neither one of ${DEFAULT_COLUMNS.join(', ')} nor a counter's name ending in _total`);
    }
    const column = builtin ?? metricColumn(name);
    if (columns.some((c) => c.metric === column.metric)) throw new ColumnError(`--metric: "${name}" is given twice`);
    columns.push(column);
  }
  return columns;
}
