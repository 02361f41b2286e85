/**
 * The peer table: which peer id each remote address resolves to, as the
 * entries of the kernel's LPM trie tally_peers (bpf/peers.bpf.h), and what
 * labels each peer id stands for. Pure: peer-map.ts writes it to the kernel.
 *
 * A peer id stands for a peer: its class (peer_class) and, for an address
 * of a Service's endpoint, the Service's namespace and name (peer_namespace,
 * peer_service). One id per distinct peer, so the kernel key stays one number
 * whatever labels it decodes to.
 *
 * Entries, longest prefix first:
 *   node      this node's own addresses (a /32 or /128 each)
 *   cluster   each endpoint address of an EndpointSlice (a /32 or /128):
 *             same-node, same-zone, cross-zone, or cluster when a zone is
 *             not known (cluster-peers.ts), with its namespace and service
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

/** Distinct peers one agent gives ids to in its life: ids are never reused, so counts keep their peer. */
export const MAX_PEER_IDS = 65536;

/** What a peer id decodes to. namespace and service are '' for a peer that is no Service's endpoint. */
export interface Peer {
  class: string;
  namespace: string;
  service: string;
}

/** Which of a peer's labels a policy label exports (`peer: class | namespace | service`). */
export type PeerPart = keyof Peer;

/** An endpoint address and the peer it is (cluster-peers.ts). */
export interface ClusterPeer {
  address: string;
  peer: Peer;
}

const classOnly = (name: string): Peer => ({ class: name, namespace: '', service: '' });
/** A peer as one string: the class alone, or class/namespace/service. */
const peerName = (p: Peer): string => (p.namespace === '' && p.service === '' ? p.class : `${p.class}/${p.namespace}/${p.service}`);

/** The peer a name of peerNames stands for ('/' is in no class, namespace or Service name); undefined if it is not one. */
export function peerOfName(name: string): Peer | undefined {
  const parts = name.split('/');
  if (parts[0] === '' || (parts.length !== 1 && parts.length !== 3)) return undefined;
  return parts.length === 1 ? classOnly(name) : { class: parts[0], namespace: parts[1], service: parts[2] };
}

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
  private readonly peers: Peer[] = [classOnly(UNKNOWN_CLASS)];

  constructor() {
    // Fixed ids for tally's own classes: the same in every agent, whatever the list.
    this.idOf(LOOPBACK_CLASS);
    this.idOf(NODE_CLASS);
  }

  /** The peer's id (a class name: that class alone), given one at first use; throws past MAX_PEER_IDS. */
  idOf(peer: Peer | string): number {
    const p = typeof peer === 'string' ? classOnly(peer) : peer;
    const name = peerName(p);
    let id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.peers.length >= MAX_PEER_IDS) throw new Error(`peer table: ${MAX_PEER_IDS} peers have been named since the agent started, the most it keeps; restart it to name new ones`);
    id = this.peers.length;
    this.peers.push({ ...p });
    this.ids.set(name, id);
    return id;
  }

  /** The peer of an id read from a counter key; an id this agent never gave (a previous agent's) is unknown. */
  peerOf(id: bigint): Peer {
    return this.peers[Number(id)] ?? this.peers[PEER_UNKNOWN];
  }

  /** The class of a peer id. */
  className(id: bigint): string {
    return this.peerOf(id).class;
  }

  /** Peers in id order, each as one string: what a counter key's peer ids mean (part of a metric's restart signature). */
  get peerNames(): readonly string[] {
    return this.peers.map(peerName);
  }

  /**
   * The trie's entries for these networks, endpoint addresses and node
   * addresses, one per key. Where they give the same key, the later wins:
   * an endpoint's address over a network of the list, and the node's own
   * addresses over everything (a hostNetwork endpoint's address is the
   * node's). Loopback addresses stay loopback.
   */
  entries(cidrs: readonly PeerCidr[], nodeAddresses: readonly string[], cluster: readonly ClusterPeer[] = []): PeerEntry[] {
    const byKey = new Map<string, PeerEntry>();
    const put = (c: Cidr, peer: Peer | string): void => {
      const key = peerKey(c);
      byKey.set(key.toString('hex'), { key, id: this.idOf(peer) });
    };
    const host = (what: string, a: string): Cidr | undefined => {
      const r = parseCidr(a);
      if (!r.ok) throw new Error(`${what} "${a}": expected ${r.expected}`);
      return LOOPBACK_CIDRS.some((l) => within(r.cidr, l)) ? undefined : r.cidr;
    };
    put(ALL_IPV4, UNKNOWN_CLASS);
    for (const c of cidrs) put(c.cidr, c.name);
    for (const c of LOOPBACK_CIDRS) put(c, LOOPBACK_CLASS);
    for (const e of cluster) {
      const c = host('endpoint address', e.address);
      if (c) put(c, e.peer);
    }
    for (const a of nodeAddresses) {
      const c = host('node address', a);
      if (c) put(c, NODE_CLASS);
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
