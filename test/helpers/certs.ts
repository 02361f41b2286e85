/**
 * Real certificates for TLS tests, made by openssl in a temporary directory
 * that is removed when the test process ends, however it ends: a CA, a
 * server certificate for 127.0.0.1 and localhost signed by it, a client
 * certificate signed by it, and a self-signed client certificate no CA
 * vouches for.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { onExit } from './cleanup';

export interface TestCerts {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second server certificate from the same CA, with another subject, to see a reload pick it up. */
  server2Cert: string;
  server2Key: string;
  clientCert: string;
  clientKey: string;
  /** Self-signed: no client_ca_file trusts it. */
  rogueCert: string;
  rogueKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a fresh set of certificates (EC P-256: fast to generate). */
export function makeCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-certs-'));
  onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = (name: string): void => openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  key('ca');
  openssl(dir, ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=tally test CA', '-days', '2', '-out', 'ca.crt']);
  const signed = (name: string, subject: string, ext: string): void => {
    key(name);
    openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  };
  const serverExt = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
  signed('server', '/CN=tally server one', serverExt);
  signed('server2', '/CN=tally server two', serverExt);
  signed('client', '/CN=prometheus', 'extendedKeyUsage=clientAuth\n');
  key('rogue');
  openssl(dir, ['req', '-x509', '-new', '-key', 'rogue.key', '-subj', '/CN=rogue', '-days', '2', '-addext', 'extendedKeyUsage=clientAuth', '-out', 'rogue.crt']);
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    server2Cert: p('server2.crt'),
    server2Key: p('server2.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
  };
}
