// SPDX-License-Identifier: GPL-2.0
/*
 * The core object: loaded first, it creates the maps every counting object
 * shares (counters, overflow entries, label sets, binaries; see the headers
 * below) and announces a task's new binary at exec, so the first event of a
 * freshly started program already finds its path known. Policy hooks
 * (policy.bpf.c) reuse these maps.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "tally_types.h"
#include "counters.bpf.h"
#include "binary.bpf.h"
#include "label_sets.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Exec: the task's binary changes. Loaded only when keyed by binary. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	tally_on_exec();
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	tally_on_exec();
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(void *ctx)
{
	tally_on_exec();
	return 0;
}
