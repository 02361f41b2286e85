// SPDX-License-Identifier: GPL-2.0
/*
 * Empty programs, one per attach type, that user space loads and attaches
 * once at startup to learn what this kernel offers (a kernel may know a
 * program type and still refuse it: fentry under some lockdown setups, kprobes
 * when not compiled in). Policy hooks then skip what cannot work.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

SEC("fentry/vfs_read")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("kprobe/vfs_read")
int probe_kprobe(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_tp_btf)
{
	return 0;
}

SEC("raw_tp/sched_process_exit")
int probe_raw_tp(void *ctx)
{
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int probe_tracepoint(void *ctx)
{
	return 0;
}

SEC("uprobe")
int probe_uprobe(void *ctx)
{
	return 0;
}

/* A verdict: 1 lets the packet through. */
SEC("cgroup_skb/egress")
int probe_cgroup_skb(struct __sk_buff *skb)
{
	return 1;
}

/*
 * Helpers the default policy build uses (bpf/compat.bpf.h): where either is
 * missing, hooks load the compat build instead. bpf_loop()'s probe passes a
 * callback, so a kernel that cannot count callback subprograms refuses it
 * just as it would refuse the policy programs.
 */
static long probe_step(__u64 index, void *ctx)
{
	return 1;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_helper_bpf_loop)
{
	bpf_loop(1, probe_step, NULL, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_helper_bpf_get_current_task_btf)
{
	return bpf_get_current_task_btf()->pid ? 0 : 1;
}
