// SPDX-License-Identifier: GPL-2.0
/*
 * Test fixture for the native binding and the loader: programs that the
 * verifier rejects, that load but cannot attach, and that work, plus maps to
 * read and a ring buffer to consume.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_ppid = 0;
const volatile __u64 magic = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} test_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} test_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} test_events SEC(".maps");

struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u64 magic;
};

/* Rejected by the verifier: reads past the end of a map value. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(bad_btf, struct task_struct *p)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&test_hash, &k);

	if (!v)
		return 0;
	return *(v + 16);
}

/* Loads, but names a tracepoint no kernel has, so attach fails. */
SEC("tracepoint/tally_fixture/no_such_event")
int tp_missing(void *ctx)
{
	return 0;
}

/* Names a raw tracepoint no kernel has: fails at load (no BTF type). */
SEC("tp_btf/tally_fixture_no_such_event")
int BPF_PROG(btf_missing)
{
	return 0;
}

static __always_inline int emit_exec(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
	struct exec_event *e;

	if (ppid != target_ppid)
		return 0;
	e = bpf_ringbuf_reserve(&test_events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = ppid;
	e->magic = magic;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw)
{
	return emit_exec();
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf)
{
	return emit_exec();
}

/* Attach types the kernel may or may not offer, on a function every kernel has. */
SEC("fentry/vfs_read")
int BPF_PROG(probe_fentry)
{
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(probe_kprobe)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(probe_raw_tp)
{
	return 0;
}
