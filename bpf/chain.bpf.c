// SPDX-License-Identifier: GPL-2.0
/*
 * A tracepoint chain's dispatcher (bpf/chain.h): the one program tally
 * attaches to a classic tracepoint however many hooks it has there. It runs
 * the chain's first hook program; each runs the next.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "chain.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* This chain's own slot: its next is the chain's first hook. Set before load. */
const volatile __u32 tally_chain_head = 0;

SEC("tracepoint")
int tally_dispatch(void *ctx)
{
	tally_chain_next_of(ctx, tally_chain_head);
	return 0;
}
