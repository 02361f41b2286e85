/**
 * --web.config.file as text: what the exporter-toolkit's format accepts,
 * with its defaults, and one exact line naming the field for what it does
 * not; bcrypt hashes from other implementations ($2y$ as htpasswd and
 * libxcrypt write them); and the flag's errors as the user sees them.
 */
import { describe, it, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { BasicAuth, loadWebConfig, parseBasicAuth, parseWebConfig, WebConfigError } from '../src/exporters/web-config';
import { parseFlags, UsageError } from '../src/cli/args';
import { makeCerts } from './helpers/certs';
import { MAIN, waitExit } from './helpers/agent-process';

/** Made by libxcrypt's crypt(3) (Python's crypt module), not by bcryptjs: "s3cret" and "other". */
const HASH_2Y = '$2y$05$Zm9vYmFyYmF6cXV4cXV1e.UF9O66aNTG4e6pC/CiejRuGtT08ps0.';
const HASH_2B = '$2b$06$QWxsIHRoZSB0aGluZ3MgYOP6b1gzYTf298lEb2y.iB0q2pxhu0eTG';
const FILE = '/etc/tally/web.yml';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('web config parsing', () => {
  it('an empty file turns nothing on', () => {
    assert.deepEqual(parseWebConfig('', FILE), { tls: undefined, users: new Map(), headers: {}, http2: true });
  });

  it('reads every field tally implements, with the toolkit defaults, relative files against the file\'s directory', () => {
    const c = parseWebConfig(
      [
        'tls_server_config:',
        '  cert_file: certs/tls.crt',
        '  key_file: /abs/tls.key',
        '  client_ca_file: ca.crt',
        '  client_auth_type: RequireAndVerifyClientCert',
        'http_server_config:',
        '  http2: false',
        '  headers:',
        '    X-Frame-Options: deny',
        '    X-Content-Type-Options: nosniff',
        '    Content-Security-Policy: ""',
        'basic_auth_users:',
        `  alice: ${HASH_2Y}`,
        `  bob: '${HASH_2B}'`,
      ].join('\n'),
      FILE,
    );
    assert.deepEqual(c, {
      tls: {
        cert: { pem: undefined, file: '/etc/tally/certs/tls.crt' },
        key: { pem: undefined, file: '/abs/tls.key' },
        clientCa: { pem: undefined, file: '/etc/tally/ca.crt' },
        clientAuth: 'RequireAndVerifyClientCert',
        minVersion: 'TLS12',
        maxVersion: 'TLS13',
        preferServerCipherSuites: true,
      },
      users: new Map([['alice', HASH_2Y], ['bob', HASH_2B]]),
      headers: { 'X-Frame-Options': 'deny', 'X-Content-Type-Options': 'nosniff' },
      http2: false,
    });
  });

  it('refuses a bad file with one line naming the file and the field', () => {
    const cases: Array<[string, string]> = [
      ['tls_server_config: [', 'not valid YAML: line 2, column 1: unexpected end of the stream within a flow collection'],
      ['- a', 'must be a YAML mapping of tls_server_config, http_server_config and basic_auth_users'],
      ['basic_auth_user: {}', 'basic_auth_user: unknown field; the fields here are tls_server_config, http_server_config, basic_auth_users'],
      ['tls_server_config: {cert_file: a, key_file: b, certfile: c}', 'tls_server_config.certfile: unknown field; the fields here are cert, key, client_ca, cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version, prefer_server_cipher_suites'],
      ['tls_server_config: {key_file: b}', 'tls_server_config.cert_file: missing: TLS needs cert_file (or cert) and key_file (or key)'],
      ['tls_server_config: {cert_file: a}', 'tls_server_config.key_file: missing: TLS needs cert_file (or cert) and key_file (or key)'],
      ['tls_server_config: {cert_file: a, cert: x, key_file: b}', 'tls_server_config.cert_file: give cert (PEM text) or cert_file, not both'],
      ['tls_server_config: {cert_file: a, key_file: b, client_auth_type: RequireClientCertPlease}', 'tls_server_config.client_auth_type: "RequireClientCertPlease" is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert'],
      ['tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}', 'tls_server_config.client_auth_type: client_ca_file is set but client certificates are not asked for; set client_auth_type: RequireAndVerifyClientCert'],
      ['tls_server_config: {cert_file: a, key_file: b, min_version: TLS1.2}', 'tls_server_config.min_version: "TLS1.2" is not one of TLS10, TLS11, TLS12, TLS13'],
      ['tls_server_config: {cert_file: a, key_file: b, min_version: TLS13, max_version: TLS12}', 'tls_server_config.min_version: TLS13 is above max_version TLS12'],
      ['tls_server_config: {cert_file: 7, key_file: b}', 'tls_server_config.cert_file: must be a string, not 7'],
      ['tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_AES_128_GCM_SHA256]}', 'tls_server_config.cipher_suites: is an exporter-toolkit field tally does not implement; remove it'],
      ['rate_limit: {interval: 1s, burst: 1}', 'rate_limit: is an exporter-toolkit field tally does not implement; remove it'],
      ['http_server_config: {http2: yes please}', 'http_server_config.http2: must be true or false, not "yes please"'],
      ['http_server_config: {headers: {Server: tally}}', 'http_server_config.headers.Server: this header cannot be set; the ones that can are Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy'],
      ['http_server_config: {headers: {X-Frame-Options: allow}}', 'http_server_config.headers.X-Frame-Options: "allow" is not one of deny, sameorigin'],
      ['basic_auth_users: [alice]', 'basic_auth_users: must be a mapping of user: bcrypt hash'],
      ['basic_auth_users: {alice: hunter2}', 'basic_auth_users.alice: is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31, 60 characters); make one with htpasswd -nBC 10 "" | tr -d \':\\n\''],
      [`basic_auth_users: {alice: '${HASH_2Y.replace('$05$', '$03$')}'}`, 'basic_auth_users.alice: is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31, 60 characters); make one with htpasswd -nBC 10 "" | tr -d \':\\n\''],
      [`basic_auth_users: {"a:b": '${HASH_2Y}'}`, 'basic_auth_users.a:b: a user name cannot contain ":" (basic auth splits on it)'],
    ];
    for (const [text, why] of cases) {
      assert.throws(() => parseWebConfig(text, FILE), (e: unknown) => {
        assert.ok(e instanceof WebConfigError, text);
        assert.equal(e.message, `--web.config.file ${FILE}: ${why}`, text);
        assert.doesNotMatch(e.message, /\n/, 'one line');
        return true;
      });
    }
  });
});

describe('web config TLS material', () => {
  const certs = makeCerts();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-webcfg-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string): ReturnType<typeof loadWebConfig> => {
    const file = path.join(dir, 'web.yml');
    fs.writeFileSync(file, yaml);
    return loadWebConfig(file);
  };
  const fails = (yaml: string, re: RegExp): void => {
    assert.throws(() => load(yaml), (e: unknown) => e instanceof WebConfigError && re.test(e.message) && !e.message.includes('\n'), yaml);
  };

  it('loads the files it names and lists them for reloads', () => {
    const c = load(`tls_server_config: {cert_file: ${certs.serverCert}, key_file: ${certs.serverKey}, client_ca_file: ${certs.caCert}, client_auth_type: VerifyClientCertIfGiven}`);
    assert.deepEqual(c.files, [path.join(dir, 'web.yml'), certs.serverCert, certs.serverKey, certs.caCert]);
    assert.deepEqual({ req: c.tls!.requestCert, rej: c.tls!.rejectUnauthorized, min: c.tls!.context.minVersion }, { req: true, rej: false, min: 'TLSv1.2' });
  });

  it('names the field of a missing file, a key of another certificate, and a CA file without a certificate', () => {
    fails(`tls_server_config: {cert_file: nope.crt, key_file: ${certs.serverKey}}`, new RegExp(`: tls_server_config\\.cert_file ${dir}/nope\\.crt: no such file$`));
    fails(`tls_server_config: {cert_file: ${certs.serverCert}, key_file: ${certs.clientKey}}`, /: tls_server_config\.key_file: does not load with cert_file as a certificate and its key: .*key values mismatch$/);
    fails(`tls_server_config: {cert_file: ${certs.serverCert}, key_file: ${certs.serverKey}, client_ca_file: ${certs.serverKey}, client_auth_type: RequireAndVerifyClientCert}`, /: tls_server_config\.client_ca_file: holds no PEM certificate$/);
  });
});

describe('basic auth', () => {
  const users = new Map([['alice', HASH_2Y], ['bob', HASH_2B]]);

  it('accepts $2y$ and $2b$ hashes made by another bcrypt, and nothing else', async () => {
    const auth = new BasicAuth();
    assert.equal(await auth.check(users, basic('alice', 's3cret')), true);
    assert.equal(await auth.check(users, basic('bob', 'other')), true);
    assert.equal(await auth.check(users, basic('alice', 'other')), false);
    assert.equal(await auth.check(users, basic('carol', 's3cret')), false);
    // The toolkit's stand-in hash is "fakepassword": an unknown user with it still fails.
    assert.equal(await auth.check(users, basic('carol', 'fakepassword')), false);
    assert.equal(await auth.check(users, undefined), false);
    assert.equal(await auth.check(users, 'Bearer abc'), false);
    // Cached answers are the same answers.
    assert.equal(await auth.check(users, basic('alice', 's3cret')), true);
    assert.equal(await auth.check(users, basic('alice', 'other')), false);
  });

  it('splits user and password at the first colon', () => {
    assert.deepEqual(parseBasicAuth(basic('u', 'p:a:ss')), { user: 'u', password: 'p:a:ss' });
    assert.equal(parseBasicAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`), undefined);
  });
});

describe('--web.config.file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-webflag-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('parses into the loaded config', () => {
    const file = path.join(dir, 'ok.yml');
    fs.writeFileSync(file, `basic_auth_users: {alice: '${HASH_2Y}'}\n`);
    const p = parseFlags(['--web.config.file', file]);
    assert.equal(p.kind, 'run');
    if (p.kind !== 'run') return;
    assert.deepEqual(p.config.webConfig?.config.users, new Map([['alice', HASH_2Y]]));
    const none = parseFlags([]);
    assert.ok(none.kind === 'run' && none.config.webConfig === undefined, 'no flag, no web config');
  });

  it('a bad file is a usage error naming the field', () => {
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(file, 'tls_server_config: {cert_file: a.crt}\n');
    assert.throws(() => parseFlags([`--web.config.file=${file}`]), new UsageError(`--web.config.file ${file}: tls_server_config.key_file: missing: TLS needs cert_file (or cert) and key_file (or key)`));
  });

  it('ends the agent at startup with that one line and exit 2, before it needs privileges', async () => {
    const file = path.join(dir, 'bad-headers.yml');
    fs.writeFileSync(file, 'http_server_config:\n  headers:\n    X-Frame-Options: allow-from\n');
    const child = spawn(process.execPath, [MAIN, '--metrics-server', '127.0.0.1:0', '--web.config.file', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exit = await waitExit(child, 20000);
    assert.equal(stderr, `tally: --web.config.file ${file}: http_server_config.headers.X-Frame-Options: "allow-from" is not one of deny, sameorigin\n`);
    assert.equal(exit.code, 2);
  });
});
