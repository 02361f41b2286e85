/**
 * TCP ports free at the moment of asking, for peers that must know their
 * port before they start (a policy's DPort, Prometheus' config). A port
 * taken again between the check and the bind is possible but rare; a random
 * pick collides with parallel tests far more often.
 */
import * as net from 'node:net';

function bindable(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, host, () => {
      const bound = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(bound));
    });
  });
}

/** A port nothing listens on, on host. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const port = await bindable(0, host);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

/** port and port + 1, both free on every address. */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort('0.0.0.0');
    if (port < 65535 && (await bindable(port + 1, '0.0.0.0')) !== undefined) return port;
  }
  throw new Error('no two consecutive free ports in 50 attempts');
}
