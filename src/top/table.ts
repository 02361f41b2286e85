/**
 * Text of the `tally top` table: fixed-width columns, numbers right-aligned
 * with binary units, the sort column marked with "*". Pure: the same rows
 * and width always give the same lines, which is what the tests rely on.
 */
import { Column, Unit } from './columns';
import { Row, SortOrder } from './rates';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
const COUNT_UNITS = ['', 'k', 'M', 'G'];

/** 0, 0.25, 12.5, 3.2k; or for bytes 512 B, 1.5 KiB, 3.0 MiB. Shown per second by the column title. */
export function formatRate(value: number, unit: Unit): string {
  if (value === 0) return '0';
  const base = unit === 'bytes' ? 1024 : 1000;
  const units = unit === 'bytes' ? BYTE_UNITS : COUNT_UNITS;
  let i = 0;
  while (Math.abs(value) >= base && i < units.length - 1) {
    value /= base;
    i++;
  }
  // Bytes below 1 KiB are whole bytes in practice; small counts keep two decimals (0.50 execs/s).
  const digits = unit === 'bytes' ? (i === 0 ? 0 : 1) : i === 0 && Math.abs(value) < 10 ? 2 : 1;
  const text = value.toFixed(digits);
  return unit === 'bytes' ? `${text} ${units[i]}` : `${text}${units[i]}`;
}

/** Keeps both ends of a name too long for its column (pods and binaries differ at the end). */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  if (width <= 3) return text.slice(0, width);
  const head = Math.ceil((width - 3) / 2);
  return `${text.slice(0, head)}...${text.slice(text.length - (width - 3 - head))}`;
}

export interface TableView {
  /** The label rows are grouped by, the name column's title. */
  by: string;
  columns: readonly Column[];
  /** Already sorted. */
  rows: readonly Row[];
  order: SortOrder;
}

const GAP = '  ';
const NAME_MIN = 12;

/**
 * The heading line then one line per row, at most `maxRows` rows. With a
 * width, the name column takes what the number columns leave (at least
 * NAME_MIN, and cut lines end at the width); without one (a snapshot to a file) names are never cut.
 */
export function renderTable(view: TableView, width?: number, maxRows = Infinity): string[] {
  const titles = view.columns.map((c, i) => (view.order.column === i ? `*${c.title}` : c.title));
  const cells = view.rows.slice(0, maxRows).map((r) => r.rates.map((v, i) => formatRate(v, view.columns[i].unit)));
  const widths = titles.map((t, i) => Math.max(t.length, 9, ...cells.map((row) => row[i].length)));
  const nameTitle = `${view.order.column < 0 ? '*' : ''}${view.by.toUpperCase()}`;
  const longestName = Math.max(nameTitle.length, ...view.rows.slice(0, maxRows).map((r) => r.name.length));
  const numbersWidth = widths.reduce((a, w) => a + w + GAP.length, 0);
  const nameWidth = width === undefined ? longestName : Math.min(longestName, Math.max(NAME_MIN, width - numbersWidth));
  const line = (name: string, values: string[]): string => {
    const text = shorten(name, nameWidth).padEnd(nameWidth) + values.map((v, i) => GAP + v.padStart(widths[i])).join('');
    return width === undefined ? text.trimEnd() : text.slice(0, width).trimEnd();
  };
  return [line(nameTitle, titles), ...view.rows.slice(0, maxRows).map((r, i) => line(r.name, cells[i]))];
}
