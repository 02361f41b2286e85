/**
 * The Prometheus protobuf exposition (io.prometheus.client.MetricFamily,
 * length-delimited), the only format that carries native histograms.
 *
 * Kernel histograms go out as both: the native schema-0 buckets, which are
 * the kernel's log2 buckets index for index, and the classic `le` buckets,
 * for a Prometheus that reads protobuf without native histograms enabled.
 * Field numbers are those of prometheus/client_model's metrics.proto.
 */
import { RenderedLabels } from './rendered-labels';
import { Family, NativeHistogram, Sample } from './model';
import { ProtoWriter } from './protobuf-writer';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited';

const TYPE_CODE = { counter: 0, gauge: 1, summary: 2, untyped: 3, histogram: 4 } as const;

/**
 * Below every bucket a kernel histogram can fill (its smallest is
 * (2^-31, 2^-30] for latencies in seconds), so the zero bucket holds exact
 * zeros only. Non-zero also marks the histogram as native to Prometheus's
 * parser even when it has no observations yet.
 */
export const NATIVE_ZERO_THRESHOLD = 2 ** -128;

/**
 * A series' LabelPair messages, encoded once per label object while it
 * lives: the counting core hands over the same objects read after read
 * (as the text formats' cache, text-format.ts; rendered-labels.ts).
 */
const encodedLabels = new RenderedLabels('protobuf');

function labelBytes(l: Sample['labels']): Buffer {
  let b = encodedLabels.get(l);
  if (!b) {
    const p = new ProtoWriter();
    for (const [name, value] of Object.entries(l)) {
      p.message(1, (pair) => {
        pair.string(1, name);
        pair.string(2, String(value));
      });
    }
    encodedLabels.set(l, (b = p.finish()));
  }
  return b;
}

function labels(w: ProtoWriter, l: Sample['labels']): void {
  w.raw(labelBytes(l));
}

/** The bytes of a varint. */
function varintLength(v: number): number {
  let n = 1;
  for (; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

function writeVarint(out: Buffer, off: number, v: number): number {
  for (; v >= 0x80; v = Math.floor(v / 0x80)) out[off++] = (v % 0x80) | 0x80;
  out[off++] = v;
  return off;
}

/**
 * A counter, gauge or untyped family, written straight into one buffer: each
 * Metric is its cached labels and an 11-byte value message, so its length is
 * known before it is written. Built as nested messages, each sample cost
 * five allocations and two copies, and 100k series encoded 2.5 times slower
 * than text (BENCHMARKS.md, "Scrape cost per series by exposition format").
 */
function scalarFamily(f: Family, head: Buffer): Buffer {
  const field = f.type === 'counter' ? 3 : f.type === 'gauge' ? 2 : 5;
  const pairs = f.samples.map((s) => labelBytes(s.labels));
  let size = head.length;
  for (const p of pairs) size += 1 + varintLength(p.length + 11) + p.length + 11;
  const out = Buffer.allocUnsafe(size);
  out.set(head, 0);
  let off = head.length;
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i];
    out[off++] = (4 << 3) | 2; // MetricFamily.metric
    off = writeVarint(out, off, p.length + 11);
    out.set(p, off);
    off += p.length;
    out[off++] = (field << 3) | 2; // Metric.counter, .gauge or .untyped
    out[off++] = 9;
    out[off++] = (1 << 3) | 1; // its value, a double
    off = out.writeDoubleLE(f.samples[i].value, off);
  }
  return out;
}

/** Same labels, whatever their order: the key a histogram's samples share. */
function seriesKey(l: Sample['labels']): string {
  return JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le').sort(([a], [b]) => (a < b ? -1 : 1)));
}

interface ClassicSeries {
  labels: Sample['labels'];
  buckets: Array<[number, number]>;
  sum: number;
  count: number;
}

/** Regroups a histogram's flat _bucket/_sum/_count samples by series. */
function classicSeries(f: Family): Map<string, ClassicSeries> {
  const out = new Map<string, ClassicSeries>();
  for (const s of f.samples) {
    const key = seriesKey(s.labels);
    let c = out.get(key);
    if (!c) {
      const { le: _le, ...rest } = s.labels;
      out.set(key, (c = { labels: rest, buckets: [], sum: 0, count: 0 }));
    }
    if (s.name === `${f.name}_bucket`) c.buckets.push([Number(s.labels.le === '+Inf' ? Infinity : s.labels.le), s.value]);
    else if (s.name === `${f.name}_sum`) c.sum = s.value;
    else if (s.name === `${f.name}_count`) c.count = s.value;
  }
  return out;
}

/** Runs of consecutive indexes: [first index, length]. */
function runs(indexes: number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const i of indexes) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  }
  return out;
}

/** Spans and deltas of schema-0 buckets, as the native histogram fields want them. */
function nativeBuckets(w: ProtoWriter, n: NativeHistogram): void {
  const indexes = [...n.buckets.keys()].filter((i) => (n.buckets.get(i) ?? 0) > 0).sort((a, b) => a - b);
  let end = 0;
  runs(indexes).forEach(([start, len], k) => {
    // The first span's offset is its index; each later one's is the gap after the previous span.
    w.message(12, (s) => {
      s.sint(1, k === 0 ? start : start - end);
      s.uint64(2, len);
    });
    end = start + len;
  });
  // Counts as deltas from the previous bucket's, across spans.
  let prev = 0;
  for (const i of indexes) {
    const c = n.buckets.get(i)!;
    w.sint(13, c - prev);
    prev = c;
  }
}

function histogram(m: ProtoWriter, c: ClassicSeries, n?: NativeHistogram): void {
  m.message(7, (h) => {
    h.uint64(1, n ? n.count : c.count);
    h.double(2, n ? n.sum : c.sum);
    for (const [bound, cumulative] of c.buckets) {
      if (bound === Infinity) continue; // implied by sample_count
      h.message(3, (b) => {
        b.uint64(1, cumulative);
        b.double(2, bound);
      });
    }
    if (n) {
      h.sint(5, 0); // schema 0: bucket i is (2^(i-1), 2^i]
      h.double(6, NATIVE_ZERO_THRESHOLD);
      h.uint64(7, n.zeroCount);
      nativeBuckets(h, n);
    }
  });
}

function family(f: Family): Buffer {
  const w = new ProtoWriter();
  w.string(1, f.name);
  w.string(2, f.help);
  w.uint64(3, TYPE_CODE[f.type]);
  if (f.type === 'histogram') {
    const natives = new Map((f.native ?? []).map((n) => [seriesKey(n.labels), n]));
    for (const [key, c] of classicSeries(f)) {
      w.message(4, (m) => {
        labels(m, c.labels);
        histogram(m, c, natives.get(key));
      });
    }
    return w.finish();
  }
  return scalarFamily(f, w.finish());
}

/** Every family, each prefixed by its length as a varint. */
export function encodeProtobuf(families: Family[]): Buffer {
  const out = new ProtoWriter();
  for (const f of families) {
    // tally exposes no summaries; one would need quantile fields this encoder lacks.
    if (f.type === 'summary') continue;
    const body = family(f);
    out.rawVarint(body.length);
    out.raw(body);
  }
  return out.finish();
}
