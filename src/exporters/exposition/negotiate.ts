/**
 * Which format and encoding a scrape gets, from its Accept and
 * Accept-Encoding headers, the way Prometheus's own client libraries decide:
 * the supported media range with the highest q wins, ties go to the earlier
 * one, and anything unrecognised gets the 0.0.4 text format.
 */
export type Format = 'prometheus' | 'openmetrics' | 'protobuf';

export const CONTENT_TYPES: Record<Format, string> = {
  prometheus: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
  protobuf: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
};

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
  order: number;
}

function parseList(header: string): MediaRange[] {
  return header
    .split(',')
    .map((part, order) => {
      const [type, ...rest] = part.split(';').map((s) => s.trim());
      const params = new Map<string, string>();
      for (const p of rest) {
        const eq = p.indexOf('=');
        if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"|"$/g, ''));
      }
      const q = params.has('q') ? Number(params.get('q')) : 1;
      return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0, order };
    })
    .filter((r) => r.type && r.q > 0);
}

function formatOf(r: MediaRange): Format | undefined {
  const version = r.params.get('version');
  switch (r.type) {
    case 'application/vnd.google.protobuf':
      return r.params.get('proto') === 'io.prometheus.client.MetricFamily' && r.params.get('encoding') === 'delimited' ? 'protobuf' : undefined;
    case 'application/openmetrics-text':
      // 0.0.1 is what Prometheus before 2.43 asks for; its grammar is 1.0.0's.
      return version === undefined || version === '1.0.0' || version === '0.0.1' ? 'openmetrics' : undefined;
    case 'text/plain':
      return version === undefined || version === '0.0.4' ? 'prometheus' : undefined;
    default:
      return undefined;
  }
}

export function negotiateFormat(accept: string | undefined): Format {
  if (!accept) return 'prometheus';
  const ranges = parseList(accept).sort((a, b) => b.q - a.q || a.order - b.order);
  for (const r of ranges) {
    const f = formatOf(r);
    if (f) return f;
  }
  return 'prometheus';
}

/** True when the scraper takes gzip (and has not refused it with q=0). */
export function wantsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  return parseList(acceptEncoding).some((r) => r.type === 'gzip' || r.type === 'x-gzip');
}
