/** A small parser for the Prometheus text format, enough to assert on series. */

export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

export function parsePromText(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      for (let l; (l = re.exec(m[2])); ) labels[l[1]] = unescape(l[2]);
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Series of one metric whose labels include all of `match`. */
export function select(series: Series[], name: string, match: Record<string, string> = {}): Series[] {
  return series.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The kernel id a metric is counted under (tally_metric_kernel_ids), for reading its entries with bpftool. */
export function kernelIdOf(series: Series[], metric: string): number {
  const ids = select(series, 'tally_metric_kernel_ids', { metric });
  if (ids.length !== 1) throw new Error(`${metric} has ${ids.length} kernel ids`);
  return Number(ids[0].labels.id);
}

export function sum(series: Series[]): number {
  return series.reduce((a, s) => a + s.value, 0);
}
