/**
 * The two text formats: Prometheus 0.0.4, and OpenMetrics 1.0 for scrapers
 * that ask for it.
 *
 * OpenMetrics differs where a parser notices: a counter family is named
 * without its `_total` suffix (its samples keep it), `le` bounds are floats,
 * and the exposition ends with `# EOF`.
 *
 * Written straight into a Buffer, the bytes the server sends: at 100k series
 * a scrape is 8 MB of text, and building it as JavaScript strings, then
 * encoding them as UTF-8, took twice as long (BENCHMARKS.md, "Scrape").
 */
import { Family, Sample } from './model';
import { escapeHelp, escapeLabelValue, formatNumber } from './number-format';
import { RenderedLabels } from './rendered-labels';

export type TextFormat = 'prometheus' | 'openmetrics';

/**
 * A series' labels as the text formats write them, UTF-8 encoded. A scrape
 * of 100k series renders 100k of these, most for label objects the counting
 * core hands over unchanged from one read to the next (its label-set
 * cache): each object's rendering is kept as long as the object lives, per
 * format (rendered-labels.ts).
 */
const rendered = { prometheus: new RenderedLabels('prometheus text'), openmetrics: new RenderedLabels('openmetrics text') };

function labelBytes(labels: Sample['labels'], openMetrics: boolean): Buffer {
  const cache = openMetrics ? rendered.openmetrics : rendered.prometheus;
  let out = cache.get(labels);
  if (out !== undefined) return out;
  let text = '';
  for (const k in labels) {
    let value = String(labels[k]);
    // OpenMetrics wants a float in le; 0.0.4 scrapers read "1" and "1.0" alike.
    if (openMetrics && k === 'le' && /^-?\d+$/.test(value)) value += '.0';
    text += `${text === '' ? '{' : ','}${k}="${escapeLabelValue(value)}"`;
  }
  out = Buffer.from(text === '' ? '' : `${text}}`, 'utf8');
  cache.set(labels, out);
  return out;
}

/**
 * The size of the last exposition, per format: the next one starts with
 * room for it. Growing from a small buffer by doubling copied everything
 * written so far at each step, and at 8 MB that cost more than writing it.
 */
const lastSize = { prometheus: 64 * 1024, openmetrics: 64 * 1024 };

/** A growing buffer written front to back. */
class Writer {
  private buf: Buffer;
  private off = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.off + n));
    // set(), not copy(): the same bytes, without copy()'s argument checks.
    next.set(this.buf.subarray(0, this.off));
    this.buf = next;
  }

  bytes(b: Buffer): void {
    this.room(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** ASCII only: names and numbers. */
  ascii(s: string): void {
    this.room(s.length);
    this.off += this.buf.write(s, this.off, 'latin1');
  }

  utf8(s: string): void {
    this.room(Buffer.byteLength(s, 'utf8'));
    this.off += this.buf.write(s, this.off, 'utf8');
  }

  done(): Buffer {
    return this.buf.subarray(0, this.off);
  }
}

function familyName(f: Family, openMetrics: boolean): string {
  return openMetrics && f.type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
}

function sampleName(f: Family, s: Sample, openMetrics: boolean): string {
  // An OpenMetrics counter's sample must carry _total even when the family does not.
  if (openMetrics && f.type === 'counter' && !s.name.endsWith('_total')) return `${s.name}_total`;
  return s.name;
}

export function encodeTextBuffer(families: Family[], format: TextFormat): Buffer {
  const om = format === 'openmetrics';
  // A little more than last time: a scrape rarely shrinks much, and one that grows past it copies once.
  const w = new Writer(Math.ceil(lastSize[format] * 1.1));
  for (const f of families) {
    const name = familyName(f, om);
    w.utf8(`# HELP ${name} ${escapeHelp(f.help, om)}\n# TYPE ${name} ${om && f.type === 'untyped' ? 'unknown' : f.type}\n`);
    for (const s of f.samples) {
      w.ascii(sampleName(f, s, om));
      w.bytes(labelBytes(s.labels, om));
      w.ascii(` ${formatNumber(s.value)}\n`);
    }
  }
  if (om) w.ascii('# EOF\n');
  const out = w.done();
  lastSize[format] = Math.max(64 * 1024, out.length);
  return out;
}

export function encodeText(families: Family[], format: TextFormat): string {
  return encodeTextBuffer(families, format).toString('utf8');
}
