/**
 * Reads the agent's /metrics as Prometheus would, through whatever its
 * --web.config.file asks for: TLS (with our CA, or --insecure), client
 * certificates, basic auth. Every failure becomes a FetchError of one line
 * that says what happened and which flag fixes it.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as zlib from 'node:zlib';

export interface MetricsTarget {
  /** The /metrics URL: http:// or https://. */
  url: URL;
  user?: string;
  password?: string;
  /** PEM: the CA that signed the agent's certificate, the client certificate and its key. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Accept any certificate the agent shows. */
  insecure?: boolean;
  timeoutMs: number;
}

export class FetchError extends Error {}

/** Certificate checks the client failed (OpenSSL's and Node's codes). */
const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID/;

function explain(err: NodeJS.ErrnoException, t: MetricsTarget): string {
  const where = `${t.url.host}`;
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return `nothing listens at ${where}: is the agent running there? Give its --metrics-server address with --server`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the host of ${where} (${code}); check --server`;
  // Before the certificate codes: the server's alert names a certificate too.
  if (/certificate required|alert handshake failure|CERTIFICATE_REQUIRED/i.test(`${code} ${err.message}`)) {
    return `the agent at ${where} asks for a client certificate; give --cert-file and --key-file (${code || err.message})`;
  }
  if (CERT_CODES.test(code)) {
    return `the agent's certificate at ${where} does not verify (${code}: ${err.message}); give the CA that signed it with --ca-file, or --insecure to skip the check`;
  }
  if (/wrong version number|packet length too long|WRONG_VERSION/i.test(err.message)) {
    return `${where} does not answer TLS; use http://${t.url.host} in --server`;
  }
  if (code === 'ECONNRESET' || /socket hang up/.test(err.message)) {
    const hint = t.url.protocol === 'http:' ? `; if its web config serves TLS, use https://${t.url.host} in --server` : t.cert ? '' : '; if it asks for client certificates, give --cert-file and --key-file';
    return `the agent at ${where} closed the connection without an answer (${code || err.message})${hint}`;
  }
  return `cannot read ${t.url.href}: ${err.message}`;
}

function unauthorized(t: MetricsTarget): string {
  return t.user === undefined
    ? `${t.url.href} answered 401 Unauthorized: the agent's web config asks for basic auth; give --user USER and the password in $TALLY_PASSWORD or --password-file`
    : `${t.url.href} answered 401 Unauthorized: the agent does not accept user "${t.user}" with that password (--user, $TALLY_PASSWORD or --password-file)`;
}

/** `signal` abandons the read (tally top quitting while an agent is slow to answer). */
export function fetchMetrics(t: MetricsTarget, signal?: AbortSignal): Promise<string> {
  // gzip: 100k series are megabytes of text every refresh, a tenth of that compressed.
  const headers: Record<string, string> = { Accept: 'text/plain;version=0.0.4', 'Accept-Encoding': 'gzip' };
  if (t.user !== undefined) headers.Authorization = `Basic ${Buffer.from(`${t.user}:${t.password ?? ''}`).toString('base64')}`;
  const options: https.RequestOptions = { method: 'GET', headers, timeout: t.timeoutMs, signal };
  if (t.url.protocol === 'https:') Object.assign(options, { ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: !t.insecure });
  const request = t.url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(t.url, options, (res) => {
      let body = '';
      const text = res.headers['content-encoding'] === 'gzip' ? res.pipe(zlib.createGunzip()) : res;
      text.setEncoding('utf8');
      text.on('data', (d: string) => (body += d));
      res.on('error', (e) => reject(new FetchError(explain(e, t))));
      text.on('error', (e) => reject(new FetchError(`${t.url.href} answered gzip that does not decompress: ${e.message}`)));
      text.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else if (res.statusCode === 401) reject(new FetchError(unauthorized(t)));
        else reject(new FetchError(`${t.url.href} answered ${res.statusCode} ${res.statusMessage ?? ''}: ${body.split('\n')[0].slice(0, 200)}`.trim()));
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${t.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(new FetchError(explain(e, t))));
    req.end();
  });
}
