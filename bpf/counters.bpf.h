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

/*
 * Promoted counters (tally_types.h): written by user space, read here.
 * Mmapable only so that its entries start on a page: an array's values
 * otherwise start 56 bytes into a cache line, and each 64-byte entry would
 * span two.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TALLY_FAST_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tally_fast_entry);
} tally_fast_index SEC(".maps");

/* One entry per possible CPU (user space sizes it), found by CPU number. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally_fast_counters);
} tally_fast_counters SEC(".maps");

/*
 * Who counts (docs/restart.md): tally_epoch[0] names the agent whose
 * programs count now; each object's programs count only while it equals
 * their own tally_owner_epoch. Shared by every object, and pinned with
 * --bpf-pin-dir, so a new agent can attach its programs beside a previous
 * agent's still-counting ones and take over with one write: every event is
 * then counted by exactly one of them. Without the flag both are 0.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tally_epoch SEC(".maps");

const volatile __u64 tally_owner_epoch = 0;

/* splitmix64's finaliser: spreads 64 bits over 64 bits. */
static __always_inline __u64 tally_mix(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* A counter key's hash; fastHash() in src/bpf/promoted-counters.ts computes the same. */
static __always_inline __u64 tally_fast_hash(const struct tally_counter_key *k)
{
	__u64 tail = (__u64)k->metric | (__u64)k->flags << 32 | (__u64)k->bucket << 48;

	return tally_mix(k->cgroup_id ^ tally_mix(k->binary_id ^ tally_mix(k->labels[0] ^ tally_mix(k->labels[1] ^ tally_mix(tail)))));
}

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
 * Adds v to key's promoted counter, if user space promoted key: inlined
 * array lookups only. An entry counts only if its check is this key's hash
 * and every field of its key matches: user space writes check last when it
 * promotes, and reuses a position only two sweeps after clearing it, so an
 * entry read mid-change is a miss (the event goes to the hash), never
 * another key's counter.
 */
static __always_inline bool tally_fast_add(const struct tally_counter_key *key, __u64 v, bool atomic)
{
	__u64 h = tally_fast_hash(key);
	__u32 cpu = bpf_get_smp_processor_id();
	struct tally_fast_counters *c;

	#pragma unroll
	for (__u32 p = 0; p < TALLY_FAST_PROBES; p++) {
		__u32 pos = (h + p) & (TALLY_FAST_SLOTS - 1);
		struct tally_fast_entry *e = bpf_map_lookup_elem(&tally_fast_index, &pos);

		if (!e || e->check != (h | 1))
			continue;
		if (e->key.cgroup_id != key->cgroup_id || e->key.binary_id != key->binary_id ||
		    e->key.labels[0] != key->labels[0] || e->key.labels[1] != key->labels[1] ||
		    e->key.metric != key->metric || e->key.flags != key->flags || e->key.bucket != key->bucket)
			continue;
		c = bpf_map_lookup_elem(&tally_fast_counters, &cpu);
		if (!c) /* never: user space gives every CPU an entry */
			return false;
		tally_bump(&c->value[pos & (TALLY_FAST_SLOTS - 1)], v, atomic);
		return true;
	}
	return false;
}

/*
 * Add v to the counter at key: its promoted counter if it has one, else the
 * hash. An update that finds the map full lands in the metric's overflow
 * key, which user space creates before attaching, so nothing counted is
 * lost without a trace.
 */
static __always_inline void tally_add(struct tally_counter_key *key, __u64 v, bool atomic)
{
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&tally_epoch, &zero);
	__u64 *cur;
	long err;

	if (epoch && *epoch != tally_owner_epoch)
		return; /* another agent's programs count now */
	if (tally_fast_add(key, v, atomic))
		return;
	cur = bpf_map_lookup_elem(&tally_counters, key);
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
