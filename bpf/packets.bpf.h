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

/*
 * Decodes the packet into net as its socket sees it, the way a sock arg
 * reads (saddr and sport local, daddr and dport remote, whichever way the
 * packet goes: on ingress the header's source is the peer), and returns the
 * bytes of transport payload: a UDP datagram's data, a TCP segment's, or for
 * another protocol what follows the IP header. IPv6 extension headers are
 * not walked: such a packet's protocol is its first extension header's.
 *
 * A subprogram, and one with a small frame: each field is loaded straight
 * into net (scratch map memory) rather than whole headers onto the stack,
 * since 5.10 counts this frame and its caller's together against 512 bytes.
 */
static __noinline __u32 tally_decode_packet(struct __sk_buff *skb, struct tally_pol_net *net, bool ingress)
{
	__u32 len = skb->len, hl, ports = 0;
	/* Where the header's source and destination go: on ingress the source is the remote end. */
	__u8 *hsrc = ingress ? net->daddr : net->saddr;
	__u8 *hdst = ingress ? net->saddr : net->daddr;
	__u8 b = 0;
	__u16 frag = 0;
	bool first = true; /* the fragment that holds the transport header */

	__builtin_memset(net, 0, sizeof(*net));
	if (skb->protocol == bpf_htons(TALLY_ETH_P_IP)) {
		/* struct iphdr: version and ihl at 0, frag_off at 6, protocol at 9, saddr at 12, daddr at 16. */
		if (bpf_skb_load_bytes(skb, 0, &b, 1) || bpf_skb_load_bytes(skb, 6, &frag, 2))
			return 0;
		hl = (b & 0x0f) * 4;
		first = (bpf_ntohs(frag) & 0x1fff) == 0;
		if (bpf_skb_load_bytes(skb, 9, &b, 1) || bpf_skb_load_bytes(skb, 12, hsrc, 4) ||
		    bpf_skb_load_bytes(skb, 16, hdst, 4))
			return 0;
		net->family = AF_INET;
	} else if (skb->protocol == bpf_htons(TALLY_ETH_P_IPV6)) {
		/* struct ipv6hdr: nexthdr at 6, saddr at 8, daddr at 24, 40 bytes. */
		if (bpf_skb_load_bytes(skb, 6, &b, 1) || bpf_skb_load_bytes(skb, 8, hsrc, 16) ||
		    bpf_skb_load_bytes(skb, 24, hdst, 16))
			return 0;
		hl = 40;
		net->family = AF_INET6;
	} else {
		return 0;
	}
	net->protocol = b;
	if (len < hl)
		return 0;
	len -= hl;
	if (!first)
		return len;
	if (b == TALLY_IPPROTO_UDP || b == TALLY_IPPROTO_UDPLITE) {
		if (len < 8 || bpf_skb_load_bytes(skb, hl, &ports, 4))
			return 0;
		len -= 8;
	} else if (b == TALLY_IPPROTO_TCP) {
		/* The data offset: the high nibble of byte 12, in 32-bit words. */
		if (bpf_skb_load_bytes(skb, hl, &ports, 4) || bpf_skb_load_bytes(skb, hl + 12, &b, 1) || len < (__u32)(b >> 4) * 4)
			return 0;
		len -= (b >> 4) * 4;
	} else {
		return len;
	}
	/* ports: the source port in its first two bytes, the destination in the last two, both big-endian. */
	__u16 src = bpf_ntohs((__u16)ports), dst = bpf_ntohs((__u16)(ports >> 16));

	net->sport = ingress ? dst : src;
	net->dport = ingress ? src : dst;
	return len;
}

#endif /* TALLY_PACKETS_BPF_H */
