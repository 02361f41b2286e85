/**
 * The metrics server under a web config, over real sockets: HTTPS with
 * certificates openssl makes, client certificates, basic auth and headers;
 * a real Prometheus 2.42 scraping it with tls_config and basic_auth; and
 * edits to the file (and to the certificate it names) taking effect without
 * a restart, a bad edit keeping the last good config.
 */
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import * as http from 'node:http';
import * as tls from 'node:tls';
import { Gauge, Registry } from 'prom-client';
import { MetricsServer } from '../src/exporters/metrics-server';
import { loadWebConfig } from '../src/exporters/web-config';
import { makeCerts, TestCerts } from './helpers/certs';
import { PrometheusServer } from './helpers/prometheus-server';
import { parsePromText, select } from './helpers/prom-text';

/** libxcrypt-made bcrypt hashes ($2y$, as htpasswd writes) of "s3cret" and "other". */
const S3CRET = '$2y$05$Zm9vYmFyYmF6cXV4cXV1e.UF9O66aNTG4e6pC/CiejRuGtT08ps0.';
const OTHER = '$2b$06$QWxsIHRoZSB0aGluZ3MgYOP6b1gzYTf298lEb2y.iB0q2pxhu0eTG';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The server certificate's subject CN (HTTPS only). */
  serverCn?: string;
}

interface Ask {
  path?: string;
  user?: string;
  password?: string;
  /** Client certificate and key files. */
  cert?: string;
  key?: string;
  plain?: boolean;
}

/**
 * One request on a fresh connection (agent: false), so each one does its
 * own handshake and sees the config as it is now.
 */
function ask(port: number, certs: TestCerts, a: Ask = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (a.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${a.user}:${a.password}`).toString('base64')}`;
  const common = { host: '127.0.0.1', port, path: a.path ?? '/metrics', headers, agent: false as const };
  return new Promise((resolve, reject) => {
    const req = a.plain
      ? http.get(common)
      : https.get({ ...common, ca: fs.readFileSync(certs.caCert), cert: a.cert && fs.readFileSync(a.cert), key: a.key && fs.readFileSync(a.key) });
    req.setTimeout(10000, () => req.destroy(new Error('request timed out')));
    req.once('error', reject);
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const peer = (res.socket as tls.TLSSocket).getPeerCertificate?.();
        resolve({ status: res.statusCode!, headers: res.headers, body, serverCn: peer?.subject?.CN as string | undefined });
      });
      res.on('error', reject);
    });
  });
}

/** The error a request ends in (it must not get an answer). */
async function refused(p: Promise<Answer>): Promise<string> {
  try {
    const a = await p;
    return assert.fail(`expected no answer, got ${a.status}: ${a.body.slice(0, 200)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

class Fixture {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-websrv-'));
  readonly file = path.join(this.dir, 'web.yml');
  readonly log: string[] = [];
  server?: MetricsServer;

  constructor(readonly certs: TestCerts) {}

  write(lines: string[]): void {
    // Write then rename, as an editor or a Secret update does: never a half-written file.
    fs.writeFileSync(`${this.file}.tmp`, lines.join('\n') + '\n');
    fs.renameSync(`${this.file}.tmp`, this.file);
  }

  async start(lines: string[]): Promise<number> {
    this.write(lines);
    const registry = new Registry();
    new Gauge({ name: 'tally_test_value', help: 'a value', registers: [registry] }).set(42);
    this.server = new MetricsServer({
      registry,
      beforeScrape: () => undefined,
      notReadyReason: () => undefined,
      webConfig: loadWebConfig(this.file),
      log: { info: (m) => this.log.push(`info ${m}`), warn: (m, f) => this.log.push(`warn ${m}: ${String(f?.error)}`) },
    });
    await this.server.listen({ host: '127.0.0.1', port: 0 });
    return this.server.port!;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const tlsLines = (c: TestCerts, extra: string[] = [], cert = c.serverCert, key = c.serverKey): string[] => [
  'tls_server_config:',
  `  cert_file: ${cert}`,
  `  key_file: ${key}`,
  ...extra.map((l) => `  ${l}`),
];

describe('HTTPS with basic auth and headers', () => {
  const certs = makeCerts();
  const f = new Fixture(certs);
  let port = 0;
  before(async () => {
    port = await f.start([
      ...tlsLines(certs),
      'http_server_config:',
      '  headers: {X-Frame-Options: deny, X-Content-Type-Options: nosniff}',
      'basic_auth_users:',
      `  alice: '${S3CRET}'`,
    ]);
  });
  after(() => f.stop());

  it('serves the metrics to the right user, over TLS, with the headers', async () => {
    const a = await ask(port, certs, { user: 'alice', password: 's3cret' });
    assert.equal(a.status, 200);
    assert.equal(f.server!.tls, true);
    assert.equal(a.serverCn, 'tally server one');
    assert.deepEqual(select(parsePromText(a.body), 'tally_test_value').map((s) => s.value), [42]);
    assert.equal(a.headers['x-frame-options'], 'deny');
    assert.equal(a.headers['x-content-type-options'], 'nosniff');
  });

  it('answers a wrong password, an unknown user or no credentials with 401 and no metrics, on every path', async () => {
    for (const who of [{ user: 'alice', password: 'S3cret' }, { user: 'mallory', password: 's3cret' }, {}]) {
      for (const p of ['/metrics', '/healthz', '/readyz']) {
        const a = await ask(port, certs, { ...who, path: p });
        assert.deepEqual({ status: a.status, body: a.body, auth: a.headers['www-authenticate'], frame: a.headers['x-frame-options'] }, { status: 401, body: 'Unauthorized\n', auth: 'Basic', frame: 'deny' }, `${JSON.stringify(who)} ${p}`);
      }
    }
  });

  it('does not speak plain HTTP', async () => {
    const why = await refused(ask(port, certs, { plain: true, user: 'alice', password: 's3cret' }));
    assert.equal(why, 'ECONNRESET');
  });
});

describe('client certificates: RequireAndVerifyClientCert', () => {
  const certs = makeCerts();
  const f = new Fixture(certs);
  let port = 0;
  before(async () => {
    port = await f.start(tlsLines(certs, [`client_ca_file: ${certs.caCert}`, 'client_auth_type: RequireAndVerifyClientCert']));
  });
  after(() => f.stop());

  it('serves a client whose certificate the CA signed', async () => {
    const a = await ask(port, certs, { cert: certs.clientCert, key: certs.clientKey });
    assert.equal(a.status, 200);
    assert.deepEqual(select(parsePromText(a.body), 'tally_test_value').map((s) => s.value), [42]);
  });

  it('refuses a client without a certificate, and one with a certificate the CA did not sign', async () => {
    // TLS 1.3: the server's alert arrives once the client's side of the handshake is done.
    assert.equal(await refused(ask(port, certs)), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    assert.equal(await refused(ask(port, certs, { cert: certs.rogueCert, key: certs.rogueKey })), 'ECONNRESET');
  });
});

describe('edits take effect without a restart', () => {
  const certs = makeCerts();
  const f = new Fixture(certs);
  let port = 0;
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number[]> => {
    const a = await ask(port, certs, { user: 'alice', password: 'other', cert: certs.clientCert, key: certs.clientKey });
    assert.equal(a.status, 200, a.body);
    return select(parsePromText(a.body), name, labels).map((s) => s.value);
  };
  before(async () => {
    port = await f.start([...tlsLines(certs), 'basic_auth_users:', `  alice: '${S3CRET}'`]);
  });
  after(() => f.stop());

  it('a new password, a new certificate and a client certificate policy apply to the next request', async () => {
    assert.equal((await ask(port, certs, { user: 'alice', password: 's3cret' })).status, 200);
    f.write([...tlsLines(certs, [`client_ca_file: ${certs.caCert}`, 'client_auth_type: RequireAndVerifyClientCert'], certs.server2Cert, certs.server2Key), 'basic_auth_users:', `  alice: '${OTHER}'`]);
    // No client certificate: refused at the handshake now.
    assert.equal(await refused(ask(port, certs, { user: 'alice', password: 'other' })), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    const withCert = { cert: certs.clientCert, key: certs.clientKey };
    assert.equal((await ask(port, certs, { ...withCert, user: 'alice', password: 's3cret' })).status, 401);
    const a = await ask(port, certs, { ...withCert, user: 'alice', password: 'other' });
    assert.deepEqual({ status: a.status, cn: a.serverCn }, { status: 200, cn: 'tally server two' });
    assert.deepEqual(await metric('tally_web_config_reloads_total', { result: 'success' }), [1]);
  });

  it('a bad edit keeps the last good config, is logged once and counted; the fix is taken', async () => {
    const good = [...tlsLines(certs, [`client_ca_file: ${certs.caCert}`, 'client_auth_type: RequireAndVerifyClientCert'], certs.server2Cert, certs.server2Key), 'basic_auth_users:', `  alice: '${OTHER}'`];
    f.write([...good, 'rate_limt: {}']);
    assert.deepEqual(await metric('tally_web_config_last_reload_successful'), [0]);
    assert.deepEqual(await metric('tally_web_config_reloads_total', { result: 'failure' }), [1]);
    assert.deepEqual(f.log.filter((l) => l.startsWith('warn')), [
      `warn web config not reloaded; the last good one stays in force: --web.config.file ${f.file}: rate_limt: unknown field; the fields here are tls_server_config, http_server_config, basic_auth_users`,
    ]);
    // Turning TLS off cannot happen in place.
    f.write(['basic_auth_users:', `  alice: '${OTHER}'`]);
    assert.deepEqual(await metric('tally_web_config_reloads_total', { result: 'failure' }), [2]);
    assert.equal(f.log.at(-1), `warn web config not reloaded; the last good one stays in force: --web.config.file ${f.file}: tls_server_config: switching TLS off takes a restart of the agent`);
    f.write(good);
    assert.deepEqual(await metric('tally_web_config_last_reload_successful'), [1]);
    assert.deepEqual(await metric('tally_web_config_reloads_total'), [2, 2]);
  });

  it('a certificate replaced on disk under the same name is served from the next handshake', async () => {
    fs.copyFileSync(certs.serverCert, path.join(f.dir, 'tls.crt'));
    fs.copyFileSync(certs.serverKey, path.join(f.dir, 'tls.key'));
    // Relative names: against the config file's directory.
    f.write([...tlsLines(certs, [], 'tls.crt', 'tls.key'), 'basic_auth_users:', `  alice: '${OTHER}'`]);
    assert.equal((await ask(port, certs, { user: 'alice', password: 'other' })).serverCn, 'tally server one');
    fs.copyFileSync(certs.server2Key, path.join(f.dir, 'tls.key.new'));
    fs.copyFileSync(certs.server2Cert, path.join(f.dir, 'tls.crt.new'));
    fs.renameSync(path.join(f.dir, 'tls.key.new'), path.join(f.dir, 'tls.key'));
    fs.renameSync(path.join(f.dir, 'tls.crt.new'), path.join(f.dir, 'tls.crt'));
    assert.equal((await ask(port, certs, { user: 'alice', password: 'other' })).serverCn, 'tally server two');
  });
});

describe('a real Prometheus 2.42 scraping over TLS with basic auth', () => {
  const certs = makeCerts();
  const f = new Fixture(certs);
  let prom: PrometheusServer | undefined;
  before(async () => {
    const port = await f.start([...tlsLines(certs, [`client_ca_file: ${certs.caCert}`, 'client_auth_type: RequireAndVerifyClientCert']), 'basic_auth_users:', `  prometheus: '${S3CRET}'`]);
    const target = [`127.0.0.1:${port}`];
    const tlsConfig = (withCert: boolean): string => `tls_config: {ca_file: ${certs.caCert}${withCert ? `, cert_file: ${certs.clientCert}, key_file: ${certs.clientKey}` : ''}}`;
    prom = await PrometheusServer.start([], {
      jobs: [
        { name: 'tally-tls', targets: target, lines: ['scheme: https', tlsConfig(true), 'basic_auth: {username: prometheus, password: s3cret}'] },
        { name: 'wrong-password', targets: target, lines: ['scheme: https', tlsConfig(true), 'basic_auth: {username: prometheus, password: guess}'] },
        { name: 'no-client-cert', targets: target, lines: ['scheme: https', tlsConfig(false), 'basic_auth: {username: prometheus, password: s3cret}'] },
      ],
    });
  });
  after(async () => {
    await prom?.stop();
    await f.stop();
  });

  it('scrapes the metrics with the right credentials, and gets 401 or no handshake otherwise', async () => {
    const r = await prom!.queryUntil('tally_test_value', (x) => x.length > 0);
    assert.deepEqual(r.map((s) => [s.metric.job, s.value![1]]), [['tally-tls', '42']]);
    const up = await prom!.queryUntil('up', (x) => x.length === 3);
    assert.deepEqual(Object.fromEntries(up.map((s) => [s.metric.job, s.value![1]])), { 'tally-tls': '1', 'wrong-password': '0', 'no-client-cert': '0' });
    const errors = Object.fromEntries((await prom!.targets()).map((t) => [t.scrapePool, t.lastError]));
    assert.equal(errors['tally-tls'], '');
    assert.equal(errors['wrong-password'], 'server returned HTTP status 401 Unauthorized');
    assert.equal(errors['no-client-cert'], `Get "https://127.0.0.1:${f.server!.port}/metrics": remote error: tls: certificate required`);
    // Nothing of the metrics reached Prometheus under the jobs that were refused.
    assert.deepEqual(await prom!.query('count by (job) ({job=~"wrong-password|no-client-cert", __name__!~"up|scrape_.*"})'), []);
  });
});
