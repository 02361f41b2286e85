/**
 * Rows of `tally top` from two successive reads of /metrics: each row sums
 * the series that share one value of the chosen label, and each column is
 * the increase of its counter between the reads over the time between them.
 */
import { Column } from './columns';
import { Sample } from './exposition-parse';

/** One read of /metrics: its samples and when it was taken. */
export interface Reading {
  atMs: number;
  samples: Sample[];
}

/** Row name of a series without the label: it folded into an overflow series, or never had one (namespace outside Kubernetes). */
export const OVERFLOW_ROW = '(overflow)';
export const NONE_ROW = '(none)';

export interface Row {
  /** The label's value, or OVERFLOW_ROW / NONE_ROW. */
  name: string;
  /** Per column: increase over the interval, per second. */
  rates: number[];
  /** Per column: increase over the interval. */
  increases: number[];
}

function seriesKey(s: Sample): string {
  return `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
}

export function rowNameOf(s: Sample, by: string): string {
  return s.labels[by] ?? (s.labels.overflow === 'true' ? OVERFLOW_ROW : NONE_ROW);
}

/**
 * Rows from `before` to `after`. A series new in `after` counts from 0 (a
 * pod that just started shows its first traffic); one that went down
 * started over (the agent restarted), so its increase is its value, as
 * Prometheus' rate() has it; one gone from `after` adds nothing.
 */
export function rowsBetween(before: Reading, after: Reading, columns: readonly Column[], by: string): Row[] {
  const seconds = (after.atMs - before.atMs) / 1000;
  if (!(seconds > 0)) throw new Error(`the second read (${after.atMs}) must come after the first (${before.atMs})`);
  const columnOf = new Map(columns.map((c, i) => [c.metric, i]));
  const earlier = new Map<string, number>();
  for (const s of before.samples) if (columnOf.has(s.name)) earlier.set(seriesKey(s), s.value);
  const rows = new Map<string, Row>();
  for (const s of after.samples) {
    const col = columnOf.get(s.name);
    if (col === undefined) continue;
    const name = rowNameOf(s, by);
    let row = rows.get(name);
    if (!row) rows.set(name, (row = { name, rates: columns.map(() => 0), increases: columns.map(() => 0) }));
    const was = earlier.get(seriesKey(s)) ?? 0;
    row.increases[col] += s.value >= was ? s.value - was : s.value;
  }
  for (const row of rows.values()) row.rates = row.increases.map((n) => n / seconds);
  return [...rows.values()];
}

/**
 * When no series carries the --by label, every row is NONE_ROW: say why
 * rather than show one anonymous row.
 */
export function missingLabelNote(rows: readonly Row[], by: string): string | undefined {
  if (!rows.length || rows.some((r) => r.name !== NONE_ROW && r.name !== OVERFLOW_ROW)) return undefined;
  const why = by === 'namespace' || by === 'pod' || by === 'container' ? ' or it has no Kubernetes to learn it from' : '';
  return `note: no series has a ${by} label: the agent's --metrics-label-filter leaves it out${why}`;
}

/** Which column orders the rows: -1 is the name column; descending puts the busiest first. */
export interface SortOrder {
  column: number;
  descending: boolean;
}

/** Sorted copy: by the column, then by name, so equal rows keep a stable order between refreshes. */
export function sortRows(rows: readonly Row[], order: SortOrder): Row[] {
  const byName = (a: Row, b: Row): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const sign = order.descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    if (order.column < 0) return sign * byName(a, b);
    return sign * (a.rates[order.column] - b.rates[order.column]) || byName(a, b);
  });
}
