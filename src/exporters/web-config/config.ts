/**
 * --web.config.file: the Prometheus exporter-toolkit's web configuration
 * (docs/web-configuration.md of prometheus/exporter-toolkit), the file
 * node_exporter and most exporters take, so one file works for all of them.
 *
 * Parsing is strict as the toolkit's (yaml UnmarshalStrict): an unknown
 * field is an error, not ignored, because a misspelt `basic_auth_users`
 * silently ignored would serve /metrics to everyone. Every error names the
 * file and the field, in one line.
 *
 * Fields of the toolkit that tally does not implement (cipher_suites,
 * curve_preferences, client_allowed_sans, rate_limit) are refused by name
 * rather than accepted and ignored, for the same reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';

export class WebConfigError extends Error {}

/** The toolkit's client_auth_type words (Go's tls.ClientAuthType names). */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** The toolkit's TLS version words, and OpenSSL's names for them. */
export const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersionWord = keyof typeof TLS_VERSIONS;

/**
 * The headers the toolkit lets a file set, with the values it accepts (none
 * listed: any). Its list is closed on purpose, and so is this one.
 */
export const ALLOWED_HEADERS: Readonly<Record<string, readonly string[] | undefined>> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

export interface TlsServerConfig {
  /** PEM text, or a file (made absolute against the config file's directory). */
  cert: { file?: string; pem?: string };
  key: { file?: string; pem?: string };
  clientCa?: { file?: string; pem?: string };
  clientAuth: ClientAuthType;
  minVersion: TlsVersionWord;
  maxVersion: TlsVersionWord;
  /** prefer_server_cipher_suites (toolkit default true): OpenSSL's honorCipherOrder. */
  preferServerCipherSuites: boolean;
}

export interface WebConfig {
  /** undefined: plain HTTP, as the toolkit does when no TLS field is set. */
  tls?: TlsServerConfig;
  /** user -> bcrypt hash; empty: no authentication. */
  users: ReadonlyMap<string, string>;
  /** Added to every response, the 401s included. */
  headers: Readonly<Record<string, string>>;
  /** http_server_config.http2; tally serves HTTP/1.1 whatever it says. */
  http2: boolean;
}

/** A bcrypt hash as htpasswd -B ($2y$), Go ($2a$) and OpenBSD ($2b$) write it; cost 4 to 31. */
const BCRYPT_HASH = /^\$2[abxy]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

const TOP_FIELDS = ['tls_server_config', 'http_server_config', 'basic_auth_users'];
const TLS_FIELDS = ['cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'min_version', 'max_version', 'prefer_server_cipher_suites'];
const HTTP_FIELDS = ['http2', 'headers'];
/** Toolkit fields tally refuses by name instead of ignoring. */
const UNSUPPORTED: Record<string, string> = {
  rate_limit: 'rate_limit',
  'tls_server_config.cipher_suites': 'cipher_suites',
  'tls_server_config.curve_preferences': 'curve_preferences',
  'tls_server_config.client_allowed_sans': 'client_allowed_sans',
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks the file's text; relative file names resolve against `file`'s directory, as the toolkit does. */
export function parseWebConfig(text: string, file: string): WebConfig {
  const fail = (field: string, why: string): never => {
    throw new WebConfigError(`--web.config.file ${file}: ${field}${field ? ': ' : ''}${why}`);
  };
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file });
  } catch (e) {
    const err = e as yaml.YAMLException;
    const where = err.mark ? `line ${err.mark.line + 1}, column ${err.mark.column + 1}: ` : '';
    return fail('', `not valid YAML: ${where}${err.reason ?? err.message}`);
  }
  // An empty file is a valid config that changes nothing (the toolkit's too).
  if (doc === undefined || doc === null) doc = {};
  if (!isObj(doc)) return fail('', 'must be a YAML mapping of tls_server_config, http_server_config and basic_auth_users');

  const known = (o: Obj, prefix: string, fields: string[]): void => {
    for (const k of Object.keys(o)) {
      const name = prefix + k;
      if (UNSUPPORTED[name]) fail(name, 'is an exporter-toolkit field tally does not implement; remove it');
      if (!fields.includes(k)) fail(name, `unknown field; the fields here are ${fields.join(', ')}`);
    }
  };
  const section = (name: string): Obj => {
    const v = doc_[name];
    if (v === undefined || v === null) return {};
    if (!isObj(v)) return fail(name, 'must be a mapping');
    return v;
  };
  const str = (o: Obj, prefix: string, k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return fail(prefix + k, `must be a string, not ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (o: Obj, prefix: string, k: string, dflt: boolean): boolean => {
    const v = o[k];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') return fail(prefix + k, `must be true or false, not ${JSON.stringify(v)}`);
    return v;
  };
  const doc_ = doc;
  known(doc_, '', TOP_FIELDS);

  // tls_server_config
  const t = section('tls_server_config');
  const tp = 'tls_server_config.';
  known(t, tp, TLS_FIELDS);
  const abs = (f: string | undefined): string | undefined => (f === undefined ? undefined : path.resolve(path.dirname(file), f));
  const pair = (inline: string, fileField: string): { file?: string; pem?: string } | undefined => {
    const pem = str(t, tp, inline);
    const f = abs(str(t, tp, fileField));
    if (pem !== undefined && f !== undefined) fail(tp + fileField, `give ${inline} (PEM text) or ${fileField}, not both`);
    return pem === undefined && f === undefined ? undefined : { pem, file: f };
  };
  const cert = pair('cert', 'cert_file');
  const key = pair('key', 'key_file');
  const clientCa = pair('client_ca', 'client_ca_file');
  const authWord = str(t, tp, 'client_auth_type');
  const version = (k: string, dflt: TlsVersionWord): TlsVersionWord => {
    const v = str(t, tp, k) ?? dflt;
    if (!(v in TLS_VERSIONS)) fail(tp + k, `"${v}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
    return v as TlsVersionWord;
  };
  const minVersion = version('min_version', 'TLS12');
  const maxVersion = version('max_version', 'TLS13');
  let tls: TlsServerConfig | undefined;
  // TLS is on when any TLS field is set (the toolkit's IsEnabled); then it must be complete.
  if (cert || key || clientCa || authWord !== undefined) {
    if (!cert) fail(tp + 'cert_file', 'missing: TLS needs cert_file (or cert) and key_file (or key)');
    if (!key) fail(tp + 'key_file', 'missing: TLS needs cert_file (or cert) and key_file (or key)');
    const clientAuth = (authWord ?? 'NoClientCert') as ClientAuthType;
    if (!CLIENT_AUTH_TYPES.includes(clientAuth)) fail(tp + 'client_auth_type', `"${authWord}" is not one of ${CLIENT_AUTH_TYPES.join(', ')}`);
    if (clientCa && clientAuth === 'NoClientCert') {
      fail(tp + 'client_auth_type', 'client_ca_file is set but client certificates are not asked for; set client_auth_type: RequireAndVerifyClientCert');
    }
    const order = Object.keys(TLS_VERSIONS);
    if (order.indexOf(minVersion) > order.indexOf(maxVersion)) {
      fail(tp + 'min_version', `${minVersion} is above max_version ${maxVersion}`);
    }
    tls = { cert: cert!, key: key!, clientCa, clientAuth, minVersion, maxVersion, preferServerCipherSuites: bool(t, tp, 'prefer_server_cipher_suites', true) };
  }

  // http_server_config
  const h = section('http_server_config');
  const hp = 'http_server_config.';
  known(h, hp, HTTP_FIELDS);
  const http2 = bool(h, hp, 'http2', true);
  const headers: Record<string, string> = {};
  const rawHeaders = h.headers ?? {};
  if (!isObj(rawHeaders)) fail(hp + 'headers', 'must be a mapping of header: value');
  for (const [name, value] of Object.entries(rawHeaders as Obj)) {
    const field = `${hp}headers.${name}`;
    if (!(name in ALLOWED_HEADERS)) fail(field, `this header cannot be set; the ones that can are ${Object.keys(ALLOWED_HEADERS).join(', ')}`);
    if (typeof value !== 'string') fail(field, 'must be a string');
    const allowed = ALLOWED_HEADERS[name];
    if (allowed && !allowed.includes(value as string)) fail(field, `"${String(value)}" is not one of ${allowed.join(', ')}`);
    // Blank means unset, as the toolkit documents.
    if (value !== '') headers[name] = value as string;
  }

  // basic_auth_users
  const users = new Map<string, string>();
  const rawUsers = doc_.basic_auth_users ?? {};
  if (!isObj(rawUsers)) fail('basic_auth_users', 'must be a mapping of user: bcrypt hash');
  for (const [user, hash] of Object.entries(rawUsers as Obj)) {
    const field = `basic_auth_users.${user}`;
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) {
      fail(field, 'is not a bcrypt hash ($2y$, $2b$ or $2a$, cost 04-31, 60 characters); make one with htpasswd -nBC 10 "" | tr -d \':\\n\'');
    }
    if (user.includes(':')) fail(field, 'a user name cannot contain ":" (basic auth splits on it)');
    users.set(user, hash as string);
  }
  return { tls, users, headers, http2 };
}

/** Reads and parses the file. */
export function readWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new WebConfigError(`--web.config.file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  return parseWebConfig(text, file);
}
