/**
 * `tally top` against the agent's real metrics server under a web config
 * (real TLS from openssl, bcrypt basic auth, client certificates), run
 * in-process as a snapshot: what it reads when the flags match the config,
 * and the one line it ends with when they do not.
 */
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Counter, Registry } from 'prom-client';
import { MetricsServer } from '../src/exporters/metrics-server';
import { loadWebConfig } from '../src/exporters/web-config';
import { runTop, TopIo } from '../src/top/top';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { fetchMetrics } from '../src/top/fetch-metrics';
import { MAIN } from './helpers/agent-process';
import { makeCerts, TestCerts } from './helpers/certs';
import { freePort } from './helpers/ports';

/** A libxcrypt bcrypt hash ($2y$, as htpasswd writes) of "s3cret". */
const S3CRET = '$2y$05$Zm9vYmFyYmF6cXV4cXV1e.UF9O66aNTG4e6pC/CiejRuGtT08ps0.';

/** A metrics server whose tally_tcp_sent_bytes_total{workload="web"} the test drives. */
class Agentish {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-top-fetch-'));
  readonly registry = new Registry();
  readonly sent = new Counter({ name: 'tally_tcp_sent_bytes_total', help: 'sent', labelNames: ['workload'], registers: [this.registry] });
  server?: MetricsServer;
  port = 0;

  async start(webConfig?: string[]): Promise<this> {
    const file = path.join(this.dir, 'web.yml');
    if (webConfig) fs.writeFileSync(file, webConfig.join('\n') + '\n');
    this.server = new MetricsServer({
      registry: this.registry,
      beforeScrape: () => undefined,
      notReadyReason: () => undefined,
      webConfig: webConfig ? loadWebConfig(file) : undefined,
      log: { info: () => undefined, warn: () => undefined },
    });
    await this.server.listen({ host: '127.0.0.1', port: 0 });
    this.port = this.server.port!;
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** runTop as a pipe would run it (no TTY); `between` runs once the first read is done. */
async function top(argv: string[], env: Record<string, string> = {}, between: () => void = () => undefined): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { isTTY: false, write: (s: string) => (stdout += s) },
    stderr: {
      write: (s: string) => {
        stderr += s;
        if (s.includes('first read done')) between();
      },
    },
    stdin: { isTTY: false },
    env,
  } as unknown as TopIo;
  const code = await runTop(['--interval', '200ms', '--json', ...argv], io);
  return { code, stdout, stderr };
}

const tls = (c: TestCerts, extra: string[] = []): string[] => ['tls_server_config:', `  cert_file: ${c.serverCert}`, `  key_file: ${c.serverKey}`, ...extra.map((l) => `  ${l}`)];

describe('top over HTTPS with basic auth', () => {
  const certs = makeCerts();
  const agent = new Agentish();
  let server = '';
  before(async () => {
    await agent.start([...tls(certs), 'basic_auth_users:', `  alice: '${S3CRET}'`]);
    server = `https://127.0.0.1:${agent.port}`;
  });
  after(() => agent.stop());

  it('reads with the CA, the user and the password from a file; the increase between the reads is exact', async () => {
    const pw = path.join(agent.dir, 'pw');
    fs.writeFileSync(pw, 's3cret\n');
    agent.sent.inc({ workload: 'web' }, 1000);
    const r = await top(['--server', server, '--ca-file', certs.caCert, '--user', 'alice', '--password-file', pw, '--metric', 'sent'], {}, () => agent.sent.inc({ workload: 'web' }, 4321));
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(json.rows.map((row: { name: string; increases: object }) => [row.name, row.increases]), [['web', { sent: 4321 }]]);
    assert.ok(json.seconds >= 0.2 && json.seconds < 5, `${json.seconds}`);
    assert.ok(Math.abs(json.rows[0].rates.sent - 4321 / json.seconds) < 1e-6);
  });

  it('takes the password from $TALLY_PASSWORD, and --insecure instead of the CA', async () => {
    const r = await top(['--server', server, '--insecure', '--user', 'alice'], { TALLY_PASSWORD: 's3cret' });
    assert.equal(r.code, 0, r.stderr);
  });

  for (const [what, argv, env, message] of [
    ['no credentials', ['--ca-file'], {}, `${'URL'} answered 401 Unauthorized: the agent's web config asks for basic auth; give --user USER and the password in $TALLY_PASSWORD or --password-file`],
    ['a wrong password', ['--user', 'alice', '--ca-file'], { TALLY_PASSWORD: 'S3cret' }, `${'URL'} answered 401 Unauthorized: the agent does not accept user "alice" with that password (--user, $TALLY_PASSWORD or --password-file)`],
  ] as const) {
    it(`ends in one line on ${what}`, async () => {
      const r = await top(['--server', server, ...argv, certs.caCert], env);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `tally top: ${message.replace('URL', `${server}/metrics`)}\n`);
    });
  }

  it('ends in one line when it cannot verify the certificate, naming --ca-file and --insecure', async () => {
    const r = await top(['--server', server, '--user', 'alice'], { TALLY_PASSWORD: 's3cret' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tally top: the agent's certificate at 127\.0\.0\.1:\d+ does not verify \([A-Z_]+: .*\); give the CA that signed it with --ca-file, or --insecure to skip the check\n$/);
  });

  it('tells to use https:// when asked over plain HTTP', async () => {
    const r = await top(['--server', `127.0.0.1:${agent.port}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^tally top: the agent at 127\\.0\\.0\\.1:${agent.port} closed the connection without an answer \\(ECONNRESET\\); if its web config serves TLS, use https://127\\.0\\.0\\.1:${agent.port} in --server\\n$`));
  });
});

describe('top and client certificates', () => {
  const certs = makeCerts();
  const agent = new Agentish();
  let server = '';
  before(async () => {
    await agent.start(tls(certs, [`client_ca_file: ${certs.caCert}`, 'client_auth_type: RequireAndVerifyClientCert']));
    server = `https://127.0.0.1:${agent.port}`;
  });
  after(() => agent.stop());

  it('reads with --cert-file and --key-file', async () => {
    const r = await top(['--server', server, '--ca-file', certs.caCert, '--cert-file', certs.clientCert, '--key-file', certs.clientKey]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('without them, says the agent asks for a client certificate', async () => {
    const r = await top(['--server', server, '--ca-file', certs.caCert]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tally top: the agent at 127\.0\.0\.1:\d+ asks for a client certificate; give --cert-file and --key-file \(.+\)\n$/);
  });
});

describe('top and plain HTTP', () => {
  const agent = new Agentish();
  before(() => agent.start());
  after(() => agent.stop());

  it('tells that the agent does not answer TLS when asked with https://', async () => {
    const r = await top(['--server', `https://127.0.0.1:${agent.port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `tally top: 127.0.0.1:${agent.port} does not answer TLS; use http://127.0.0.1:${agent.port} in --server\n`);
  });

  it('tells when nothing listens', async () => {
    const port = await freePort();
    const r = await top(['--server', `:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `tally top: nothing listens at 127.0.0.1:${port}: is the agent running there? Give its --metrics-server address with --server\n`);
  });

  it('prints a table with the measured interval when not asked for JSON', async () => {
    agent.sent.inc({ workload: 'db' }, 10);
    let stdout = '';
    const io = { stdout: { isTTY: false, write: (s: string) => (stdout += s) }, stderr: { write: () => true }, stdin: { isTTY: false }, env: {} } as unknown as TopIo;
    assert.equal(await runTop(['--server', `:${agent.port}`, '--interval', '100ms', '--metric', 'sent,execs'], io), 0);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^tally top  http://127\\.0\\.0\\.1:${agent.port}/metrics  by workload  rates over \\d+\\.\\d\\ds to \\d{4}-`));
    assert.equal(lines[1], 'series 0 | map overflow 0 updates, 0 lost');
    assert.deepEqual(lines.slice(3).map((l) => l.split(/\s{2,}/)), [['WORKLOAD', '*TCP SENT/s', 'EXECS/s'], ['db', '0', '0']]);
  });

  it('notes, by a label no series has, why every row is (none)', async () => {
    agent.sent.inc({ workload: 'db' }, 10);
    let stdout = '';
    const io = { stdout: { isTTY: false, write: (s: string) => (stdout += s) }, stderr: { write: () => true }, stdin: { isTTY: false }, env: {} } as unknown as TopIo;
    assert.equal(await runTop(['--server', `:${agent.port}`, '--interval', '100ms', '--by', 'pod', '--metric', 'sent'], io), 0);
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines[2], "note: no series has a pod label: the agent's --metrics-label-filter leaves it out or it has no Kubernetes to learn it from");
    assert.deepEqual(lines.slice(3).map((l) => l.split(/\s{2,}/)), [['POD', '*TCP SENT/s'], ['(none)', '0']]);
  });
});

describe('tally top on the command line', () => {
  const tally = (...argv: string[]): Promise<Run> =>
    new Promise((resolve) => execFile(process.execPath, [MAIN, ...argv], (e, stdout, stderr) => resolve({ code: e ? Number(e.code) : 0, stdout, stderr })));

  it('a wrong flag: exit 2 and one line', async () => {
    assert.deepEqual(await tally('top', '--by', 'node'), { code: 2, stdout: '', stderr: 'tally top: --by "node" is not one of namespace, workload, pod, container, binary\n' });
  });

  it('no agent there: exit 1 and one line', async () => {
    const port = await freePort();
    const r = await tally('top', '--server', `127.0.0.1:${port}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^tally top: nothing listens at [^\n]*\n$/);
  });

  it('--help: the flags, exit 0', async () => {
    const r = await tally('top', '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: tally top /);
    assert.match(r.stdout, /--password-file FILE/);
  });
});

describe('top reads gzip', () => {
  it('asks for gzip, and decompresses what comes gzipped', async () => {
    const text = 'tally_tcp_sent_bytes_total{workload="web"} 77\n';
    let asked: string | undefined;
    const server = http.createServer((req, res) => {
      asked = req.headers['accept-encoding'];
      res.setHeader('Content-Encoding', 'gzip');
      res.end(zlib.gzipSync(text));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      assert.equal(await fetchMetrics({ url: new URL(`http://127.0.0.1:${port}/metrics`), timeoutMs: 5000 }), text);
      assert.equal(asked, 'gzip');
    } finally {
      server.close();
    }
  });
});
