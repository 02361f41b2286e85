/**
 * OTLP settings from flags and the standard OTEL_EXPORTER_OTLP_* variables:
 * precedence (flag, metrics-specific variable, generic variable), the
 * /v1/metrics path rule of the specification, headers, timeout, and one
 * clear error for each mistake, also through the real command line.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { parseFlags, UsageError } from '../src/cli/args';
import { OtlpConfig, OtlpConfigError, parseHeaders, resolveOtlpConfig } from '../src/exporters/otlp/config';
import { MAIN, waitExit } from './helpers/agent-process';

type Env = Record<string, string | undefined>;

const otlpOf = (argv: string[], env: Env = {}): OtlpConfig | undefined => {
  const p = parseFlags(argv, env);
  assert.equal(p.kind, 'run');
  return p.kind === 'run' ? p.config.otlp : undefined;
};

describe('OTLP endpoint and protocol', () => {
  it('is off without an endpoint, whatever else the variables say', () => {
    assert.equal(otlpOf([]), undefined);
    assert.equal(otlpOf([], { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_HEADERS: 'a=b', OTEL_EXPORTER_OTLP_ENDPOINT: '' }), undefined);
  });

  it('defaults: http/protobuf, 15s, 10 s timeout, no headers', () => {
    assert.deepEqual(otlpOf(['--otlp-endpoint', 'http://collector:4318']), {
      endpoint: 'http://collector:4318/v1/metrics',
      protocol: 'http/protobuf',
      intervalMs: 15_000,
      timeoutMs: 10_000,
      headers: {},
    });
  });

  // [what, flags, env, endpoint, protocol]
  const cases: Array<[string, string[], Env, string, string]> = [
    ['the flag is a base URL: /v1/metrics is appended', ['--otlp-endpoint', 'https://c.example:4318/otlp/'], {}, 'https://c.example:4318/otlp/v1/metrics', 'http/protobuf'],
    ['a flag whose path already ends in /v1/metrics is used as it is', ['--otlp-endpoint', 'http://c:4318/v1/metrics'], {}, 'http://c:4318/v1/metrics', 'http/protobuf'],
    ['the generic variable gets /v1/metrics appended', [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, 'http://c:4318/v1/metrics', 'http/protobuf'],
    ['the generic variable with a path keeps it, then /v1/metrics', [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://gw/otlp' }, 'http://gw/otlp/v1/metrics', 'http/protobuf'],
    ['the metrics variable is used as it is', [], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://c:4318/custom/path' }, 'http://c:4318/custom/path', 'http/protobuf'],
    ['the metrics variable without a path gets only the root', [], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://c:4318' }, 'http://c:4318/', 'http/protobuf'],
    ['the metrics variable wins over the generic one', [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://b:4318/v1/metrics' }, 'http://b:4318/v1/metrics', 'http/protobuf'],
    ['the flag wins over both variables', ['--otlp-endpoint', 'http://flag:4318'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://b:4318/x' }, 'http://flag:4318/v1/metrics', 'http/protobuf'],
    ['an empty variable counts as unset', [], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: ' ', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318' }, 'http://a:4318/v1/metrics', 'http/protobuf'],
    ['grpc: the endpoint is used as it is, no path appended', ['--otlp-endpoint', 'http://c:4317', '--otlp-protocol', 'grpc'], {}, 'http://c:4317/', 'grpc'],
    ['grpc from the generic protocol variable', [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'https://c:4317/', 'grpc'],
    ['the metrics protocol variable wins over the generic one', [], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf' }, 'http://c:4318/v1/metrics', 'http/protobuf'],
    ['the protocol flag wins over the variables', ['--otlp-protocol', 'grpc'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf' }, 'http://c:4317/', 'grpc'],
  ];
  for (const [what, flags, env, endpoint, protocol] of cases) {
    it(what, () => {
      const c = otlpOf(flags, env);
      assert.equal(c?.endpoint, endpoint);
      assert.equal(c?.protocol, protocol);
    });
  }

  it('--otlp-interval', () => {
    assert.equal(otlpOf(['--otlp-endpoint', 'http://c:4318', '--otlp-interval', '1m30s'])?.intervalMs, 90_000);
    assert.equal(otlpOf(['--otlp-endpoint', 'http://c:4318', '--otlp-interval', '100ms'])?.intervalMs, 100);
  });
});

describe('OTLP headers and timeout', () => {
  it('merges generic and metrics headers, metrics winning per key, values percent-decoded, keys lowercased', () => {
    const c = otlpOf(['--otlp-endpoint', 'http://c:4318'], {
      OTEL_EXPORTER_OTLP_HEADERS: 'Api-Key=generic, tenant=a%2Cb ,x-empty=',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'api-key=metrics%3D1',
    });
    assert.deepEqual(c?.headers, { 'api-key': 'metrics=1', tenant: 'a,b', 'x-empty': '' });
  });
  it('timeout: the metrics variable wins over the generic one', () => {
    assert.equal(otlpOf(['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_TIMEOUT: '2500' })?.timeoutMs, 2500);
    assert.equal(otlpOf(['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_TIMEOUT: '2500', OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '700' })?.timeoutMs, 700);
  });
  it('an empty list is no headers', () => assert.deepEqual(parseHeaders('X', ' , '), {}));
});

describe('OTLP configuration errors name what to fix', () => {
  // [flags, env, message]
  const bad: Array<[string[], Env, RegExp]> = [
    [['--otlp-endpoint', 'collector:4318'], {}, /^--otlp-endpoint "collector:4318" must start with http:\/\/ or https:\/\/ \(https for TLS\); write it like http:\/\/collector:4318$/],
    [['--otlp-endpoint', 'not a url'], {}, /^--otlp-endpoint "not a url" is not a URL; write it like http:\/\/collector:4318$/],
    [[], { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c' }, /^OTEL_EXPORTER_OTLP_ENDPOINT "ftp:\/\/c" must start with http:\/\/ or https:\/\//],
    [['--otlp-endpoint', 'http://c:4318/?a=1'], {}, /must not have a query or fragment$/],
    [['--otlp-endpoint', 'http://c:4317/v1/metrics', '--otlp-protocol', 'grpc'], {}, /^--otlp-endpoint "http:\/\/c:4317\/v1\/metrics" has a path, which gRPC does not use; give only the scheme, host and port, like http:\/\/collector:4317$/],
    [['--otlp-endpoint', 'http://c:4318', '--otlp-protocol', 'http/json'], {}, /^--otlp-protocol "http\/json": http\/json is not supported; tally exports OTLP as http\/protobuf or grpc$/],
    [[], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'thrift' }, /^OTEL_EXPORTER_OTLP_METRICS_PROTOCOL "thrift": tally exports OTLP as http\/protobuf or grpc$/],
    [['--otlp-endpoint', 'http://c:4318', '--otlp-interval', '15'], {}, /^--otlp-interval "15" is not a duration; write it like 30s, 1m or 1m30s/],
    [['--otlp-endpoint', 'http://c:4318', '--otlp-interval', '10ms'], {}, /^--otlp-interval "10ms" is too short; give 100ms or more \(default 15s\)$/],
    [['--otlp-interval', '5s'], {}, /^--otlp-interval has no effect without an endpoint; give --otlp-endpoint URL \(or set OTEL_EXPORTER_OTLP_ENDPOINT\)$/],
    [['--otlp-protocol', 'grpc'], {}, /^--otlp-protocol has no effect without an endpoint/],
    [['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_HEADERS: 'api-key' }, /^OTEL_EXPORTER_OTLP_HEADERS: "api-key" is not a header; write key=value pairs separated by commas, like api-key=secret,tenant=a$/],
    [['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'a b=c' }, /^OTEL_EXPORTER_OTLP_METRICS_HEADERS: "a b=c" is not a header/],
    [['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_HEADERS: 'k=100%' }, /^OTEL_EXPORTER_OTLP_HEADERS: the value of "k" has a malformed percent escape; encode "%" as %25$/],
    [['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_TIMEOUT: '10s' }, /^OTEL_EXPORTER_OTLP_TIMEOUT "10s" must be a whole number of milliseconds from 1 up, like 10000$/],
    [['--otlp-endpoint', 'http://c:4318'], { OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '0' }, /^OTEL_EXPORTER_OTLP_METRICS_TIMEOUT "0" must be a whole number/],
  ];
  for (const [flags, env, message] of bad) {
    it(`${[...flags, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, () => {
      assert.throws(() => parseFlags(flags, env), (e: unknown) => e instanceof UsageError && message.test((e as Error).message));
    });
  }
  it('resolveOtlpConfig itself throws OtlpConfigError', () => {
    assert.throws(() => resolveOtlpConfig({ endpoint: 'x' }, {}), OtlpConfigError);
  });
});

describe('the command line', () => {
  it('a bad OTLP variable ends in one line and exit 2, before anything loads', async () => {
    const child = spawn(process.execPath, [MAIN, '--metrics-server', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exit = await waitExit(child, 20000);
    assert.equal(exit.code, 2, stderr);
    assert.equal(stderr, 'tally: OTEL_EXPORTER_OTLP_PROTOCOL "http/json": http/json is not supported; tally exports OTLP as http/protobuf or grpc\n');
  });
});
