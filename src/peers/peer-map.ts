/**
 * Keeps the kernel's tally_peers trie equal to the peer table, in place: no
 * program is reloaded, and each event resolves its address against the trie
 * as it is at that moment. A replacement writes new and changed entries
 * first, then deletes what is gone, so an address never falls back to a
 * shorter prefix it should not, and every event is counted under some peer
 * (unknown at worst): none is lost. Bytes counted before a change stay with
 * the peer they were counted for, because the peer id is in their key.
 */
import * as os from 'node:os';
import { native } from '../native/addon';
import { PeerCidr } from './peer-cidrs';
import { ClusterPeer, PeerEntry, PeerTable } from './peer-table';

/** max_entries of tally_peers (bpf/peers.bpf.h). */
export const PEER_MAP_CAPACITY = 16384;

/** This node's own addresses, loopback aside (os.networkInterfaces of the agent's network namespace). */
export function nodeAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => a !== undefined && !a.internal)
    .map((a) => a.address.replace(/%.*$/, ''));
}

/** What a replacement changed in the trie. */
export interface PeerMapChange {
  written: number;
  deleted: number;
  entries: number;
}

export class PeerMap {
  /** The trie's entries as last written, by key (hex). */
  private current = new Map<string, PeerEntry>();

  constructor(
    private readonly fd: number,
    readonly table: PeerTable,
    private readonly capacity = PEER_MAP_CAPACITY,
  ) {}

  /** Makes the trie resolve these networks, node addresses and endpoints; throws, changing nothing, if they do not fit. */
  replace(cidrs: readonly PeerCidr[], addresses: readonly string[] = nodeAddresses(), cluster: readonly ClusterPeer[] = []): PeerMapChange {
    const wanted = new Map(this.table.entries(cidrs, addresses, cluster).map((e) => [e.key.toString('hex'), e] as const));
    if (wanted.size > this.capacity) {
      throw new Error(`peer table: ${wanted.size} entries (the CIDRs, loopback, ${addresses.length} node addresses and ${cluster.length} endpoint addresses), the kernel map holds ${this.capacity}; merge networks into shorter prefixes`);
    }
    const value = Buffer.alloc(4);
    let written = 0;
    for (const [hex, e] of wanted) {
      if (this.current.get(hex)?.id === e.id) continue;
      value.writeUInt32LE(e.id);
      native().mapUpdate(this.fd, e.key, value);
      written++;
    }
    let deleted = 0;
    for (const [hex, e] of this.current) {
      if (wanted.has(hex)) continue;
      native().mapDelete(this.fd, e.key);
      deleted++;
    }
    this.current = wanted;
    return { written, deleted, entries: wanted.size };
  }

  /** The entries as written, for /debug and tests. */
  entries(): PeerEntry[] {
    return [...this.current.values()];
  }
}
