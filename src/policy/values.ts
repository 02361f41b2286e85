/**
 * Parsers for the text of matchArgs values and label settings: integers of a
 * given arg type, strings within the byte cap, ports, IP protocols and address
 * families. Each returns the value or what was expected instead, and callers
 * report that at the value's position.
 */
import { IntArgType, PortRange } from './model';
import { LIMITS } from './limits';

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; hint?: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string, hint?: string): Parsed<T> => ({ ok: false, expected, hint });

/** Inclusive value range of each integer arg type (fd is a C int). */
export const INT_RANGES: Record<IntArgType, readonly [bigint, bigint]> = {
  int: [-(1n << 31n), (1n << 31n) - 1n],
  int8: [-128n, 127n],
  int16: [-(1n << 15n), (1n << 15n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  long: [-(1n << 63n), (1n << 63n) - 1n],
  uint8: [0n, 255n],
  uint16: [0n, 65535n],
  uint32: [0n, (1n << 32n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  size_t: [0n, (1n << 64n) - 1n],
  fd: [-(1n << 31n), (1n << 31n) - 1n],
};

/**
 * An integer the way Tetragon reads one (Go's base-0 rule), so its policies
 * mean the same here: decimal, 0x hex, 0b binary, 0o or leading-0 octal, with
 * an optional minus sign.
 */
export function parseInteger(text: string, type: IntArgType): Parsed<bigint> {
  const [min, max] = INT_RANGES[type];
  const range = `an integer from ${min} to ${max} (${type})`;
  const m = /^(-?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]+|0|[1-9][0-9]*)$/.exec(text.trim());
  if (!m) return bad(range, 'write it in decimal, or in hex as 0x…');
  const body = m[2];
  const digits = /^0[0-7]+$/.test(body) ? `0o${body.slice(1)}` : body;
  const n = (m[1] ? -1n : 1n) * BigInt(digits);
  return n >= min && n <= max ? ok(n) : bad(range);
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** A non-empty string of at most LIMITS.stringValueBytes bytes. */
export function parseString(text: string, what = 'a non-empty string'): Parsed<string> {
  if (text === '') return bad(`${what} of at most ${LIMITS.stringValueBytes} bytes`);
  const n = byteLength(text);
  if (n > LIMITS.stringValueBytes) {
    // The found text gives its length in characters; bytes differ when it is not ASCII.
    return bad(`${what} of at most ${LIMITS.stringValueBytes} bytes (tally's limit per string value)`, n !== text.length ? `it has ${n} bytes` : undefined);
  }
  return ok(text);
}

/** "443" or a range "8000:8080", as Tetragon accepts for SPort/DPort. */
export function parsePort(text: string): Parsed<PortRange> {
  const expected = 'a port from 0 to 65535, or a range FIRST:LAST';
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(text.trim());
  if (!m) return bad(expected);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (min > 65535 || max > 65535) return bad(expected);
  if (min > max) return bad('a range FIRST:LAST with FIRST not above LAST', `write "${max}:${min}"`);
  return ok({ min, max });
}

/** IP protocols by name, as Tetragon names them (linux/in.h). */
export const PROTOCOLS: Readonly<Record<string, number>> = {
  IPPROTO_IP: 0, IPPROTO_ICMP: 1, IPPROTO_IGMP: 2, IPPROTO_IPIP: 4, IPPROTO_TCP: 6, IPPROTO_EGP: 8,
  IPPROTO_PUP: 12, IPPROTO_UDP: 17, IPPROTO_IDP: 22, IPPROTO_TP: 29, IPPROTO_DCCP: 33, IPPROTO_IPV6: 41,
  IPPROTO_RSVP: 46, IPPROTO_GRE: 47, IPPROTO_ESP: 50, IPPROTO_AH: 51, IPPROTO_MTP: 92, IPPROTO_BEETPH: 94,
  IPPROTO_ENCAP: 98, IPPROTO_PIM: 103, IPPROTO_COMP: 108, IPPROTO_SCTP: 132, IPPROTO_UDPLITE: 136,
  IPPROTO_MPLS: 137, IPPROTO_ETHERNET: 143, IPPROTO_RAW: 255, IPPROTO_MPTCP: 262,
};

/** Address families by name, as Tetragon names them (linux/socket.h); the index is the number. */
export const FAMILIES: readonly string[] = [
  'AF_UNSPEC', 'AF_UNIX', 'AF_INET', 'AF_AX25', 'AF_IPX', 'AF_APPLETALK', 'AF_NETROM', 'AF_BRIDGE',
  'AF_ATMPVC', 'AF_X25', 'AF_INET6', 'AF_ROSE', 'AF_DECnet', 'AF_NETBEUI', 'AF_SECURITY', 'AF_KEY',
  'AF_NETLINK', 'AF_PACKET', 'AF_ASH', 'AF_ECONET', 'AF_ATMSVC', 'AF_RDS', 'AF_SNA', 'AF_IRDA',
  'AF_PPPOX', 'AF_WANPIPE', 'AF_LLC', 'AF_IB', 'AF_MPLS', 'AF_CAN', 'AF_TIPC', 'AF_BLUETOOTH',
  'AF_IUCV', 'AF_RXRPC', 'AF_ISDN', 'AF_PHONET', 'AF_IEEE802154', 'AF_CAIF', 'AF_ALG', 'AF_NFC',
  'AF_VSOCK', 'AF_KCM', 'AF_QIPCRTR', 'AF_SMC', 'AF_XDP', 'AF_MCTP',
];

/** A name from `names` or a number from 0 to 65535 (both fields are 16 bits in the kernel). */
function parseNamedNumber(text: string, names: Readonly<Record<string, number>>, prefix: string, kind: string): Parsed<number> {
  const t = text.trim();
  if (Object.prototype.hasOwnProperty.call(names, t)) return ok(names[t]);
  if (/^(0|[1-9]\d{0,4})$/.test(t) && Number(t) <= 65535) return ok(Number(t));
  const guess = Object.keys(names).find((n) => n.toLowerCase() === `${prefix}${t}`.toLowerCase() || n.toLowerCase() === t.toLowerCase());
  return bad(`${kind} or a number from 0 to 65535`, guess ? `did you mean "${guess}"?` : undefined);
}

export function parseProtocol(text: string): Parsed<number> {
  return parseNamedNumber(text, PROTOCOLS, 'IPPROTO_', 'an IP protocol name (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, …)');
}

const FAMILY_NUMBERS: Readonly<Record<string, number>> = Object.fromEntries(FAMILIES.map((n, i) => [n, i]));

export function parseFamily(text: string): Parsed<number> {
  return parseNamedNumber(text, FAMILY_NUMBERS, 'AF_', 'an address family name (AF_INET, AF_INET6, AF_UNIX, …)');
}
