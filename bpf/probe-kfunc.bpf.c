// SPDX-License-Identifier: GPL-2.0
/*
 * The startup probe of kernel functions (kfuncs), in an object of its own:
 * where the kernel lacks one, libbpf 1.1.2 searches every module's BTF for
 * it, which needs CAP_SYS_ADMIN; in the same object as the attach-type
 * probes (bpf/probe.bpf.c), that failure took them all down with it (6.1
 * with the chart's capabilities: every attach type "not offered").
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/*
 * Weak, so on a kernel without it libbpf leaves the call unresolved and the
 * program fails to load (or, without CAP_SYS_ADMIN there, the object does:
 * either way the kfunc counts as missing).
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/*
 * Both ways the engine casts: to a kernel struct (6.2+), and to void, untyped
 * memory read at a variable offset (later kernels). A kernel with only the
 * first gets the helper reads for both.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(probe_kfunc_bpf_rdonly_cast, struct task_struct *task)
{
	__u32 i = bpf_get_prandom_u32() & 7;
	struct file **fds = bpf_rdonly_cast(task->files->fdt->fd, 0);
	struct file *f = bpf_rdonly_cast(fds[i], bpf_core_type_id_kernel(struct file));

	return f->f_inode ? 0 : 1;
}

