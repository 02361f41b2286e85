/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packets of a cgroup_skb hook (policy spec.packets): programs attached to
 * the cgroup v2 root, which the kernel runs for every packet a socket of any
 * cgroup sends or receives, with skb data at the network header, on egress
 * before IP fragmentation and on ingress after reassembly. So one run is one
 * whole datagram (or one GSO batch of them), with its addresses as sent:
 * the only place a UDP socket's peer is known on every kernel, connected
 * or not, with neither kprobes nor the datagram's msghdr.
 */
#ifndef TALLY_PACKETS_BPF_H
#define TALLY_PACKETS_BPF_H

#include "tally_types.h"
#include "policy.h"

#define TALLY_ETH_P_IP   0x0800
#define TALLY_ETH_P_IPV6 0x86DD
#define TALLY_IPPROTO_TCP     6
#define TALLY_IPPROTO_UDP     17
#define TALLY_IPPROTO_UDPLITE 136

/* The transport header's ports, and TCP's data offset (byte 12, high nibble). */
struct tally_l4_head {
	__be16 source;
	__be16 dest;
	__u8 pad[8];
	__u8 doff;
};

/*
 * Decodes the packet into net as its socket sees it, the way a sock arg
 * reads (saddr and sport local, daddr and dport remote, whichever way the
 * packet goes: on ingress the header's source is the peer), and returns the
 * bytes of transport payload: a UDP datagram's data, a TCP segment's, or for
 * another protocol what follows the IP header. IPv6 extension headers are
 * not walked: such a packet's protocol is its first extension header's.
 * A subprogram: inlined, its headers would join the caller's stack frame,
 * which the compat build fills to the limit.
 */
static __noinline __u32 tally_decode_packet(struct __sk_buff *skb, struct tally_pol_net *net, bool ingress)
{
	struct tally_l4_head l4 = {};
	__u32 len = skb->len, hl;
	bool first = true; /* the fragment that holds the transport header */

	__builtin_memset(net, 0, sizeof(*net));
	if (skb->protocol == bpf_htons(TALLY_ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		hl = ip.ihl * 4;
		net->family = AF_INET;
		net->protocol = ip.protocol;
		first = (bpf_ntohs(ip.frag_off) & 0x1fff) == 0;
		__builtin_memcpy(ingress ? net->daddr : net->saddr, &ip.saddr, 4);
		__builtin_memcpy(ingress ? net->saddr : net->daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(TALLY_ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		hl = sizeof(ip6);
		net->family = AF_INET6;
		net->protocol = ip6.nexthdr;
		__builtin_memcpy(ingress ? net->daddr : net->saddr, &ip6.saddr, 16);
		__builtin_memcpy(ingress ? net->saddr : net->daddr, &ip6.daddr, 16);
	} else {
		return 0;
	}
	if (len < hl)
		return 0;
	len -= hl;
	if (!first)
		return len;
	if (net->protocol == TALLY_IPPROTO_UDP || net->protocol == TALLY_IPPROTO_UDPLITE) {
		if (bpf_skb_load_bytes(skb, hl, &l4, 4) || len < 8)
			return 0;
		len -= 8;
	} else if (net->protocol == TALLY_IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, hl, &l4, sizeof(l4)) || len < (__u32)(l4.doff >> 4) * 4)
			return 0;
		len -= (l4.doff >> 4) * 4;
	} else {
		return len;
	}
	net->sport = bpf_ntohs(ingress ? l4.dest : l4.source);
	net->dport = bpf_ntohs(ingress ? l4.source : l4.dest);
	return len;
}

#endif /* TALLY_PACKETS_BPF_H */
