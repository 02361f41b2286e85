/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Task filters of a policy selector: Tetragon's matchNamespaces (the Linux
 * namespaces of the calling task, by inode number) and matchCapabilities
 * (its credentials' capability sets). Everything is read through CO-RE
 * relocations with probe reads, so the same code loads on every kernel of
 * the matrix, the compat build's included.
 */
#ifndef TALLY_TASK_FILTERS_BPF_H
#define TALLY_TASK_FILTERS_BPF_H

/* The pid namespace the task is in: its struct pid's numbers[level].ns (task_active_pid_ns). */
static __always_inline __u64 pid_ns_inum(struct task_struct *t)
{
	struct pid *pid = BPF_CORE_READ(t, thread_pid);
	struct pid_namespace *ns = NULL;
	unsigned int level;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	/* numbers[] is a flexible array: its element's size comes from the kernel's BTF. */
	bpf_probe_read_kernel(&ns, sizeof(ns), (void *)pid + bpf_core_field_offset(struct pid, numbers) +
			      (__u64)(level & 63) * bpf_core_type_size(struct upid) + bpf_core_field_offset(struct upid, ns));
	return ns ? BPF_CORE_READ(ns, ns.inum) : 0;
}

/*
 * A capability set as 64 bits. kernel_cap_t is a u64 from 6.3 and two u32s
 * before: the same 8 bytes, little-endian, either way.
 */
static __always_inline __u64 cap_bits(const struct cred *c, __u32 offset)
{
	__u64 v = 0;

	if (c)
		bpf_probe_read_kernel(&v, sizeof(v), (void *)c + offset);
	return v;
}

/* A subprogram: it is called from every selector, and inlined it would be copied into each. */
static __noinline __u64 task_field(__u8 field)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred;

	switch (field) {
	case TALLY_TASK_NS_UTS:
		return BPF_CORE_READ(t, nsproxy, uts_ns, ns.inum);
	case TALLY_TASK_NS_IPC:
		return BPF_CORE_READ(t, nsproxy, ipc_ns, ns.inum);
	case TALLY_TASK_NS_MNT:
		return BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	case TALLY_TASK_NS_PID:
		return pid_ns_inum(t);
	case TALLY_TASK_NS_PID_FOR_CHILDREN:
		return BPF_CORE_READ(t, nsproxy, pid_ns_for_children, ns.inum);
	case TALLY_TASK_NS_NET:
		return BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	case TALLY_TASK_NS_TIME:
		return BPF_CORE_READ(t, nsproxy, time_ns, ns.inum);
	case TALLY_TASK_NS_TIME_FOR_CHILDREN:
		return BPF_CORE_READ(t, nsproxy, time_ns_for_children, ns.inum);
	case TALLY_TASK_NS_CGROUP:
		return BPF_CORE_READ(t, nsproxy, cgroup_ns, ns.inum);
	case TALLY_TASK_NS_USER:
		return BPF_CORE_READ(t, cred, user_ns, ns.inum);
	}
	cred = BPF_CORE_READ(t, cred);
	switch (field) {
	case TALLY_TASK_CAP_EFFECTIVE:
		return cap_bits(cred, bpf_core_field_offset(struct cred, cap_effective));
	case TALLY_TASK_CAP_PERMITTED:
		return cap_bits(cred, bpf_core_field_offset(struct cred, cap_permitted));
	case TALLY_TASK_CAP_INHERITABLE:
		return cap_bits(cred, bpf_core_field_offset(struct cred, cap_inheritable));
	}
	return 0;
}

static __always_inline bool task_filter_matches(const volatile struct tally_pol_task_filter *f)
{
	__u64 v = task_field(f->field);

	if (f->op == TALLY_OP_MASK)
		return (v & f->values[0]) != 0;
	if (f->op == TALLY_OP_NOT_MASK)
		return (v & f->values[0]) == 0;
	return value_set_admits(f->values, f->nvalues, TALLY_POL_TASK_VALUES, f->op, v);
}

#endif
