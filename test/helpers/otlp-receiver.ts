/**
 * An OTLP metrics receiver for tests, over http/protobuf or gRPC, on an
 * ephemeral loopback port. Requests are decoded with protobufjs code
 * generated from the official opentelemetry-proto definitions, as
 * @opentelemetry/otlp-transformer 0.217.0 shipped it (devDependency
 * otlp-transformer-protos; later versions encode by hand, and tally's
 * exporter uses one of those): the encoder under test and this decoder
 * share no code.
 *
 * refuse() stops listening, so connections are refused, and accept()
 * listens on the same port again: a collector that is down, then back.
 */
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { onExit } from './cleanup';

// The generated module is untyped (a protobufjs static root).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const root = require('otlp-transformer-protos/build/src/generated/root');
const v1 = root.opentelemetry.proto.collector.metrics.v1;
const Request = v1.ExportMetricsServiceRequest;
const Response = v1.ExportMetricsServiceResponse;
export const GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

export type AttrValue = string | number | boolean;
export type Attrs = Record<string, AttrValue>;

export interface ExpHistogram {
  count: number;
  sum: number;
  scale: number;
  zeroCount: number;
  offset: number;
  bucketCounts: number[];
  negativeCounts: number[];
  hasMin: boolean;
}

/** One data point, flattened with its metric's fields. */
export interface Point {
  metric: string;
  unit: string;
  description: string;
  kind: 'sum' | 'gauge' | 'histogram' | 'exponentialHistogram';
  temporality?: string;
  monotonic?: boolean;
  attributes: Attrs;
  startNs: bigint;
  timeNs: bigint;
  /** Sums and gauges. */
  value?: number;
  /** Exponential histograms. */
  exp?: ExpHistogram;
  /** Explicit-bucket histograms. */
  explicit?: { count: number; sum: number; bounds: number[]; counts: number[] };
}

export interface Received {
  at: number;
  /** HTTP: the request path; gRPC: the method path. */
  path: string;
  headers: Record<string, string>;
  resource: Attrs;
  scopes: Array<{ name: string; version: string }>;
  points: Point[];
}

type Obj = Record<string, any>;

function anyValue(v: Obj | undefined): AttrValue {
  if (!v) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  return JSON.stringify(v);
}

const attrs = (kvs: Obj[] | undefined): Attrs => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
const num = (x: unknown): number => (x === undefined ? 0 : Number(x));

/** Decodes one ExportMetricsServiceRequest (protobuf bytes) into flat points. */
export function decodeRequest(body: Uint8Array, path: string, headers: Record<string, string>): Received[] {
  // Longs as strings: timestamps in nanoseconds do not fit a double.
  const req = Request.toObject(Request.decode(body), { longs: String, enums: String, defaults: false, oneofs: true }) as Obj;
  return (req.resourceMetrics ?? []).map((rm: Obj): Received => {
    const points: Point[] = [];
    const scopes: Array<{ name: string; version: string }> = [];
    for (const sm of rm.scopeMetrics ?? []) {
      scopes.push({ name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' });
      for (const m of sm.metrics ?? []) {
        const base = { metric: m.name, unit: m.unit ?? '', description: m.description ?? '' };
        const common = (dp: Obj) => ({ attributes: attrs(dp.attributes), startNs: BigInt(dp.startTimeUnixNano ?? 0), timeNs: BigInt(dp.timeUnixNano ?? 0) });
        const numberValue = (dp: Obj): number => (dp.value === 'asInt' ? Number(dp.asInt) : num(dp.asDouble));
        if (m.sum) {
          for (const dp of m.sum.dataPoints ?? [])
            points.push({ ...base, kind: 'sum', temporality: m.sum.aggregationTemporality, monotonic: !!m.sum.isMonotonic, ...common(dp), value: numberValue(dp) });
        } else if (m.gauge) {
          for (const dp of m.gauge.dataPoints ?? []) points.push({ ...base, kind: 'gauge', ...common(dp), value: numberValue(dp) });
        } else if (m.exponentialHistogram) {
          for (const dp of m.exponentialHistogram.dataPoints ?? []) {
            points.push({
              ...base,
              kind: 'exponentialHistogram',
              temporality: m.exponentialHistogram.aggregationTemporality,
              ...common(dp),
              exp: {
                count: num(dp.count),
                sum: num(dp.sum),
                scale: num(dp.scale),
                zeroCount: num(dp.zeroCount),
                offset: num(dp.positive?.offset),
                bucketCounts: (dp.positive?.bucketCounts ?? []).map(Number),
                negativeCounts: (dp.negative?.bucketCounts ?? []).map(Number),
                hasMin: dp.min !== undefined,
              },
            });
          }
        } else if (m.histogram) {
          for (const dp of m.histogram.dataPoints ?? []) {
            points.push({
              ...base,
              kind: 'histogram',
              temporality: m.histogram.aggregationTemporality,
              ...common(dp),
              explicit: { count: num(dp.count), sum: num(dp.sum), bounds: dp.explicitBounds ?? [], counts: (dp.bucketCounts ?? []).map(Number) },
            });
          }
        }
      }
    }
    return { at: Date.now(), path, headers, resource: attrs(rm.resource?.attributes), scopes, points };
  });
}

const live = new Set<OtlpReceiver>();
onExit(() => {
  for (const r of live) r.kill();
});

export class OtlpReceiver {
  readonly received: Received[] = [];
  /** Requests that arrived, decodable or not (connections refused never arrive). */
  requests = 0;
  port = 0;
  private httpServer?: http.Server;
  private grpcServer?: grpc.Server;

  private constructor(readonly protocol: 'http/protobuf' | 'grpc') {
    live.add(this);
  }

  static async start(protocol: 'http/protobuf' | 'grpc' = 'http/protobuf'): Promise<OtlpReceiver> {
    const r = new OtlpReceiver(protocol);
    await r.accept();
    return r;
  }

  /** What to give --otlp-endpoint (a base URL: the agent appends /v1/metrics over HTTP). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private take(body: Uint8Array, path: string, headers: Record<string, string>): void {
    this.requests++;
    this.received.push(...decodeRequest(body, path, headers));
  }

  /** Listens (again, on the same port once it has one). */
  async accept(): Promise<void> {
    if (this.protocol === 'grpc') {
      const server = new grpc.Server();
      server.addService(
        {
          Export: {
            path: GRPC_EXPORT_PATH,
            requestStream: false,
            responseStream: false,
            requestSerialize: (b: Buffer) => b,
            requestDeserialize: (b: Buffer) => b,
            responseSerialize: () => Buffer.from(Response.encode(Response.create({})).finish()),
            responseDeserialize: (b: Buffer) => b,
          },
        },
        {
          Export: (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
            try {
              this.take(call.request, GRPC_EXPORT_PATH, headers);
              cb(null, {});
            } catch (e) {
              cb({ code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
            }
          },
        },
      );
      this.port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
      this.grpcServer = server;
      return;
    }
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          let body = Buffer.concat(chunks);
          if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
          if (req.headers['content-type'] !== 'application/x-protobuf') throw new Error(`content-type ${req.headers['content-type']}`);
          this.take(body, req.url ?? '', Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])));
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(Response.encode(Response.create({})).finish()));
        } catch (e) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end((e as Error).message);
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: this.port }, () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.httpServer = server;
  }

  /** Stops listening and drops open connections: from now on connections are refused. */
  async refuse(): Promise<void> {
    const h = this.httpServer;
    this.httpServer = undefined;
    if (h) {
      await new Promise<void>((resolve) => {
        h.close(() => resolve());
        h.closeAllConnections();
      });
    }
    const g = this.grpcServer;
    this.grpcServer = undefined;
    g?.forceShutdown();
  }

  /** Polls until cond holds of what was received; throws naming `what` on timeout. */
  async waitFor(cond: (r: Received[]) => boolean, what: string, timeoutMs = 15000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this.received)) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${this.received.length} exports`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.received;
  }

  /** The most recent export, after the given time. */
  latest(): Received | undefined {
    return this.received[this.received.length - 1];
  }

  async close(): Promise<void> {
    await this.refuse();
    live.delete(this);
  }

  /** Synchronous best effort, for process exit. */
  kill(): void {
    this.httpServer?.closeAllConnections();
    this.httpServer?.close();
    this.grpcServer?.forceShutdown();
  }
}

/** Points of one metric in an export whose attributes include all of `match`. */
export function pointsOf(r: Received | undefined, metric: string, match: Attrs = {}): Point[] {
  return (r?.points ?? []).filter((p) => p.metric === metric && Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}

/** The last point of `metric` matching `match` in the most recent export that has one. */
export function lastPoint(received: Received[], metric: string, match: Attrs): Point | undefined {
  for (let i = received.length - 1; i >= 0; i--) {
    const p = pointsOf(received[i], metric, match);
    if (p.length > 1) throw new Error(`${p.length} points of ${metric} match ${JSON.stringify(match)}`);
    if (p.length === 1) return p[0];
  }
  return undefined;
}

/** Waits for an export in which the point of `metric` for `match` satisfies cond; returns that point. */
export async function awaitPoint(r: OtlpReceiver, metric: string, match: Attrs, cond: (p: Point) => boolean, what: string, timeoutMs = 15000): Promise<Point> {
  await r.waitFor((rs) => {
    const p = lastPoint(rs, metric, match);
    return p !== undefined && cond(p);
  }, what, timeoutMs);
  return lastPoint(r.received, metric, match)!;
}

