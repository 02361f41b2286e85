/**
 * The peer table: which peer id each remote address resolves to, as the
 * entries of the kernel's LPM trie tally_peers (bpf/peers.bpf.h), and what
 * labels each peer id stands for. Pure: peer-map.ts writes it to the kernel.
 *
 * A peer id is a peer class for now (peer_class); peer_namespace and
 * peer_service from EndpointSlices will be further ids of their own, each
 * standing for a tuple of labels, so the kernel key stays one number.
 *
 * Classes, longest prefix first:
 *   node      this node's own addresses (a /32 or /128 each)
 *   loopback  127.0.0.0/8 and ::1
 *   NAME      the networks of --metrics-peer-cidrs
 *   unknown   everything else (the kernel's TALLY_PEER_UNKNOWN: no entry)
 *
 * Addresses are keyed in IPv6 form, IPv4 as ::ffff:a.b.c.d (tally_types.h).
 * So an IPv6 network that covers ::ffff:0:0/96 (::/0, say) must not take IPv4
 * addresses: the table always has ::ffff:0:0/96 itself, as unknown unless the
 * list gives 0.0.0.0/0 a class.
 */
import { Cidr } from '../policy/model';
import { parseCidr } from '../policy/ip';
import { PEER_KEY, PEER_UNKNOWN } from '../bpf/layout';
import { LOOPBACK_CIDRS, LOOPBACK_CLASS, NODE_CLASS, PeerCidr, UNKNOWN_CLASS, within } from './peer-cidrs';

/** The label a peer class is exported as. */
export const PEER_CLASS_LABEL = 'peer_class';

/** Distinct class names one agent gives ids to in its life: ids are never reused, so counts keep their class. */
export const MAX_PEER_IDS = 4096;

/** One entry of tally_peers: struct tally_peer_key, and the peer id it resolves to. */
export interface PeerEntry {
  key: Buffer;
  id: number;
}

const IPV4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** A network as the trie keys it: 16 bytes and a prefix length from 0 to 128. */
export function peerKey(c: Cidr): Buffer {
  const key = Buffer.alloc(PEER_KEY.size);
  const mapped = c.family === 4;
  key.writeUInt32LE(mapped ? 96 + c.prefixLen : c.prefixLen, PEER_KEY.prefixlen);
  Buffer.from(mapped ? [...IPV4_MAPPED_PREFIX, ...c.bytes] : c.bytes).copy(key, PEER_KEY.addr);
  return key;
}

const ALL_IPV4: Cidr = { family: 4, bytes: [0, 0, 0, 0], prefixLen: 0 };

export class PeerTable {
  private readonly ids = new Map<string, number>([[UNKNOWN_CLASS, PEER_UNKNOWN]]);
  private readonly names: string[] = [UNKNOWN_CLASS];

  constructor() {
    // Fixed ids for tally's own classes: the same in every agent, whatever the list.
    this.idOf(LOOPBACK_CLASS);
    this.idOf(NODE_CLASS);
  }

  /** The class's id, given one at first use; throws past MAX_PEER_IDS. */
  idOf(name: string): number {
    let id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.names.length >= MAX_PEER_IDS) throw new Error(`peer classes: ${MAX_PEER_IDS} names have been used since the agent started, the most it keeps; restart it to use new ones`);
    id = this.names.length;
    this.names.push(name);
    this.ids.set(name, id);
    return id;
  }

  /** The class of a peer id read from a counter key; an id this agent never gave (a previous agent's) is unknown. */
  className(id: bigint): string {
    return this.names[Number(id)] ?? UNKNOWN_CLASS;
  }

  /** Class names in id order: what a counter key's peer ids mean (part of a metric's restart signature). */
  get classNames(): readonly string[] {
    return this.names;
  }

  /**
   * The trie's entries for these networks and node addresses, one per key:
   * where the list and the node's addresses give the same network, the
   * node wins (its own addresses are a class of their own).
   */
  entries(cidrs: readonly PeerCidr[], nodeAddresses: readonly string[]): PeerEntry[] {
    const byKey = new Map<string, PeerEntry>();
    const put = (c: Cidr, name: string): void => {
      const key = peerKey(c);
      byKey.set(key.toString('hex'), { key, id: this.idOf(name) });
    };
    put(ALL_IPV4, UNKNOWN_CLASS);
    for (const c of cidrs) put(c.cidr, c.name);
    for (const c of LOOPBACK_CIDRS) put(c, LOOPBACK_CLASS);
    for (const a of nodeAddresses) {
      const r = parseCidr(a);
      if (!r.ok) throw new Error(`node address "${a}": expected ${r.expected}`);
      // A loopback address of the node stays loopback.
      if (!LOOPBACK_CIDRS.some((l) => within(r.cidr, l))) put(r.cidr, NODE_CLASS);
    }
    return [...byKey.values()];
  }
}

/**
 * The peer id the kernel finds for an address among these entries: the
 * longest prefix that matches, else unknown. What bpf/peers.bpf.h does,
 * written out for tests and for tally's own checks.
 */
export function resolvePeer(entries: readonly PeerEntry[], address: string): number {
  const r = parseCidr(address);
  if (!r.ok) throw new Error(`"${address}": expected ${r.expected}`);
  const addr = peerKey(r.cidr).subarray(PEER_KEY.addr);
  let best: PeerEntry | undefined;
  let bestLen = -1;
  for (const e of entries) {
    const len = e.key.readUInt32LE(PEER_KEY.prefixlen);
    if (len <= bestLen) continue;
    const net: Cidr = { family: 6, bytes: [...e.key.subarray(PEER_KEY.addr)], prefixLen: len };
    if (within({ family: 6, bytes: [...addr], prefixLen: 128 }, net)) {
      best = e;
      bestLen = len;
    }
  }
  return best?.id ?? PEER_UNKNOWN;
}
