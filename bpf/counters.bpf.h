/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-kernel aggregation shared by every counting program: one per-CPU hash of
 * counters keyed by struct tally_counter_key, a reserved overflow key per
 * metric for when that hash is full, and a per-CPU array of self-statistics.
 */
#ifndef TALLY_COUNTERS_BPF_H
#define TALLY_COUNTERS_BPF_H

#include "tally_types.h"

#ifndef EEXIST
#define EEXIST 17
#endif

/* Capacity is set by user space before load (bpf_map__set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tally_counter_key);
	__type(value, __u64);
} tally_counters SEC(".maps");

/*
 * The overflow entries (one per metric, one per bucket of a histogram), in a
 * map of their own so they never take room from counters, nor counters from
 * them. User space creates each before the metric's programs can run.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TALLY_OVERFLOW_ENTRIES);
	__type(key, struct tally_counter_key);
	__type(value, __u64);
} tally_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TALLY_STAT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} tally_stats SEC(".maps");

static __always_inline void tally_stat_inc(__u32 stat)
{
	__u64 *v = bpf_map_lookup_elem(&tally_stats, &stat);

	if (v)
		*v += 1;
}

/*
 * Per-CPU values need no atomics where the program cannot be preempted
 * (tracepoints, raw tracepoints, kprobes). fentry/fexit programs run with
 * only migration disabled, so two tasks on one CPU could interleave a
 * read-modify-write: those pass atomic = true.
 */
static __always_inline void tally_bump(__u64 *cur, __u64 v, bool atomic)
{
	if (atomic)
		__sync_fetch_and_add(cur, v);
	else
		*cur += v;
}

/*
 * Add v to the counter at key. An update that finds the map full lands in
 * the metric's overflow key, which user space creates before attaching, so
 * nothing counted is lost without a trace.
 */
static __always_inline void tally_add(struct tally_counter_key *key, __u64 v, bool atomic)
{
	__u64 *cur = bpf_map_lookup_elem(&tally_counters, key);
	long err;

	if (cur) {
		tally_bump(cur, v, atomic);
		return;
	}
	err = bpf_map_update_elem(&tally_counters, key, &v, BPF_NOEXIST);
	if (!err)
		return;
	if (err == -EEXIST) {
		/* Another CPU created the entry between our lookup and update. */
		cur = bpf_map_lookup_elem(&tally_counters, key);
		if (cur) {
			tally_bump(cur, v, atomic);
			return;
		}
	}
	struct tally_counter_key overflow = {
		.metric = key->metric,
		.flags = TALLY_KEY_OVERFLOW,
		.bucket = key->bucket,
	};
	cur = bpf_map_lookup_elem(&tally_overflow, &overflow);
	if (cur) {
		tally_bump(cur, v, atomic);
		tally_stat_inc(TALLY_STAT_MAP_FULL);
	} else {
		tally_stat_inc(TALLY_STAT_LOST);
	}
}

#endif /* TALLY_COUNTERS_BPF_H */
