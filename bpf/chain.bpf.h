/* SPDX-License-Identifier: GPL-2.0 */
/* The maps of tracepoint chains, and the step to a chain's next program (bpf/chain.h). */
#ifndef TALLY_CHAIN_BPF_H
#define TALLY_CHAIN_BPF_H

#include "chain.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, TALLY_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} tally_chain_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TALLY_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} tally_chain_next SEC(".maps");

/*
 * Runs the program after `slot` in its chain, if there is one. A tail call
 * does not return: this is the last thing a chained program does. Slot 0 (a
 * program that is not chained) goes nowhere, so the verifier drops it all.
 */
static __always_inline void tally_chain_next_of(void *ctx, __u32 slot)
{
	__u32 *next;

	if (!slot)
		return;
	next = bpf_map_lookup_elem(&tally_chain_next, &slot);
	if (next && *next)
		bpf_tail_call(ctx, &tally_chain_progs, *next);
}

#endif
