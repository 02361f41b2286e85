/**
 * OTLP export settings from the flags and the standard OpenTelemetry
 * environment variables; a flag wins over a variable, a metrics-specific
 * variable over the generic one. OTLP is off unless an endpoint is set.
 *
 *   endpoint  --otlp-endpoint, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT
 *   protocol  --otlp-protocol, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf)
 *   interval  --otlp-interval (15s)
 *   headers   OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_METRICS_HEADERS per key
 *   timeout   OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT (10000 ms)
 *
 * As the OpenTelemetry specification has it, over http/protobuf the generic
 * endpoint is a base URL that /v1/metrics is appended to, while the
 * metrics-specific one is used as it is. --otlp-endpoint is a base URL too,
 * unless its path already ends in /v1/metrics. gRPC endpoints are used as
 * they are (host and port; the scheme says whether TLS is used).
 */
import { parseDuration } from '../../util/duration';

export const OTLP_PROTOCOLS = ['http/protobuf', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export const DEFAULT_OTLP_INTERVAL = '15s';
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
/** Shorter intervals would make exports a steady load on the agent. */
export const MIN_OTLP_INTERVAL_MS = 100;

export interface OtlpConfig {
  /** The full URL (http/protobuf) or the server address URL (grpc) exports go to. */
  endpoint: string;
  protocol: OtlpProtocol;
  intervalMs: number;
  /** Per export attempt, retries of the exporter included. */
  timeoutMs: number;
  /** HTTP headers, or gRPC metadata. */
  headers: Record<string, string>;
}

/** The --otlp-* flags as given (undefined when absent). */
export interface OtlpFlags {
  endpoint?: string;
  protocol?: string;
  interval?: string;
}

export class OtlpConfigError extends Error {}

type Env = Readonly<Record<string, string | undefined>>;

/** A value and where it came from, so an error can name the flag or variable to fix. */
interface Sourced {
  value: string;
  source: string;
}

/** The first of the sources that is set; the spec reads an empty variable as unset. */
function first(...candidates: Array<[string, string | undefined]>): Sourced | undefined {
  for (const [source, value] of candidates) if (value !== undefined && value.trim() !== '') return { value: value.trim(), source };
  return undefined;
}

function parseUrl(s: Sourced, example: string): URL {
  let url: URL;
  try {
    url = new URL(s.value);
  } catch {
    throw new OtlpConfigError(`${s.source} "${s.value}" is not a URL; write it like ${example}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OtlpConfigError(`${s.source} "${s.value}" must start with http:// or https:// (https for TLS); write it like ${example}`);
  }
  if (url.search || url.hash) throw new OtlpConfigError(`${s.source} "${s.value}" must not have a query or fragment`);
  return url;
}

/** Appends v1/metrics to a base URL's path, with exactly one slash between. */
function withMetricsPath(url: URL): string {
  const out = new URL(url.href);
  out.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/metrics`;
  return out.href;
}

function resolveEndpoint(flag: string | undefined, env: Env, protocol: OtlpProtocol): string | undefined {
  const example = protocol === 'grpc' ? 'http://collector:4317' : 'http://collector:4318';
  const s = first(['--otlp-endpoint', flag], ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT], ['OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT]);
  if (!s) return undefined;
  const url = parseUrl(s, example);
  if (protocol === 'grpc') {
    if (url.pathname !== '/') {
      throw new OtlpConfigError(`${s.source} "${s.value}" has a path, which gRPC does not use; give only the scheme, host and port, like ${example}`);
    }
    return url.href;
  }
  if (s.source === 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT') return url.href;
  if (s.source === '--otlp-endpoint' && /\/v1\/metrics\/?$/.test(url.pathname)) return url.href;
  return withMetricsPath(url);
}

function resolveProtocol(flag: string | undefined, env: Env): OtlpProtocol {
  const s = first(['--otlp-protocol', flag], ['OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL], ['OTEL_EXPORTER_OTLP_PROTOCOL', env.OTEL_EXPORTER_OTLP_PROTOCOL]);
  if (!s) return 'http/protobuf';
  if ((OTLP_PROTOCOLS as readonly string[]).includes(s.value)) return s.value as OtlpProtocol;
  const why = s.value === 'http/json' ? 'http/json is not supported; ' : '';
  throw new OtlpConfigError(`${s.source} "${s.value}": ${why}tally exports OTLP as ${OTLP_PROTOCOLS.join(' or ')}`);
}

/**
 * "k1=v1,k2=v2" with percent-encoded values (the W3C Baggage format the
 * spec names). Keys are lowercased: HTTP header names are case-insensitive
 * and gRPC metadata keys must be lowercase.
 */
export function parseHeaders(source: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const key = eq < 0 ? '' : entry.slice(0, eq).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) {
      throw new OtlpConfigError(`${source}: "${entry}" is not a header; write key=value pairs separated by commas, like api-key=secret,tenant=a`);
    }
    let value: string;
    try {
      value = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      throw new OtlpConfigError(`${source}: the value of "${key}" has a malformed percent escape; encode "%" as %25`);
    }
    out[key] = value;
  }
  return out;
}

function resolveTimeout(env: Env): number {
  const s = first(['OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT], ['OTEL_EXPORTER_OTLP_TIMEOUT', env.OTEL_EXPORTER_OTLP_TIMEOUT]);
  if (!s) return DEFAULT_OTLP_TIMEOUT_MS;
  const n = Number(s.value);
  if (!/^\d+$/.test(s.value) || !Number.isSafeInteger(n) || n < 1) {
    throw new OtlpConfigError(`${s.source} "${s.value}" must be a whole number of milliseconds from 1 up, like 10000`);
  }
  return n;
}

function resolveInterval(flag: string | undefined): number {
  const ms = parseDuration('--otlp-interval', flag ?? DEFAULT_OTLP_INTERVAL);
  if (ms < MIN_OTLP_INTERVAL_MS) throw new OtlpConfigError(`--otlp-interval "${flag}" is too short; give ${MIN_OTLP_INTERVAL_MS}ms or more (default ${DEFAULT_OTLP_INTERVAL})`);
  return ms;
}

/** The OTLP settings, or undefined when no endpoint is configured (OTLP off). */
export function resolveOtlpConfig(flags: OtlpFlags, env: Env): OtlpConfig | undefined {
  const protocol = resolveProtocol(flags.protocol, env);
  const intervalMs = resolveInterval(flags.interval);
  const endpoint = resolveEndpoint(flags.endpoint, env, protocol);
  if (!endpoint) {
    // The variables may be set for other programs; a flag without an endpoint is a mistake.
    const stray = flags.protocol !== undefined ? '--otlp-protocol' : flags.interval !== undefined ? '--otlp-interval' : undefined;
    if (stray) throw new OtlpConfigError(`${stray} has no effect without an endpoint; give --otlp-endpoint URL (or set OTEL_EXPORTER_OTLP_ENDPOINT)`);
    return undefined;
  }
  const headers = {
    ...parseHeaders('OTEL_EXPORTER_OTLP_HEADERS', env.OTEL_EXPORTER_OTLP_HEADERS ?? ''),
    ...parseHeaders('OTEL_EXPORTER_OTLP_METRICS_HEADERS', env.OTEL_EXPORTER_OTLP_METRICS_HEADERS ?? ''),
  };
  return { endpoint, protocol, intervalMs, timeoutMs: resolveTimeout(env), headers };
}
