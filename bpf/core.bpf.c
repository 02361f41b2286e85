// SPDX-License-Identifier: GPL-2.0
/*
 * The core object: loaded first, it creates the maps every counting object
 * shares (counters, overflow entries, label sets, binaries; see the headers
 * below). Policy hooks (policy.bpf.c) reuse these maps, and each announces a
 * binary the first time one of its events carries it. (An exec hook here
 * used to announce every new binary at exec; that cost every exec a program
 * run for what the first counted event does anyway.)
 *
 * Its one program remembers the executable of each exiting thread, for
 * kernels whose sched_process_exit fires after the task lost its mm (see
 * tally_exiting_binaries in binary.bpf.h): one map update per thread exit.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "tally_types.h"
#include "counters.bpf.h"
#include "binary.bpf.h"
#include "label_sets.bpf.h"
#include "peers.bpf.h" /* created here, reused by every policy object */

char LICENSE[] SEC("license") = "GPL";

/* exit_mm_release(tsk, mm): do_exit() about to drop mm, whose exe_file is still set. */
static __always_inline int remember_exiting(struct task_struct *tsk, struct mm_struct *mm)
{
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	__u32 tid;
	__u64 id;

	if (!exe)
		return 0;
	tid = BPF_CORE_READ(tsk, pid);
	id = tally_file_id(BPF_CORE_READ(exe, f_inode, i_ino), BPF_CORE_READ(exe, f_inode, i_sb, s_dev));
	bpf_map_update_elem(&tally_exiting_binaries, &tid, &id, BPF_ANY);
	return 0;
}

SEC("fentry/exit_mm_release")
int BPF_PROG(exiting_fentry, struct task_struct *tsk, struct mm_struct *mm)
{
	return remember_exiting(tsk, mm);
}

SEC("kprobe/exit_mm_release")
int BPF_KPROBE(exiting_kprobe, struct task_struct *tsk, struct mm_struct *mm)
{
	return remember_exiting(tsk, mm);
}
