/** --metrics-server ADDR: ":2112", "127.0.0.1:2112", "[::1]:2112", "localhost:2112". */

export interface ListenAddress {
  /** undefined means every interface. */
  host?: string;
  port: number;
}

export class AddressError extends Error {}

export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (!m) throw new AddressError(`--metrics-server "${text}" is not HOST:PORT; examples: :2112, 127.0.0.1:2112, [::1]:2112`);
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AddressError(`--metrics-server "${text}": port ${m[3]} is out of range 0-65535`);
  }
  const host = m[1] ?? (m[2] === '' ? undefined : m[2]);
  return { host, port };
}

export function formatAddress(a: ListenAddress): string {
  const host = a.host === undefined ? '' : a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${host}:${a.port}`;
}
