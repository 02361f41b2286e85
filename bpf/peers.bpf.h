/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peer resolution in the kernel: the remote address of a socket to a peer id
 * (tally_types.h, struct tally_peer_key), by longest prefix. The core object
 * creates the trie and every policy object reuses it, so user space replaces
 * its entries in place, with no program reloaded: each event reads the trie
 * as it is at that moment. Only bpf_map_lookup_elem on an LPM trie (Linux
 * 4.11), so the same code runs on every kernel of the matrix.
 */
#ifndef TALLY_PEERS_BPF_H
#define TALLY_PEERS_BPF_H

#include "tally_types.h"

#define TALLY_AF_INET  2
#define TALLY_AF_INET6 10

/*
 * Entries are allocated as they are added (BPF_F_NO_PREALLOC), so the
 * capacity costs nothing until used; src/peers/peer-map.ts refuses a table
 * larger than it (PEER_MAP_CAPACITY).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__type(key, struct tally_peer_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tally_peers SEC(".maps");

/*
 * The peer id of a remote address of family AF_INET (the first 4 bytes of
 * addr) or AF_INET6 (16 bytes); TALLY_PEER_UNKNOWN when nothing matches or
 * the family has no address. A subprogram: one copy however many labels call
 * it (unused, and dropped, in the core object, which only creates the map).
 */
static __noinline __attribute__((unused)) __u32 tally_peer_of(__u16 family, const __u8 *addr)
{
	struct tally_peer_key key = { .prefixlen = 128 };
	__u32 *id;

	if (family == TALLY_AF_INET) {
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], addr, 4);
	} else if (family == TALLY_AF_INET6) {
		__builtin_memcpy(key.addr, addr, 16);
	} else {
		return TALLY_PEER_UNKNOWN;
	}
	id = bpf_map_lookup_elem(&tally_peers, &key);
	return id ? *id : TALLY_PEER_UNKNOWN;
}

#endif /* TALLY_PEERS_BPF_H */
