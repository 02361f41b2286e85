/**
 * --metrics-peer-cidrs NAME=CIDR,...: the peer classes of addresses that are
 * neither loopback nor this node's own (src/peers/peer-table.ts). A name may
 * take several CIDRs (internet=0.0.0.0/0,internet=::/0); the longest prefix
 * that matches an address decides its class, as the kernel's LPM trie does.
 *
 * Every mistake throws a PeerCidrsError naming the flag, the item, and how to
 * fix it: the agent turns it into a usage error (exit 2).
 */
import { Cidr } from '../policy/model';
import { formatCidr, parseCidr } from '../policy/ip';

export const PEER_CIDRS_FLAG = '--metrics-peer-cidrs';

/** Classes tally assigns itself: a CIDR list may not use these names. */
export const LOOPBACK_CLASS = 'loopback';
export const NODE_CLASS = 'node';
export const UNKNOWN_CLASS = 'unknown';
/** The classes of a Service's endpoints, by where they run against this node (cluster-peers.ts). */
export const SAME_NODE_CLASS = 'same-node';
export const SAME_ZONE_CLASS = 'same-zone';
export const CROSS_ZONE_CLASS = 'cross-zone';
export const CLUSTER_CLASS = 'cluster';
export const RESERVED_CLASSES: readonly string[] = [LOOPBACK_CLASS, NODE_CLASS, UNKNOWN_CLASS, SAME_NODE_CLASS, SAME_ZONE_CLASS, CROSS_ZONE_CLASS, CLUSTER_CLASS];

/** A class name is a label value people type in queries: short, lowercase, no spaces or quotes. */
const CLASS_NAME = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;

/** Entries the flag may give: the kernel trie holds them, the node's addresses and loopback together. */
export const MAX_PEER_CIDRS = 1024;

export class PeerCidrsError extends Error {}

export interface PeerCidr {
  name: string;
  /** IPv4 networks stay IPv4 here; the table maps them into ::ffff:0:0/96. */
  cidr: Cidr;
}

/** Networks that are always class loopback: a CIDR inside them would take addresses from it. */
export const LOOPBACK_CIDRS: readonly Cidr[] = [
  { family: 4, bytes: [127, 0, 0, 0], prefixLen: 8 },
  { family: 6, bytes: [...new Array<number>(15).fill(0), 1], prefixLen: 128 },
];

/** Whether network `inner` lies within network `outer` (same family). */
export function within(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefixLen < outer.prefixLen) return false;
  for (let bit = 0; bit < outer.prefixLen; bit++) {
    const mask = 0x80 >> bit % 8;
    if ((inner.bytes[bit >> 3] & mask) !== (outer.bytes[bit >> 3] & mask)) return false;
  }
  return true;
}

/** An IPv6 network inside ::ffff:0:0/96 is an IPv4 network written the long way: one meaning, one entry. */
function asIPv4IfMapped(c: Cidr): Cidr {
  const mapped = c.family === 6 && c.prefixLen >= 96 && c.bytes.slice(0, 10).every((b) => b === 0) && c.bytes[10] === 0xff && c.bytes[11] === 0xff;
  return mapped ? { family: 4, bytes: c.bytes.slice(12), prefixLen: c.prefixLen - 96 } : c;
}

/** One NAME=CIDR item and where it was written, for errors: the flag, or FILE:LINE. */
export interface PeerCidrItem {
  text: string;
  where: string;
}

/** Parses the flag's value; an empty value means no classes (every address not loopback nor the node's is unknown). */
export function parsePeerCidrs(text: string): PeerCidr[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.length === 1 && items[0] === '') return [];
  return parsePeerCidrItems(
    items.map((t) => ({ text: t, where: PEER_CIDRS_FLAG })),
    PEER_CIDRS_FLAG,
  );
}

/**
 * The text of --metrics-peer-cidrs-file: the flag's items, one or more per
 * line (separated by commas), with '#' comments and blank lines. Errors name
 * FILE:LINE.
 */
export function parsePeerCidrsText(text: string, file: string): PeerCidr[] {
  const items: PeerCidrItem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    for (const t of line.split(',')) items.push({ text: t.trim(), where: `${file}:${i + 1}` });
  });
  return parsePeerCidrItems(items, file);
}

function parsePeerCidrItems(items: readonly PeerCidrItem[], source: string): PeerCidr[] {
  if (items.length > MAX_PEER_CIDRS) throw new PeerCidrsError(`${source}: ${items.length} items, at most ${MAX_PEER_CIDRS}; merge networks into shorter prefixes`);
  const out: PeerCidr[] = [];
  const seen = new Map<string, string>();
  for (const { text: item, where } of items) {
    const bad = (why: string): never => {
      throw new PeerCidrsError(`${where}: "${item}"${why.startsWith(':') ? '' : ' '}${why}`);
    };
    if (item === '') bad('is empty; separate items with single commas, e.g. vpc=10.0.0.0/8,internet=0.0.0.0/0');
    const eq = item.indexOf('=');
    if (eq < 0) bad('is not NAME=CIDR; write e.g. vpc=10.0.0.0/8');
    const name = item.slice(0, eq);
    const text = item.slice(eq + 1);
    if (!CLASS_NAME.test(name)) bad(`has the class name "${name}"; use lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit, at most 63 characters`);
    if (RESERVED_CLASSES.includes(name)) bad(`uses the class name "${name}", which tally gives itself (${RESERVED_CLASSES.join(', ')}); pick another name`);
    const r = parseCidr(text);
    if (!r.ok) return bad(`: expected ${r.expected}, found "${text}"`);
    if (r.hostBitsSet) bad(`has host bits set; write the network, ${formatCidr(r.cidr)}`);
    const cidr = asIPv4IfMapped(r.cidr);
    if (LOOPBACK_CIDRS.some((l) => within(cidr, l))) bad(`is a loopback network, which is always peer_class="${LOOPBACK_CLASS}"; leave it out`);
    const canonical = formatCidr(cidr);
    const before = seen.get(canonical);
    if (before !== undefined) bad(before === name ? `repeats ${canonical}; give each network once` : `gives ${canonical} to "${name}", but it is "${before}" already; give each network one class`);
    seen.set(canonical, name);
    out.push({ name, cidr });
  }
  return out;
}
