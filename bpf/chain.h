/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel/user boundary of tracepoint chains (bpf/chain.bpf.h): how the
 * hooks of any number of policies on one classic tracepoint run behind one
 * attachment of it.
 *
 * The kernel lets 64 perf-event programs attach to one tracepoint, for every
 * tool on the host together (BPF_TRACE_MAX_PROGS). Past its first few hooks
 * at a tracepoint (attached alone: a chain costs each event more), tally
 * attaches one small dispatcher there instead of a program per hook; the
 * dispatcher tail-calls the chain's first hook program, each hook program
 * the next when it is done. Each hook program stays its own, with its
 * configuration frozen before load, so the verifier still prunes what the
 * hook does not use.
 *
 * A slot is an index into both maps: tally_chain_progs[slot] holds a
 * program, tally_chain_next[slot] the slot that runs after it (0: none).
 * A dispatcher's slot holds no program; its next is the chain's first hook.
 * User space allocates slots and relinks chains (src/engine/tracepoint-chains.ts).
 */
#ifndef TALLY_CHAIN_H
#define TALLY_CHAIN_H

/* Slots of both maps: slot 0 means "none"; hooks and dispatchers take the rest. */
#define TALLY_CHAIN_SLOTS 1024

/*
 * Hook programs per chain: the kernel follows at most 33 tail calls from one
 * attachment (MAX_TAIL_CALL_CNT), the dispatcher's first among them. More
 * hooks on one tracepoint start another chain, with a dispatcher of its own.
 */
#define TALLY_CHAIN_LENGTH 32

#endif
