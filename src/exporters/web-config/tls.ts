/**
 * tls_server_config made into what Node's TLS server takes: a secure context
 * (certificate, key, client CAs, versions) and the client-certificate policy.
 *
 * Go's five client_auth_type policies map onto Node's requestCert and
 * rejectUnauthorized for the handshake; the two Node cannot express
 * (RequireAnyClientCert: a certificate, verified or not; and
 * VerifyClientCertIfGiven: none, or a verified one) are enforced on the
 * finished handshake by refusal() below, which checks every policy so the
 * handshake settings are never the only guard.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { ClientAuthType, TLS_VERSIONS, TlsServerConfig, WebConfigError } from './config';

export interface TlsSettings {
  /** For https.createServer and server.setSecureContext. */
  context: tls.SecureContextOptions;
  /** The server's requestCert and rejectUnauthorized for this policy. */
  requestCert: boolean;
  rejectUnauthorized: boolean;
  clientAuth: ClientAuthType;
  /** The files it was read from, so a change to any of them reloads. */
  files: string[];
}

/** Reads the PEM files and checks that they make a usable context; errors name the field. */
export function loadTls(c: TlsServerConfig, configFile: string): TlsSettings {
  const files: string[] = [];
  const pem = (field: string, src: { file?: string; pem?: string }): string => {
    if (src.pem !== undefined) return src.pem;
    files.push(src.file!);
    try {
      return fs.readFileSync(src.file!, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new WebConfigError(`--web.config.file ${configFile}: tls_server_config.${field} ${src.file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    }
  };
  const cert = pem(c.cert.file ? 'cert_file' : 'cert', c.cert);
  const key = pem(c.key.file ? 'key_file' : 'key', c.key);
  const caField = c.clientCa?.file ? 'client_ca_file' : 'client_ca';
  const ca = c.clientCa ? pem(caField, c.clientCa) : undefined;
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new WebConfigError(`--web.config.file ${configFile}: tls_server_config.${caField}: holds no PEM certificate`);
  }
  const context: tls.SecureContextOptions = {
    cert,
    key,
    ca,
    minVersion: TLS_VERSIONS[c.minVersion],
    maxVersion: TLS_VERSIONS[c.maxVersion],
    honorCipherOrder: c.preferServerCipherSuites,
  };
  // Build it once now: a key that does not match its certificate, or text
  // that is not PEM, fails here with the field named instead of at the first
  // handshake.
  try {
    tls.createSecureContext(context);
  } catch (e) {
    const certField = c.cert.file ? 'cert_file' : 'cert';
    const keyField = c.key.file ? 'key_file' : 'key';
    throw new WebConfigError(`--web.config.file ${configFile}: tls_server_config.${keyField}: does not load with ${certField} as a certificate and its key: ${(e as Error).message}`);
  }
  return {
    context,
    requestCert: c.clientAuth !== 'NoClientCert',
    rejectUnauthorized: c.clientAuth === 'RequireAndVerifyClientCert',
    clientAuth: c.clientAuth,
    files,
  };
}

/** Why a finished handshake breaks the policy, or undefined when it may go on. */
export function refusal(socket: tls.TLSSocket, clientAuth: ClientAuthType): string | undefined {
  const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  const why = (): string => String(socket.authorizationError ?? 'not signed by client_ca_file');
  switch (clientAuth) {
    case 'NoClientCert':
    case 'RequestClientCert':
      return undefined;
    case 'RequireAnyClientCert':
      return presented ? undefined : 'no client certificate';
    case 'VerifyClientCertIfGiven':
      return !presented || socket.authorized ? undefined : `client certificate refused: ${why()}`;
    case 'RequireAndVerifyClientCert':
      if (!presented) return 'no client certificate';
      return socket.authorized ? undefined : `client certificate refused: ${why()}`;
  }
}
