/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who owns a counted event, in a counter key: the label set user space gave
 * its cgroup, or until then the raw cgroup id (folded in later), or nothing
 * when the label filter has no cgroup-derived label.
 */
#ifndef TALLY_LABEL_SETS_BPF_H
#define TALLY_LABEL_SETS_BPF_H

#include "tally_types.h"

/* Load-time switch: false when no cgroup-derived label (namespace, workload,
 * pod) is in the label filter, so the kernel does not key by cgroup at all. */
const volatile bool key_by_cgroup = true;

/*
 * cgroup -> label-set id and namespace, written by user space once it has
 * resolved a cgroup under the label filter: cgroups that share their labels
 * (the pods of one Deployment under filter namespace,workload) then share one
 * counter entry. A cgroup not in here yet is counted under its raw id and
 * folded in later.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tally_cgroup_mapping);
} tally_cgroup_label_sets SEC(".maps");

/*
 * What one CPU remembers between events (struct in tally_types.h): events
 * come in bursts from one cgroup and one binary, and this saves a hash
 * lookup and an announcement check for all but the first. Shared by every
 * counting object, so the exec and exit hooks of one process find each
 * other's entry.
 *
 * One entry per possible CPU (user space sizes it), found by CPU number,
 * not a per-CPU array: a per-CPU array's lookup reads the CPU's pointer out
 * of the map's own struct, one more cache miss on a cold hook, where this
 * address is the map's plus arithmetic. Mmapable, so entries start on a page
 * and each is one cache line of its own.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tally_label_set_cache);
} tally_label_set_cache SEC(".maps");

/* This CPU's entry of an array user space sized with one per possible CPU. */
static __always_inline void *tally_cpu_entry(void *map)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(map, &cpu);
}

/* What user space resolved cgroup_id to; label_set 0 when it has not (yet). */
static __always_inline struct tally_cgroup_mapping tally_mapping_of(struct tally_label_set_cache *c, __u64 cgroup_id)
{
	struct tally_cgroup_mapping none = {}, *m;
	__u64 generation;

	if (!c) /* never: user space gives every CPU an entry */
		return none;
	generation = c->generation;
	if (c->cgroup_id == cgroup_id && c->seen == generation && c->check == cgroup_id)
		return c->m;
	/* The generation is read before the lookup: a mapping removed after it is looked up again next time. */
	barrier();
	m = bpf_map_lookup_elem(&tally_cgroup_label_sets, &cgroup_id);
	c->check = 0;
	barrier();
	c->cgroup_id = cgroup_id;
	c->seen = generation;
	c->m = m ? *m : none;
	barrier();
	c->check = cgroup_id;
	return m ? *m : none;
}

/*
 * What bpf_get_current_cgroup_id() returns (the task's cgroup v2 id), read
 * with plain loads from the task the verifier knows: no helper call, which
 * with return-thunk mitigations (SRSO, retbleed) costs more than the loads.
 */
static __always_inline __u64 tally_task_cgroup_id(struct task_struct *task)
{
#ifdef TALLY_COMPAT
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
#else
	return task->cgroups->dfl_cgrp->kn->id;
#endif
}

/*
 * Fill key->cgroup_id and key->flags for an event owned by cgroup_id (the
 * socket's or the task's; the caller resolves which, as it has the task).
 */
static __always_inline void tally_key_owner(struct tally_label_set_cache *c, struct tally_counter_key *key, __u64 cgroup_id)
{
	key->flags = TALLY_KEY_RAW_CGROUP;
	if (!key_by_cgroup) {
		key->cgroup_id = 0;
		return;
	}
	__u32 label_set = tally_mapping_of(c, cgroup_id).label_set;

	if (label_set) {
		key->cgroup_id = label_set;
		key->flags = TALLY_KEY_LABEL_SET;
	} else {
		key->cgroup_id = cgroup_id;
	}
}

#endif /* TALLY_LABEL_SETS_BPF_H */
