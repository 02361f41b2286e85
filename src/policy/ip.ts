/**
 * IPv4/IPv6 addresses and CIDRs as bytes, for SAddr/DAddr values. Written
 * out rather than taken from node:net, which validates addresses but never
 * hands out their bytes.
 */
import { isIPv6 } from 'node:net';
import { Cidr } from './model';

function parseIPv4(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1);
  // A leading zero reads as octal to some tools and decimal to others: refuse it.
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

function parseIPv6(s: string): number[] | undefined {
  if (s.includes('%') || !isIPv6(s)) return undefined;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two hex groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`;
  }
  const halves = s.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups = halves.length > 1 ? [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  if (groups.length !== 8) return undefined;
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

export type CidrParse =
  | { ok: true; cidr: Cidr; hostBitsSet: boolean }
  | { ok: false; expected: string };

/**
 * "10.0.0.0/8", "fd00::/8", or a plain address (a /32 or /128). The returned
 * bytes always have host bits zero; `hostBitsSet` says whether the text had
 * some (10.0.0.1/8), which callers treat as an error or a warning.
 */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIPv4(addrText);
  const bytes = v4 ?? parseIPv6(addrText);
  if (!bytes) return { ok: false, expected: 'an IPv4 or IPv6 address, optionally with /PREFIX (e.g. 10.0.0.0/8 or fd00::/8)' };
  const family = v4 ? 4 : 6;
  const bits = bytes.length * 8;
  let prefixLen = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > bits) {
      return { ok: false, expected: `an IPv${family} prefix length from 0 to ${bits} after the /` };
    }
    prefixLen = Number(p);
  }
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  return { ok: true, cidr: { family, bytes: masked, prefixLen }, hostBitsSet: masked.some((b, i) => b !== bytes[i]) };
}

/** The canonical text of a CIDR: 10.0.0.0/8, fd00::/8 (the longest run of zero groups compressed). */
export function formatCidr(c: Cidr): string {
  if (c.family === 4) return `${c.bytes.join('.')}/${c.prefixLen}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((c.bytes[2 * i] << 8) | c.bytes[2 * i + 1]).toString(16));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
  }
  const addr = bestStart < 0
    ? groups.join(':')
    : `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
  return `${addr}/${c.prefixLen}`;
}
