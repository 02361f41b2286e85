// SPDX-License-Identifier: GPL-2.0
/*
 * The policy engine's programs: one generic program per attach type, driven
 * by a compiled hook configuration (struct tally_pol_config, bpf/policy.h).
 *
 * Per event: decode the arguments the hook declares, evaluate its selectors
 * (ORed; everything inside one selector ANDs), and add to the counters and
 * log2 histogram buckets of its metrics, keyed by the event's owner (label
 * set or raw cgroup), binary and extra labels. Nothing leaves the kernel per
 * event.
 *
 * A hook with a return (kretprobe, fexit, uretprobe, sys_exit) is two
 * programs: the entry decodes and selects and leaves what the return needs
 * (arguments, label values, the time) in tally_pol_inflight, keyed by task;
 * the return adds the return value or the latency.
 *
 * The configuration is read-only data frozen before load, so every loop bound
 * and branch on it is a constant to the verifier: code a hook does not use is
 * never verified nor run.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#ifdef TALLY_USDT
#include <bpf/usdt.bpf.h>
#endif

#include "compat.bpf.h"
#include "tally_types.h"
#include "counters.bpf.h"
#include "binary.bpf.h"
#include "label_sets.bpf.h"
#include "peers.bpf.h"
#include "policy.h"
#include "value_sets.bpf.h"
#include "task_filters.bpf.h"
#include "chain.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * bpf_rdonly_cast gives a kernel pointer that came as a plain number its
 * type back (or, cast to void, makes it memory to read at any offset), so
 * what hangs off it is plain loads instead of bpf_probe_read_kernel() calls.
 * User space sets have_rdonly_cast when the startup probe found both uses
 * work; elsewhere the dead branches go before the verifier would refuse them.
 *
 * Only the default build declares it. Where the kernel lacks it (before 6.2),
 * libbpf 1.1.2 looks for a weak kfunc in every module's BTF too, and listing
 * those needs CAP_SYS_ADMIN: without it the whole object failed to load (6.1
 * with the chart's capabilities). So the compat build, for kernels that never
 * have it, and the no-kfunc build (-DTALLY_NO_KFUNC), which user space loads
 * where the probe found it missing, name no kfunc at all.
 */
#if defined(TALLY_COMPAT) || defined(TALLY_NO_KFUNC)
#define bpf_rdonly_cast(obj, btf_id) ((void *)0)
#else
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#endif
const volatile bool have_rdonly_cast = false;

/*
 * Declared after the switches above, so that they and the configuration's
 * header share the first cache line of .rodata: on a cold hook each line of
 * it an event reads is a miss.
 */
const volatile struct tally_pol_config pol = {};

/*
 * A classic tracepoint's programs run in a chain behind one dispatcher
 * (bpf/chain.h): their slots there, set before load; 0 when attached alone.
 * tally_chain_slot is the entry program's (or pol_sys_exit_only's),
 * tally_chain_slot_ret pol_sys_exit_tp's.
 */
const volatile __u32 tally_chain_slot = 0;
const volatile __u32 tally_chain_slot_ret = 0;

#define AF_INET  2
#define AF_INET6 10
#define S_IFMT   00170000

/* Strings and addresses of selectors and prefix labels, under their slots. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct tally_pol_lpm_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tally_pol_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tally_pol_binary_key);
	__type(value, __u8);
} tally_pol_binaries SEC(".maps");

/*
 * matchBinaries by path (Prefix, Postfix): each binary's answer under each
 * filter, by binary id, so only a binary's first event walks its path. LRU:
 * one that falls out is judged again at its next event.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tally_pol_binary_key);
	__type(value, __u8);
} tally_pol_binary_paths SEC(".maps");

/* Values a capped label has taken; capacity set by user space (the sum of caps). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tally_pol_seen_key);
	__type(value, __u8);
} tally_pol_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TALLY_POL_SEEN_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tally_pol_seen_count SEC(".maps");

struct tally_pol_net {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

#include "packets.bpf.h"

/*
 * Per-arg arrays have 8 slots for 6 args, so an index masked with ARG_MASK is
 * in bounds as the verifier sees it (it does not track the bounds of `%`).
 */
#define ARG_SLOTS 8
#define ARG_MASK (ARG_SLOTS - 1)
/* A slot no arg uses (there are 6): the executable's path, for matchBinaries by path. */
#define EXE_SLOT (ARG_SLOTS - 1)

/* What the entry leaves for the return. */
struct tally_pol_pending {
	__u64 start_ns;
	__u64 owner;
	__u64 binary;
	__u32 ns_pending; /* selectors that matched but for the owner's namespace, not known yet: TALLY_KEY_NS_PENDING */
	__u32 pad;
	__u64 val[ARG_SLOTS];
	__u64 labels[TALLY_POL_METRICS][TALLY_POL_LABELS];
};

/* One decoded event: too large for the 512-byte stack. */
struct tally_pol_event {
	struct tally_pol_pending p;
	__u64 file_type[ARG_SLOTS];
	struct tally_pol_net net[ARG_SLOTS];
	/* LPM keys with room to spare: paths are assembled past TALLY_POL_STR, then cut. */
	struct {
		__u32 prefixlen;
		__u32 slot;
		__u8 data[2 * TALLY_POL_STR];
	} str[ARG_SLOTS];
	__u32 str_len[ARG_SLOTS];
	/* One string reversed, for the Postfix filter being evaluated. */
	struct tally_pol_lpm_key reversed;
} __attribute__((aligned(64)));

/* One event per possible CPU, found by CPU number: see tally_label_set_cache for why not a per-CPU array. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tally_pol_event);
} tally_pol_scratch SEC(".maps");

/*
 * Thread groups whose end was counted (TALLY_SRC_GROUP_DEAD): on kernels
 * whose sched_process_exit does not pass group_dead, every thread that exits
 * after the group's live count reached 0 sees 0, and threads of one group
 * often exit together (exit_group); the first to claim the group counts it.
 * LRU: an entry is needed only while the group's threads are exiting. Sized
 * by user space when a hook reads it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct tally_pol_group_key);
	__type(value, __u8);
} tally_pol_groups_ended SEC(".maps");

/* Calls between entry and return, by task. LRU: a task killed mid-call never returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tally_pol_pending);
} tally_pol_inflight SEC(".maps");

/*
 * Loops over the configuration are unrolled: each slot's index is then a
 * constant, which the verifier checks once and prunes when unused.
 */

/* ---- decoding ------------------------------------------------------------ */

static __always_inline __u64 reg_arg(struct pt_regs *regs, __u32 n)
{
	switch (n) {
	case 0: return PT_REGS_PARM1(regs);
	case 1: return PT_REGS_PARM2(regs);
	case 2: return PT_REGS_PARM3(regs);
	case 3: return PT_REGS_PARM4(regs);
	case 4: return PT_REGS_PARM5(regs);
	default:
#if defined(__TARGET_ARCH_x86)
		return BPF_CORE_READ(regs, r9); /* libbpf 1.1 has no PT_REGS_PARM6 */
#else
		return 0;
#endif
	}
}

/* Syscall arguments from the user registers saved at entry (raw_tp sys_enter). */
static __always_inline __u64 syscall_arg(struct pt_regs *regs, __u32 n)
{
	switch (n) {
	case 0: return PT_REGS_PARM1_CORE_SYSCALL(regs);
	case 1: return PT_REGS_PARM2_CORE_SYSCALL(regs);
	case 2: return PT_REGS_PARM3_CORE_SYSCALL(regs);
	case 3: return PT_REGS_PARM4_CORE_SYSCALL(regs);
	case 4: return PT_REGS_PARM5_CORE_SYSCALL(regs);
	default:
#if defined(__TARGET_ARCH_x86)
		return BPF_CORE_READ(regs, r9);
#else
		return 0;
#endif
	}
}

/*
 * The same, from the task's saved registers as bpf_task_pt_regs() gives them:
 * a pointer the verifier knows, so each argument is a plain load rather than
 * a bpf_probe_read_kernel() call.
 */
static __always_inline __u64 task_syscall_arg(struct pt_regs *regs, __u32 n)
{
#if defined(__TARGET_ARCH_x86)
	switch (n) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	default: return regs->r9;
	}
#else
	return syscall_arg(regs, n);
#endif
}

static __always_inline __u64 record_arg(void *record, __u32 offset, __u32 size, bool is_signed)
{
	switch (size) {
	case 1: {
		__u8 v = 0;
		bpf_probe_read_kernel(&v, 1, record + offset);
		return is_signed ? (__u64)(__s64)(__s8)v : v;
	}
	case 2: {
		__u16 v = 0;
		bpf_probe_read_kernel(&v, 2, record + offset);
		return is_signed ? (__u64)(__s64)(__s16)v : v;
	}
	case 4: {
		__u32 v = 0;
		bpf_probe_read_kernel(&v, 4, record + offset);
		return is_signed ? (__u64)(__s64)(__s32)v : v;
	}
	default: {
		__u64 v = 0;
		bpf_probe_read_kernel(&v, 8, record + offset);
		return v;
	}
	}
}

/*
 * The verifier only allows context loads at constant offsets, so each slot
 * is its own load; the index is a constant from the configuration.
 */
/* One context load at a constant offset, which the compiler cannot merge with the others. */
#define CTX_LOAD(ctx, n)                                                             \
	({                                                                               \
		__u64 __v;                                                                   \
		asm volatile("%[v] = *(u64 *)(%[c] + " #n " * 8)" : [v] "=r"(__v) : [c] "r"(ctx)); \
		__v;                                                                         \
	})

static __always_inline __u64 ctx_arg(__u64 *ctx, __u32 n)
{
	switch (n) {
	case 0: return CTX_LOAD(ctx, 0);
	case 1: return CTX_LOAD(ctx, 1);
	case 2: return CTX_LOAD(ctx, 2);
	case 3: return CTX_LOAD(ctx, 3);
	case 4: return CTX_LOAD(ctx, 4);
	case 5: return CTX_LOAD(ctx, 5);
	case 6: return CTX_LOAD(ctx, 6);
	case 7: return CTX_LOAD(ctx, 7);
	case 8: return CTX_LOAD(ctx, 8);
	case 9: return CTX_LOAD(ctx, 9);
	case 10: return CTX_LOAD(ctx, 10);
	case 11: return CTX_LOAD(ctx, 11);
	}
	return 0;
}

/* What kind of program is running: where its context keeps things. */
enum prog_kind {
	PROG_REGS,   /* kprobe, uprobe: ctx is the probed function's registers */
	PROG_U64,    /* fentry, raw_tp: ctx is an array of u64 arguments */
	PROG_BTF,    /* tp_btf: the same array, but the verifier knows each argument's type */
	PROG_SYS_EXIT, /* syscalls/sys_exit_X alone: a syscall's args come from the task's saved registers */
	PROG_RECORD, /* tracepoint: ctx is the event record */
};

/*
 * 1 if the exiting task ended its thread group: the group's live count is 0
 * at sched_process_exit, which do_exit() fires after decrementing it, and no
 * other thread of the group claimed the end first.
 */
static __noinline __u64 group_dead(struct task_struct *task)
{
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	struct tally_pol_group_key key = {};
	__u8 one = 1;

	if (!sig || BPF_CORE_READ(sig, live.counter) != 0)
		return 0;
	key.signal = (__u64)sig;
	key.leader_start = BPF_CORE_READ(task, group_leader, start_time);
	return bpf_map_update_elem(&tally_pol_groups_ended, &key, &one, BPF_NOEXIST) == 0;
}

static __always_inline __u64 raw_arg(void *ctx, struct task_struct *task, const volatile struct tally_pol_arg *a, enum prog_kind kind)
{
	switch (a->source) {
	case TALLY_SRC_CONST:
		return (__u64)(__s64)a->konst;
	case TALLY_SRC_GROUP_DEAD:
		return group_dead((struct task_struct *)ctx_arg(ctx, a->index));
#ifdef TALLY_USDT
	case TALLY_SRC_USDT: {
		/* Only pol_usdt's hooks compile to this source: ctx is its pt_regs. */
		long v = 0;

		bpf_usdt_arg((struct pt_regs *)ctx, a->index, &v);
		return (__u64)v;
	}
#endif
	case TALLY_SRC_REGS:
		return reg_arg(ctx, a->index);
	case TALLY_SRC_CTX:
		return ctx_arg(ctx, a->index);
	case TALLY_SRC_RECORD:
		return record_arg(ctx, a->index, a->size, a->type == TALLY_T_INT);
	case TALLY_SRC_SYSCALL: {
		/* A syscall's own arguments sit in the user registers it saved;
		 * the syscall wrapper and sys_enter both get a pointer to them first. */
		if (kind == PROG_SYS_EXIT)
			return task_syscall_arg((struct pt_regs *)bpf_task_pt_regs(task), a->index);
		struct pt_regs *regs = kind == PROG_REGS ? (struct pt_regs *)PT_REGS_PARM1((struct pt_regs *)ctx)
							 : (struct pt_regs *)((__u64 *)ctx)[0];
		return syscall_arg(regs, a->index);
	}
	}
	return 0;
}

/* Integers narrower than 64 bits, as the hook's C type says (registers hold garbage above). */
static __always_inline __u64 narrow(__u64 v, const volatile struct tally_pol_arg *a)
{
	if (a->source == TALLY_SRC_RECORD)
		return v; /* read at its size already */
	switch (a->size) {
	case 1: return a->type == TALLY_T_INT ? (__u64)(__s64)(__s8)v : (__u8)v;
	case 2: return a->type == TALLY_T_INT ? (__u64)(__s64)(__s16)v : (__u16)v;
	case 4: return a->type == TALLY_T_INT ? (__u64)(__s64)(__s32)v : (__u32)v;
	}
	return v;
}

struct path_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	/* Where to stop, when not at the mount namespace's root: a task's root. */
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	struct dentry *names[16];
	__u32 n;
	/* Then the names, root first, into out from off. */
	__u32 off;
	__u8 *out;
	/* COMPAT: out is this CPU's event string `slot` (a map value cannot hold the pointer). */
	__u32 slot;
};

/*
 * One step up from w->dentry: to its parent, or across a mount to where it
 * is mounted. Returns 1 at the root.
 */
static __always_inline long collect_do(struct path_walk *w)
{
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;

	if (w->n >= 16)
		return 1;
	if (w->root_dentry && dentry == w->root_dentry && vfsmnt == w->root_mnt)
		return 1;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);

		if (parent == mnt)
			return 1;
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent;
		w->vfsmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(dentry, d_parent);

	if (up == dentry)
		return 1;
	w->names[w->n & 15] = dentry;
	w->n++;
	w->dentry = up;
	return 0;
}

/* "/name" of the index-th dentry from the root, into out. */
static __always_inline long emit_do(__u32 index, struct path_walk *w, __u8 *out)
{
	__u32 i = 15 - index;
	__u32 off = w->off;

	if (i >= w->n)
		return 0;
	if (off >= TALLY_POL_STR)
		return 1;
	out[off & (TALLY_POL_STR - 1)] = '/';
	off++;
	struct dentry *d = w->names[i & 15];
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(&out[off & (TALLY_POL_STR - 1)], TALLY_POL_STR, name);

	if (n > 1)
		off += n - 1;
	w->off = off;
	return 0;
}

#ifdef TALLY_COMPAT
/*
 * Kernels without bpf_loop() (bpf/compat.bpf.h): the walk lives in this
 * CPU's entry of a map, the string in this CPU's event under slot, and each
 * step is a global function the verifier checks once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_walk);
} tally_pol_walk SEC(".maps");

static __always_inline struct path_walk *walk_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tally_pol_walk, &zero);
}

__noinline int pol_collect_step(__u32 index)
{
	struct path_walk *w = walk_state();

	return w ? collect_do(w) : 1;
}

__noinline int pol_emit_step(__u32 index)
{
	struct path_walk *w = walk_state();
	struct tally_pol_event *ev = tally_cpu_entry(&tally_pol_scratch);

	if (!w || !ev)
		return 1;
	return emit_do(index, w, ev->str[w->slot & ARG_MASK].data);
}
#else
/*
 * bpf_loop() callbacks, verified once rather than once per unrolled step and
 * per caller, which for three callers passed the verifier's budget.
 */
static long collect_step(__u64 index, struct path_walk *w)
{
	return collect_do(w);
}

static long emit_step(__u64 index, struct path_walk *w)
{
	return emit_do(index, w, w->out);
}
#endif

/*
 * The path from the mount namespace's root, or from root_dentry in
 * root_mnt when given, "/a/b/c", into the event's string `slot` (cut at
 * TALLY_POL_STR).
 */
static __noinline __u32 path_string(struct dentry *dentry, struct vfsmount *vfsmnt, __u32 slot,
				    struct dentry *root_dentry, struct vfsmount *root_mnt)
{
	/* The event is this CPU's scratch entry, as the caller's is: found again, as BPF calls take five args. */
	struct tally_pol_event *ev = tally_cpu_entry(&tally_pol_scratch);

	if (!ev)
		return 0;
	__u8 *out = ev->str[slot & ARG_MASK].data;
#ifdef TALLY_COMPAT
	struct path_walk *w = walk_state();

	if (!w)
		return 0;
	__builtin_memset(w, 0, sizeof(*w));
#else
	struct path_walk walk = {};
	struct path_walk *w = &walk;

	w->out = out;
#endif
	__u32 off;

	w->dentry = dentry;
	w->vfsmnt = vfsmnt;
	w->mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w->root_dentry = root_dentry;
	w->root_mnt = root_mnt;
#ifdef TALLY_COMPAT
	tally_loop(20, pol_collect_step, 0);
	w->slot = slot;
	tally_loop(16, pol_emit_step, 0);
#else
	tally_loop(20, collect_step, w);
	tally_loop(16, emit_step, w);
#endif
	off = w->off;
	if (off == 0) {
		out[0] = '/';
		off = 1;
	}
	if (off > TALLY_POL_STR - 1)
		off = TALLY_POL_STR - 1;
	out[off & (2 * TALLY_POL_STR - 1)] = 0;
	return off;
}

/*
 * The current task's file for fd. The walk to the fd table is plain loads
 * from the task the verifier knows; the slot, at an index the verifier
 * cannot bound, is read through a cast to void, or else a helper.
 */
static __always_inline struct file *fd_file(struct task_struct *task, __u64 fd)
{
	struct file *f = NULL;
#ifdef TALLY_COMPAT
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), BPF_CORE_READ(fdt, fd) + fd);
	return f;
#else
	struct files_struct *files = task->files;
	struct fdtable *fdt;

	if (!files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	if (have_rdonly_cast) {
		struct file **fds = bpf_rdonly_cast(fdt->fd, 0);

		return fds[fd];
	}
	bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
	return f;
#endif
}

#define WANTS(want, field) ((want) & (1u << (field)))

/* Reads only what something uses: each field is a helper call. */
static __noinline void decode_sock(struct sock *sk, struct tally_pol_net *net, __u64 *owner, __u8 want)
{
	if (!sk)
		return;
	if (owner)
		*owner = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	if (!want)
		return;
	bool addrs = WANTS(want, TALLY_F_SADDR) || WANTS(want, TALLY_F_DADDR);

	if (addrs || WANTS(want, TALLY_F_FAMILY))
		net->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (WANTS(want, TALLY_F_PROTOCOL))
		net->protocol = BPF_CORE_READ(sk, sk_protocol);
	if (WANTS(want, TALLY_F_SPORT))
		net->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (WANTS(want, TALLY_F_DPORT))
		net->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!addrs)
		return;
	/* Into typed locals: BPF_CORE_READ_INTO reads sizeof(*dst) bytes, one for a byte array. */
	if (net->family == AF_INET) {
		__u32 saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(net->saddr, &saddr, 4);
		__builtin_memcpy(net->daddr, &daddr, 4);
	} else if (net->family == AF_INET6) {
		struct in6_addr saddr = BPF_CORE_READ(sk, __sk_common.skc_v6_rcv_saddr);
		struct in6_addr daddr = BPF_CORE_READ(sk, __sk_common.skc_v6_daddr);

		__builtin_memcpy(net->saddr, &saddr, 16);
		__builtin_memcpy(net->daddr, &daddr, 16);
	}
}

/*
 * decode_sock for tp_btf, where sk is a typed pointer: direct loads, which
 * the JIT turns into guarded moves, instead of a bpf_probe_read_kernel call
 * per field. Inlined: a subprogram's arguments would lose their type.
 */
static __always_inline void decode_sock_btf(struct sock *sk, struct tally_pol_net *net, __u64 *owner, __u8 want)
{
	if (!sk)
		return;
	if (owner)
		*owner = sk->sk_cgrp_data.cgroup->kn->id;
	if (!want)
		return;
	bool addrs = WANTS(want, TALLY_F_SADDR) || WANTS(want, TALLY_F_DADDR);

	if (addrs || WANTS(want, TALLY_F_FAMILY))
		net->family = sk->__sk_common.skc_family;
	if (WANTS(want, TALLY_F_PROTOCOL))
		net->protocol = sk->sk_protocol;
	if (WANTS(want, TALLY_F_SPORT))
		net->sport = sk->__sk_common.skc_num;
	if (WANTS(want, TALLY_F_DPORT))
		net->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (!addrs)
		return;
	if (net->family == AF_INET) {
		__u32 saddr = sk->__sk_common.skc_rcv_saddr;
		__u32 daddr = sk->__sk_common.skc_daddr;

		__builtin_memcpy(net->saddr, &saddr, 4);
		__builtin_memcpy(net->daddr, &daddr, 4);
	} else if (net->family == AF_INET6) {
		#pragma unroll
		for (int k = 0; k < 4; k++) {
			__u32 s6 = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32[k];
			__u32 d6 = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32[k];

			__builtin_memcpy(&net->saddr[4 * k], &s6, 4);
			__builtin_memcpy(&net->daddr[4 * k], &d6, 4);
		}
	}
}

static __always_inline void decode_sockaddr(void *ptr, bool user, struct tally_pol_net *net)
{
	struct sockaddr_in6 sa = {};
	long err = user ? bpf_probe_read_user(&sa, sizeof(sa), ptr) : bpf_probe_read_kernel(&sa, sizeof(sa), ptr);

	if (err)
		return;
	net->family = sa.sin6_family;
	net->dport = bpf_ntohs(sa.sin6_port);
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *in = (void *)&sa;

		__builtin_memcpy(net->daddr, &in->sin_addr, 4);
	} else if (sa.sin6_family == AF_INET6) {
		__builtin_memcpy(net->daddr, &sa.sin6_addr, 16);
	}
}

static __always_inline void decode_file(struct tally_pol_event *ev, __u32 i, struct file *f,
					 const volatile struct tally_pol_arg *a)
{
	if (!f)
		return;
	/* file_type holds the S_IFMT bits, and the file system's magic number above them. */
	if (a->want_file) {
		__u64 mode, magic = 0;

		if (have_rdonly_cast) {
			struct file *typed = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));

			mode = typed->f_inode->i_mode;
			if (a->want_file & TALLY_WANT_FS_MAGIC)
				magic = typed->f_inode->i_sb->s_magic;
		} else {
			mode = BPF_CORE_READ(f, f_inode, i_mode);
			if (a->want_file & TALLY_WANT_FS_MAGIC)
				magic = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
		}
		ev->file_type[i] = (mode & S_IFMT) | (__u64)(__u32)magic << 32;
	}
	if (a->want_str)
		ev->str_len[i] = path_string(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), i, NULL, NULL);
}

static __always_inline void decode_args(void *ctx, struct task_struct *task, struct tally_pol_event *ev, enum prog_kind kind)
{
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_ARGS; i++) {
		if (i >= pol.nargs)
			break;
		const volatile struct tally_pol_arg *a = &pol.args[i];
		__u64 v = raw_arg(ctx, task, a, kind);

		ev->p.val[i] = narrow(v, a);
		/* Only what this arg's type can fill: on a cold path each line written is a miss. */
		if (a->type == TALLY_T_FILE || a->type == TALLY_T_FD || a->type == TALLY_T_PATH || a->type == TALLY_T_BINPRM)
			ev->file_type[i] = 0;
		if (a->type == TALLY_T_STRING || a->type == TALLY_T_FILE || a->type == TALLY_T_FD || a->type == TALLY_T_PATH ||
		    a->type == TALLY_T_BINPRM || a->type == TALLY_T_NETDEV) {
			ev->str_len[i] = 0;
			ev->str[i].data[0] = 0;
		}
		switch (a->type) {
		case TALLY_T_STRING:
			if (a->want_str) {
				long n = a->user ? bpf_probe_read_user_str(ev->str[i].data, TALLY_POL_STR, (void *)v)
						 : bpf_probe_read_kernel_str(ev->str[i].data, TALLY_POL_STR, (void *)v);
				ev->str_len[i] = n > 0 ? n - 1 : 0;
			}
			break;
		case TALLY_T_FILE:
			decode_file(ev, i, (struct file *)v, a);
			break;
		case TALLY_T_BINPRM:
			/* Tetragon's linux_binprm: the program being executed, by its file. */
			decode_file(ev, i, v ? BPF_CORE_READ((struct linux_binprm *)v, file) : NULL, a);
			break;
		case TALLY_T_NETDEV:
			if (a->want_str && v) {
				long n = bpf_probe_read_kernel_str(ev->str[i].data, sizeof(((struct net_device *)0)->name),
								   (void *)v + bpf_core_field_offset(struct net_device, name));
				ev->str_len[i] = n > 0 ? n - 1 : 0;
			}
			break;
		case TALLY_T_FD:
			if (a->want_file || a->want_str)
				decode_file(ev, i, fd_file(task, ev->p.val[i]), a);
			break;
		case TALLY_T_PATH:
			if (a->want_str && v) {
				struct path *p = (struct path *)v;

				ev->str_len[i] = path_string(BPF_CORE_READ(p, dentry), BPF_CORE_READ(p, mnt), i, NULL, NULL);
			}
			break;
		case TALLY_T_SOCK:
		case TALLY_T_SKB:
		case TALLY_T_SOCKET: {
			struct sock *sk = (struct sock *)v;

			/* Nothing reads the addresses and ports unless want_net says so: no cold line to write. */
			if (a->want_net)
				__builtin_memset(&ev->net[i], 0, sizeof(ev->net[i]));
			if (kind == PROG_BTF) {
				if (a->type == TALLY_T_SKB)
					sk = v ? ((struct sk_buff *)v)->sk : NULL;
				if (a->type == TALLY_T_SOCKET)
					sk = v ? ((struct socket *)v)->sk : NULL;
				decode_sock_btf(sk, &ev->net[i], pol.owner_arg == i ? &ev->p.owner : NULL, a->want_net);
				break;
			}
			if (a->type == TALLY_T_SKB && v)
				sk = BPF_CORE_READ((struct sk_buff *)v, sk);
			if (a->type == TALLY_T_SOCKET && v)
				sk = BPF_CORE_READ((struct socket *)v, sk);
			decode_sock(sk, &ev->net[i], pol.owner_arg == i ? &ev->p.owner : NULL, a->want_net);
			break;
		}
		case TALLY_T_SOCKADDR:
			if (!a->want_net)
				break;
			__builtin_memset(&ev->net[i], 0, sizeof(ev->net[i]));
			if (v)
				decode_sockaddr((void *)v, a->user, &ev->net[i]);
			break;
		}
	}
}

/* ---- selectors ----------------------------------------------------------- */

static __always_inline __u64 int_field(struct tally_pol_event *ev, __u32 arg, __u32 field)
{
	struct tally_pol_net *net = &ev->net[arg & ARG_MASK];

	switch (field) {
	case TALLY_F_SPORT: return net->sport;
	case TALLY_F_DPORT: return net->dport;
	case TALLY_F_PROTOCOL: return net->protocol;
	case TALLY_F_FAMILY: return net->family;
	case TALLY_F_FILE_TYPE: return (__u32)ev->file_type[arg & ARG_MASK];
	case TALLY_F_FS_MAGIC: return ev->file_type[arg & ARG_MASK] >> 32;
	case TALLY_F_EXIT_STATUS: {
		/* exit_code is the wait(2) status: low 7 bits the signal, next 8 the exit status. */
		/* A local: inside BPF_CORE_READ, ev->p.val would be relocated too. */
		struct task_struct *task = (struct task_struct *)ev->p.val[arg & ARG_MASK];
		int code;

		if (have_rdonly_cast)
			code = ((struct task_struct *)bpf_rdonly_cast(task, bpf_core_type_id_kernel(struct task_struct)))->exit_code;
		else
			code = BPF_CORE_READ(task, exit_code);

		if (code & 0x7f)
			return 2;
		return (code >> 8) & 0xff ? 1 : 0;
	}
	case TALLY_F_SADDR: {
		__u32 a4;
		__builtin_memcpy(&a4, net->saddr, 4);
		return a4;
	}
	case TALLY_F_DADDR: {
		__u32 a4;
		__builtin_memcpy(&a4, net->daddr, 4);
		return a4;
	}
	}
	return ev->p.val[arg & ARG_MASK];
}

/*
 * The arg's string, last byte first, into ev->reversed: a Postfix is a
 * prefix of the reversed string, so the same LPM trie answers it. A real
 * loop, not unrolled: it runs once per Postfix filter.
 */
static __always_inline void reverse_string(struct tally_pol_event *ev, __u32 arg, __u32 len)
{
	#pragma clang loop unroll(disable)
	for (__u32 j = 0; j < TALLY_POL_STR; j++) {
		if (j >= len)
			break;
		ev->reversed.data[j] = ev->str[arg].data[(len - 1 - j) & (2 * TALLY_POL_STR - 1)];
	}
}

/*
 * Looks the arg's string or address up in the LPM trie under slot; its
 * value, or -1. A subprogram: inlined for every filter and label that can
 * use it, it would push the programs past the reach of a BPF jump.
 */
static __noinline long lpm_find(struct tally_pol_event *ev, __u32 arg, __u32 field, __u32 slot)
{
	__u32 *hit;

	arg &= ARG_MASK;
	if (field == TALLY_F_STRING_END) {
		__u32 len = ev->str_len[arg] & (TALLY_POL_STR - 1);

		reverse_string(ev, arg, len);
		ev->reversed.slot = bpf_htonl(slot);
		ev->reversed.prefixlen = 32 + 8 * len;
		hit = bpf_map_lookup_elem(&tally_pol_lpm, &ev->reversed);
		return hit ? (long)*hit : -1;
	}
	if (field == TALLY_F_STRING) {
		ev->str[arg].slot = bpf_htonl(slot);
		ev->str[arg].prefixlen = 32 + 8 * ((ev->str_len[arg] & (TALLY_POL_STR - 1)) + 1);
		hit = bpf_map_lookup_elem(&tally_pol_lpm, &ev->str[arg]);
		return hit ? (long)*hit : -1; /* not u32: -1 would become 4294967295 */
	}
	struct tally_pol_lpm_key key = {};
	struct tally_pol_net *net = &ev->net[arg];
	bool v6 = net->family == AF_INET6;

	if (net->family != AF_INET && !v6)
		return -1;
	/* IPv4 and IPv6 networks of one filter live under slot*2 and slot*2+1. */
	key.slot = bpf_htonl(slot * 2 + v6);
	key.prefixlen = 32 + (v6 ? 128 : 32);
	__builtin_memcpy(key.data, field == TALLY_F_SADDR ? net->saddr : net->daddr, 16);
	hit = bpf_map_lookup_elem(&tally_pol_lpm, &key);
	return hit ? (long)*hit : -1; /* not u32: -1 would become 4294967295 */
}

static __always_inline bool filter_matches(struct tally_pol_event *ev, const volatile struct tally_pol_filter *f)
{
	__u32 arg = f->arg & ARG_MASK;

	if (f->op == TALLY_OP_LPM || f->op == TALLY_OP_NOT_LPM) {
		bool found = lpm_find(ev, arg, f->field, f->slot) >= 0;
		return f->op == TALLY_OP_LPM ? found : !found;
	}
	__u64 v = int_field(ev, arg, f->field);
	bool is_signed = pol.args[arg].type == TALLY_T_INT && f->field == TALLY_F_VALUE;

	switch (f->op) {
	case TALLY_OP_GT:
		return is_signed ? (__s64)v > (__s64)f->values[0] : v > f->values[0];
	case TALLY_OP_LT:
		return is_signed ? (__s64)v < (__s64)f->values[0] : v < f->values[0];
	}
	bool any = false;

	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_VALUES; i++) {
		if (i >= f->nvalues)
			break;
		__u64 want = f->values[i];

		switch (f->op) {
		case TALLY_OP_EQ:
		case TALLY_OP_NEQ:
			any |= v == want;
			break;
		case TALLY_OP_MASK:
		case TALLY_OP_NOT_MASK:
			any |= (v & want) != 0;
			break;
		case TALLY_OP_RANGE:
		case TALLY_OP_NOT_RANGE:
			any |= v >= (want & 0xffffffff) && v <= (want >> 32);
			break;
		}
	}
	return (f->op == TALLY_OP_NEQ || f->op == TALLY_OP_NOT_RANGE || f->op == TALLY_OP_NOT_MASK) ? !any : any;
}

/*
 * Whether the current task's executable, by its path as the task sees it
 * (from its root, so a container's /usr/bin/curl is that), matches the
 * Prefix or Postfix filter b: the LPM trie answers, once per binary.
 */
static __noinline bool binary_path_matches(struct tally_pol_event *ev, __u64 binary, __u32 slot, __u8 field)
{
	struct tally_pol_binary_key key = { .slot = slot, .binary_id = binary };
	__u8 *known = bpf_map_lookup_elem(&tally_pol_binary_paths, &key);
	struct task_struct *task;
	struct file *exe;
	__u8 found;

	if (known)
		return *known;
	task = tally_current_task();
	exe = BPF_CORE_READ(task, mm, exe_file);
	ev->str_len[EXE_SLOT] = 0;
	if (exe)
		ev->str_len[EXE_SLOT] = path_string(BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt),
						    EXE_SLOT, BPF_CORE_READ(task, fs, root.dentry),
						    BPF_CORE_READ(task, fs, root.mnt));
	found = exe && lpm_find(ev, EXE_SLOT, field, slot) >= 0;
	bpf_map_update_elem(&tally_pol_binary_paths, &key, &found, BPF_ANY);
	return found;
}

static __always_inline bool binaries_match(struct tally_pol_event *ev, const volatile struct tally_pol_binaries *b)
{
	bool found;

	if (b->field) {
		found = binary_path_matches(ev, ev->p.binary, b->slot, b->field);
	} else {
		struct tally_pol_binary_key key = { .slot = b->slot, .binary_id = ev->p.binary };

		found = bpf_map_lookup_elem(&tally_pol_binaries, &key) != NULL;
	}
	return b->in ? found : !found;
}

static __always_inline bool selector_matches(struct tally_pol_event *ev, const volatile struct tally_pol_selector *s)
{
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_FILTERS; i++) {
		if (i >= s->nfilters)
			break;
		if (!filter_matches(ev, &s->filters[i]))
			return false;
	}
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_BINARIES; i++) {
		if (i >= s->nbinaries)
			break;
		if (!binaries_match(ev, &s->binaries[i]))
			return false;
	}
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_TASKS; i++) {
		if (i >= s->ntasks)
			break;
		if (!task_filter_matches(&s->tasks[i]))
			return false;
	}
	return true;
}

/*
 * A subprogram: unrolled inline for every selector, the compares would push
 * the program past the reach of a BPF jump.
 */
static __noinline bool namespace_admits(__u64 namespace_id, __u32 sel)
{
	if (sel >= TALLY_POL_SELECTORS)
		return false;
	const volatile struct tally_pol_namespaces *n = &pol.selectors[sel].namespaces;

	return value_set_admits(n->values, n->nvalues, TALLY_POL_VALUES, n->op, namespace_id);
}

/*
 * Whether some selector matches. With match_namespaces, ns_known says
 * whether user space has resolved the owner's cgroup, and so its namespace.
 * Before that (a pod's first events), a selector with matchNamespaces can neither
 * match nor fail: the event is counted pending, with the mask of such
 * selectors in ev->p.ns_pending, and user space decides once it knows the
 * namespace. One selector that matches for sure makes the event count as usual.
 */
static __always_inline bool selected(struct tally_pol_event *ev, bool ns_known, __u64 namespace_id)
{
	__u32 waiting = 0;

	if (pol.nselectors == 0)
		return true;
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_SELECTORS; i++) {
		if (i >= pol.nselectors)
			break;
		const volatile struct tally_pol_selector *s = &pol.selectors[i];
		bool by_ns = pol.match_namespaces && s->namespaces.op;

		if (!selector_matches(ev, s))
			continue;
		if (!by_ns)
			return true;
		if (!ns_known)
			waiting |= 1u << i;
		else if (namespace_admits(namespace_id, i))
			return true;
	}
	ev->p.ns_pending = waiting;
	return waiting != 0;
}

/* selected() and label_value() as subprograms, for packet hooks: see on_packet(). */
static __noinline bool packet_selected(struct tally_pol_event *ev, bool ns_known, __u64 namespace_id)
{
	return selected(ev, ns_known, namespace_id);
}

/* ---- labels and counting -------------------------------------------------- */

/* A capped label's value: the first `cap` distinct values keep theirs. */
static __always_inline __u64 capped(__u64 v, const volatile struct tally_pol_label *l)
{
	struct tally_pol_seen_key key = { .slot = l->slot, .value = v };
	__u32 slot = l->slot;
	__u64 *count;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&tally_pol_seen, &key))
		return v;
	count = bpf_map_lookup_elem(&tally_pol_seen_count, &slot);
	if (!count)
		return TALLY_LABEL_OVERFLOW;
#ifdef TALLY_COMPAT
	/*
	 * No fetching atomics before 5.12: add, then look. Of two events racing
	 * for the last place both may back off, so a value can start out in
	 * overflow; the count never passes the cap.
	 */
	if (*(volatile __u64 *)count >= l->cap)
		return TALLY_LABEL_OVERFLOW;
	__sync_fetch_and_add(count, 1);
	if (*(volatile __u64 *)count > l->cap) {
		__sync_fetch_and_add(count, -1);
		return TALLY_LABEL_OVERFLOW;
	}
#else
	if (__sync_fetch_and_add(count, 1) >= l->cap) {
		__sync_fetch_and_add(count, -1);
		return TALLY_LABEL_OVERFLOW;
	}
#endif
	if (bpf_map_update_elem(&tally_pol_seen, &key, &one, BPF_NOEXIST) && !bpf_map_lookup_elem(&tally_pol_seen, &key))
		return TALLY_LABEL_OVERFLOW;
	return v;
}

static __always_inline __u64 label_value(struct tally_pol_event *ev, const volatile struct tally_pol_label *l)
{
	if (l->kind == TALLY_LABEL_CONST)
		return l->slot;

	/* Bounded by user space's peer table, not by values seen: no tally_pol_seen lookup. */
	if (l->kind == TALLY_LABEL_PEER)
		return tally_peer_of(ev->net[l->arg & ARG_MASK].family, ev->net[l->arg & ARG_MASK].daddr);

	if (l->kind == TALLY_LABEL_PREFIX) {
		long index = lpm_find(ev, l->arg, TALLY_F_STRING, l->slot);
		return index >= 0 ? (__u64)index + 1 : TALLY_LABEL_OVERFLOW;
	}
	__u64 v = int_field(ev, l->arg, l->field);

	return l->kind == TALLY_LABEL_BOUNDED ? v : capped(v, l);
}

/* See packet_selected(). */
static __noinline __u64 packet_label_value(struct tally_pol_event *ev, const volatile struct tally_pol_label *l)
{
	return label_value(ev, l);
}

static __always_inline void compute_labels(struct tally_pol_event *ev)
{
	#pragma unroll
	for (__u32 m = 0; m < TALLY_POL_METRICS; m++) {
		if (m >= pol.nmetrics)
			break;
		#pragma unroll
		for (__u32 j = 0; j < TALLY_POL_LABELS; j++) {
			if (j >= pol.metrics[m].nlabels)
				break;
			ev->p.labels[m][j] = label_value(ev, &pol.metrics[m].labels[j]);
		}
	}
}

/* compute_labels() for a packet hook, each label in a subprogram (see on_packet()). */
static __always_inline void compute_packet_labels(struct tally_pol_event *ev)
{
	#pragma unroll
	for (__u32 m = 0; m < TALLY_POL_METRICS; m++) {
		if (m >= pol.nmetrics)
			break;
		#pragma unroll
		for (__u32 j = 0; j < TALLY_POL_LABELS; j++) {
			if (j >= pol.metrics[m].nlabels)
				break;
			ev->p.labels[m][j] = packet_label_value(ev, &pol.metrics[m].labels[j]);
		}
	}
}

/* ceil(log2(v)) for v >= 1, so bucket i holds (2^(i-1), 2^i]; zeros apart. */
static __always_inline __u16 log2_bucket(__u64 v)
{
	__u64 x;
	__u16 r = 0;

	if (v == 0)
		return TALLY_BUCKET_ZERO;
	if (v == 1)
		return 0;
	x = v - 1;
	if (x >> 32) { x >>= 32; r += 32; }
	if (x >> 16) { x >>= 16; r += 16; }
	if (x >> 8) { x >>= 8; r += 8; }
	if (x >> 4) { x >>= 4; r += 4; }
	if (x >> 2) { x >>= 2; r += 2; }
	if (x >> 1) { r += 1; }
	return r + 1;
}

/*
 * Nanoseconds to units of 2^-30 s (TALLY_LATENCY_SHIFT), floor. Latency buckets then have bounds
 * that are powers of two in seconds, as native and exponential histograms
 * need; in nanoseconds they would be 2^i * 1e-9 s and fit neither. Split at
 * the second so the shift cannot overflow.
 */
static __always_inline __u64 ns_to_binary_seconds(__u64 ns)
{
	__u64 s = ns / 1000000000ull;

	return (s << TALLY_LATENCY_SHIFT) + (((ns - s * 1000000000ull) << TALLY_LATENCY_SHIFT) / 1000000000ull);
}

/*
 * Add the event in p to each metric. preemptible: fentry and fexit programs
 * can be preempted mid-update by another task on the same CPU (they run with
 * only migration disabled), so they add atomically; the other attach types
 * cannot be.
 */
static __always_inline void count(struct tally_label_set_cache *c, struct tally_pol_pending *p, __s64 ret, __u64 now,
				  bool preemptible)
{
	struct tally_counter_key key = { .binary_id = p->binary };
	bool pending = pol.match_namespaces && p->ns_pending;

	if (pending) {
		/* Raw cgroup and the selectors still in question: user space decides. */
		key.cgroup_id = p->owner;
		key.flags = TALLY_KEY_NS_PENDING | p->ns_pending << TALLY_KEY_PENDING_SHIFT;
	} else {
		tally_key_owner(c, &key, p->owner);
	}
	#pragma unroll
	for (__u32 m = 0; m < TALLY_POL_METRICS; m++) {
		if (m >= pol.nmetrics)
			break;
		const volatile struct tally_pol_metric *mt = &pol.metrics[m];
		__u64 v = 1;

		switch (mt->value) {
		case TALLY_VAL_ARG:
			v = p->val[mt->arg & ARG_MASK];
			if (pol.args[mt->arg & ARG_MASK].type == TALLY_T_INT && (__s64)v < 0)
				continue;
			break;
		case TALLY_VAL_RETURN:
			if (pol.ret_signed && ret < 0)
				continue; /* an error moved nothing */
			v = ret;
			break;
		case TALLY_VAL_LATENCY:
			v = ns_to_binary_seconds(now - p->start_ns);
			break;
		}
		key.metric = pending ? mt->pending_id : mt->id;
		key.labels[0] = mt->nlabels > 0 ? p->labels[m][0] : 0;
		key.labels[1] = mt->nlabels > 1 ? p->labels[m][1] : 0;
		if (!mt->histogram) {
			key.bucket = 0;
			tally_add(&key, v, preemptible);
			continue;
		}
		key.bucket = log2_bucket(v);
		tally_add(&key, 1, preemptible);
		key.bucket = TALLY_BUCKET_SUM;
		tally_add(&key, v, preemptible);
	}
}

/* ---- entry and return ----------------------------------------------------- */

/*
 * count() as a subprogram: with selectors and labels inlined around it, a
 * program that does everything at once would pass the 32k-instruction
 * reach of a BPF jump.
 */
static __noinline void count_at_exit(struct tally_label_set_cache *c, struct tally_pol_pending *p, __s64 ret)
{
	count(c, p, ret, 0, false);
}

/* Whether decoding an arg reads the current task: an fd's file, or a syscall's saved registers. */
static __always_inline bool args_need_task(void)
{
	#pragma unroll
	for (__u32 i = 0; i < TALLY_POL_ARGS; i++) {
		if (i >= pol.nargs)
			break;
		if (pol.args[i].type == TALLY_T_FD || pol.args[i].source == TALLY_SRC_SYSCALL)
			return true;
	}
	return false;
}

/*
 * An event at a hook's entry, or for PROG_SYS_EXIT at a syscall's return
 * with its return value: then the whole event is handled at once, with no
 * state kept between entry and return.
 */
static __always_inline int on_event(void *ctx, enum prog_kind kind, __s64 ret, bool preemptible)
{
	struct tally_pol_event *ev = tally_cpu_entry(&tally_pol_scratch);
	struct tally_label_set_cache *c = tally_cpu_entry(&tally_label_set_cache);

	if (!ev)
		return 0;
	/* The binary labels the event only if keyed by binary and the task owns it. */
	bool labels_binary = key_by_binary && (pol.owner_arg == TALLY_POL_NONE || pol.task_context);

	/*
	 * The current task, unless nothing reads it before the owner is known:
	 * an event a socket owns (a retransmit, from a timer or softirq) needs
	 * it only if the socket has no cgroup, and the helper call returns
	 * through the return thunk on a cold hook.
	 */
	bool early_task = !(kind == PROG_BTF && pol.owner_arg != TALLY_POL_NONE && !labels_binary && !pol.match_binaries && !args_need_task());
	struct task_struct *task = early_task ? tally_current_task() : NULL;

	/*
	 * The owner's cgroup id first, even though the key needs it last: its
	 * chain of loads (task, css_set, cgroup, kernfs node) then runs while
	 * the binary's (mm, file, inode, superblock) does, not after it. On a
	 * cold hook each of those loads is a cache miss.
	 */
	bool by_cgroup = key_by_cgroup || pol.match_namespaces;
	struct tally_cgroup_mapping ns = {}; /* match_namespaces: what user space resolved the owner to, if it has */

	ev->p.owner = by_cgroup && pol.owner_arg == TALLY_POL_NONE ? tally_task_cgroup_id(task) : 0;
	ev->p.binary = labels_binary || pol.match_binaries ? tally_binary_of(task, c) : 0;
	decode_args(ctx, task, ev, kind);
	/* No socket to own the event (or none with a cgroup): the current task does. */
	if (by_cgroup && !ev->p.owner)
		ev->p.owner = tally_task_cgroup_id(early_task ? task : tally_current_task());
	if (pol.match_namespaces)
		ns = tally_mapping_of(c, ev->p.owner);
	ev->p.ns_pending = 0; /* selected() returns early without writing it */
	if (!selected(ev, ns.label_set != 0, ns.namespace_id))
		return 0;
	/* An event owned by a socket may fire in softirq or a timer: the task on the CPU is not its binary. */
	if (!labels_binary)
		ev->p.binary = 0;
	compute_labels(ev);
	if (kind == PROG_SYS_EXIT) {
		count_at_exit(c, &ev->p, ret);
		return 0;
	}
	if (pol.has_return) {
		__u64 task = bpf_get_current_pid_tgid();

		ev->p.start_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&tally_pol_inflight, &task, &ev->p, BPF_ANY);
		return 0;
	}
	count(c, &ev->p, 0, 0, preemptible);
	return 0;
}

/*
 * A packet of a packet hook (cgroup_skb), apart from on_event() so that the
 * other programs' code stays as it was: its socket's cgroup owns it, and no
 * task is at hand (ingress runs in softirq). The label-set cache is looked
 * up where it is used and selectors and labels run in subprograms, which
 * keeps this frame at 8 bytes: 5.10 counts a frame and the subprogram it
 * calls together against 512 bytes, and inlined with everything else the
 * compat build's frame was 488-496 ("combined stack size of 2 calls is 544").
 */
static __always_inline int on_packet(struct __sk_buff *skb, bool ingress)
{
	struct tally_pol_event *ev = tally_cpu_entry(&tally_pol_scratch);
	struct tally_cgroup_mapping ns = {};

	if (!ev)
		return 0;
	ev->p.owner = bpf_skb_cgroup_id(skb);
	ev->p.binary = 0;
	ev->p.val[0] = 0;
	ev->p.val[1] = tally_decode_packet(skb, &ev->net[0], ingress);
	if (pol.match_namespaces)
		ns = tally_mapping_of(tally_cpu_entry(&tally_label_set_cache), ev->p.owner);
	ev->p.ns_pending = 0;
	if (!packet_selected(ev, ns.label_set != 0, ns.namespace_id))
		return 0;
	compute_packet_labels(ev);
	count_at_exit(tally_cpu_entry(&tally_label_set_cache), &ev->p, 0);
	return 0;
}

static __always_inline int on_entry(void *ctx, enum prog_kind kind, bool preemptible)
{
	return on_event(ctx, kind, 0, preemptible);
}

/* The return value at its declared width (pol.ret_size), sign- or zero-extended. */
static __always_inline __s64 return_value(__u64 raw)
{
	switch (pol.ret_size) {
	case 1:
		return pol.ret_signed ? (__s64)(__s8)raw : (__s64)(__u8)raw;
	case 2:
		return pol.ret_signed ? (__s64)(__s16)raw : (__s64)(__u16)raw;
	case 4:
		return pol.ret_signed ? (__s64)(__s32)raw : (__s64)(__u32)raw;
	}
	return (__s64)raw;
}

static __always_inline int on_return(__u64 raw, bool preemptible)
{
	__s64 ret = return_value(raw);
	__u64 task = bpf_get_current_pid_tgid();
	struct tally_pol_pending *p = bpf_map_lookup_elem(&tally_pol_inflight, &task);
	__u64 now = bpf_ktime_get_ns();

	if (!p)
		return 0;
	count(tally_cpu_entry(&tally_label_set_cache), p, ret, now, preemptible);
	bpf_map_delete_elem(&tally_pol_inflight, &task);
	return 0;
}

SEC("kprobe")
int pol_kprobe(struct pt_regs *ctx)
{
	return on_entry(ctx, PROG_REGS, false);
}

SEC("kretprobe")
int pol_kretprobe(struct pt_regs *ctx)
{
	return on_return(PT_REGS_RC(ctx), false);
}

SEC("uprobe")
int pol_uprobe(struct pt_regs *ctx)
{
	return on_entry(ctx, PROG_REGS, false);
}

SEC("uretprobe")
int pol_uretprobe(struct pt_regs *ctx)
{
	return on_return(PT_REGS_RC(ctx), false);
}

#ifdef TALLY_USDT
/* A USDT probe: a uprobe at each of the probe's sites, whose arguments libbpf
 * locates from the binary's .note.stapsdt and hands to bpf_usdt_arg(). Only
 * in build/bpf/policy-usdt.bpf.o (Makefile). */
SEC("usdt")
int pol_usdt(struct pt_regs *ctx)
{
	return on_entry(ctx, PROG_REGS, false);
}
#endif

/* fentry/fexit: the attach target is set by user space before load. */
SEC("fentry")
int pol_fentry(__u64 *ctx)
{
	return on_entry(ctx, PROG_U64, true);
}

/* fexit's context holds the arguments, then the return value. */
SEC("fexit")
int pol_fexit(__u64 *ctx)
{
	__u64 ret = 0;

#ifdef TALLY_COMPAT
	/*
	 * The verifier takes a context load only from the unmodified context
	 * pointer, and clang turns a switch over constant slots back into one
	 * load through a computed pointer: a probe read takes any address.
	 */
	bpf_probe_read_kernel(&ret, sizeof(ret), &ctx[pol.fexit_ret_slot & 7]);
#else
	bpf_get_func_ret(ctx, &ret);
#endif
	return on_return(ret, true);
}

SEC("tracepoint")
int pol_tracepoint(void *ctx)
{
	on_entry(ctx, PROG_RECORD, false);
	tally_chain_next_of(ctx, tally_chain_slot);
	return 0;
}

SEC("raw_tp")
int pol_raw_tp(__u64 *ctx)
{
	return on_entry(ctx, PROG_U64, false);
}

/* A raw tracepoint with typed arguments; user space sets the tracepoint. */
SEC("tp_btf")
int pol_tp_btf(__u64 *ctx)
{
	return on_entry(ctx, PROG_BTF, false);
}

/*
 * Syscalls where the kernel has neither fentry nor kprobes: the raw syscall
 * tracepoints, which every syscall of every task passes, so the first thing
 * is to leave when it is not ours.
 */
SEC("raw_tp/sys_enter")
int pol_sys_enter(__u64 *ctx)
{
	if (ctx[1] != pol.syscall_nr)
		return 0;
	return on_entry(ctx, PROG_U64, false);
}

/* sys_exit_NAME: one syscall's return, its value at offset 16 of the record. */
SEC("tracepoint")
int pol_sys_exit_tp(void *ctx)
{
	long ret = 0;

	bpf_probe_read_kernel(&ret, sizeof(ret), ctx + 16);
	on_return(ret, false);
	tally_chain_next_of(ctx, tally_chain_slot_ret);
	return 0;
}

/*
 * A syscall hook that wants the return value but not the latency: its
 * sys_exit_X tracepoint alone reads the args (still in the registers the
 * task saved at entry), selects and counts. One tracepoint and no map of
 * calls in flight, against two tracepoints and three map operations.
 */
SEC("tracepoint")
int pol_sys_exit_only(void *ctx)
{
	/* struct trace_event_raw_sys_exit: common fields, the syscall nr, then ret at 16. */
	long ret = *(long *)(ctx + 16);

	on_event(ctx, PROG_SYS_EXIT, ret, false);
	tally_chain_next_of(ctx, tally_chain_slot);
	return 0;
}

SEC("raw_tp/sys_exit")
int pol_sys_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];

#if defined(__TARGET_ARCH_x86)
	if (BPF_CORE_READ(regs, orig_ax) != pol.syscall_nr)
		return 0;
#elif defined(__TARGET_ARCH_arm64)
	if (BPF_CORE_READ((struct user_pt_regs *)regs, regs[8]) != pol.syscall_nr)
		return 0;
#endif
	return on_return((__s64)ctx[1], false);
}

/*
 * Packets (spec.packets): attached to the cgroup v2 root, so every socket's
 * packets pass, with BPF_F_ALLOW_MULTI (a link), beside whatever else the
 * node attaches there. A cgroup_skb program's return is a verdict: 1 lets
 * the packet through, always; a counter never drops.
 */
SEC("cgroup_skb/egress")
int pol_skb_egress(struct __sk_buff *skb)
{
	on_packet(skb, false);
	return 1;
}

SEC("cgroup_skb/ingress")
int pol_skb_ingress(struct __sk_buff *skb)
{
	on_packet(skb, true);
	return 1;
}
