/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The executable of the current task, as a 64-bit id, at almost no cost per
 * event.
 *
 * The id is a mix of the executable's identity, (superblock dev, inode
 * number), read with plain loads from current->mm->exe_file: no helper call,
 * no map lookup. User space learns id -> path once: the first time an event
 * labelled with a new id is counted, before it is, the kernel walks dentries
 * and mounts from the file up to the task's root, so
 * a containerised process reads as /usr/sbin/nginx as it sees itself, and
 * announces the path on a ring buffer. A small direct-mapped cache (an array,
 * whose lookups the verifier inlines) remembers recent announcements, and
 * each CPU remembers the last one it saw, so the hot path skips even that
 * check. User space clears a slot (and the id in tally_known_binaries, and
 * every CPU's memory) when it finds an id it never heard of, and the kernel
 * announces it again.
 */
#ifndef TALLY_BINARY_BPF_H
#define TALLY_BINARY_BPF_H

#include "compat.bpf.h"

#include "tally_types.h"
#include "counters.bpf.h"

/* Load-time switch: false when `binary` is not in the label filter. */
const volatile bool key_by_binary = true;

/* ids already announced; LRU so it stays bounded. A re-announce is harmless. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} tally_known_binaries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tally_binary_events SEC(".maps");

/*
 * Direct-mapped cache of recently announced ids, shared by all CPUs. Racy by
 * design: a lost write only costs one more look in tally_known_binaries.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TALLY_ANNOUNCED_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tally_announced SEC(".maps");

static __always_inline __u64 *tally_announced_slot(__u64 id)
{
	__u32 slot = id & (TALLY_ANNOUNCED_SLOTS - 1);

	return bpf_map_lookup_elem(&tally_announced, &slot);
}

/* The path is too large for the 512-byte BPF stack: assemble it here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally_binary_event);
} tally_path_scratch SEC(".maps");

/*
 * State of one dentry walk. bpf_loop() verifies the step once instead of
 * unrolling TALLY_PATH_DEPTH iterations, which the verifier cannot afford.
 */
struct tally_walk {
	struct tally_binary_event *ev;
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 off;
	__u32 done;
};

static __always_inline long tally_walk_do(struct tally_walk *w, struct tally_binary_event *ev)
{
	/* Locals, not w->x, inside BPF_CORE_READ: it would relocate w's fields too. */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;

	if (dentry == w->root_dentry && vfsmnt == w->root_mnt)
		goto done;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		/* Top of this mount: continue from where it is mounted. */
		struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);

		if (parent == mnt)
			goto done; /* the namespace's root mount */
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = parent;
		w->vfsmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	if (w->off > TALLY_PATH_MAX - 1) {
		ev->truncated = 1;
		goto done;
	}
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(&ev->path[w->off & (TALLY_PATH_MAX - 1)], TALLY_NAME_MAX, name);

	if (n <= 0)
		goto done;
	w->off += n;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry)
		goto done;
	w->dentry = parent;
	return 0;
done:
	w->done = 1;
	return 1;
}

#ifdef TALLY_COMPAT
/*
 * Kernels without bpf_loop(): the walk's state lives in this CPU's entry of
 * a map, and each step is a global function, which the verifier checks once
 * on its own with nothing known of the state. Walked as a loop of inlined
 * steps over a stack copy instead, every step would be verified again for
 * each path through the ones before it, past the verifier's budget.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally_walk);
} tally_walk_state SEC(".maps");

__noinline int tally_walk_step_global(__u32 index)
{
	__u32 zero = 0;
	struct tally_walk *w = bpf_map_lookup_elem(&tally_walk_state, &zero);
	struct tally_binary_event *ev = bpf_map_lookup_elem(&tally_path_scratch, &zero);

	if (!w || !ev)
		return 1;
	return tally_walk_do(w, ev);
}
#else
/* A bpf_loop() callback: verified once instead of unrolling TALLY_PATH_DEPTH iterations. */
static long tally_walk_step(__u64 index, struct tally_walk *w)
{
	return tally_walk_do(w, w->ev);
}
#endif

/* Write the exe path of task into ev (components leaf first). */
static __always_inline int tally_walk_exe_path(struct task_struct *task, struct tally_binary_event *ev)
{
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
#ifdef TALLY_COMPAT
	__u32 zero = 0;
	struct tally_walk *walk = bpf_map_lookup_elem(&tally_walk_state, &zero);

	if (!walk)
		return -1;
	__builtin_memset(walk, 0, sizeof(*walk));
#else
	struct tally_walk w = {};
	struct tally_walk *walk = &w;

	walk->ev = ev;
#endif

	ev->truncated = 0;
	ev->path_len = 0;
	if (!exe)
		return -1;
	walk->dentry = BPF_CORE_READ(exe, f_path.dentry);
	walk->vfsmnt = BPF_CORE_READ(exe, f_path.mnt);
	walk->mnt = (void *)walk->vfsmnt - bpf_core_field_offset(struct mount, mnt);
	walk->root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	walk->root_mnt = BPF_CORE_READ(task, fs, root.mnt);
#ifdef TALLY_COMPAT
	/* The global step finds the event itself: it is this CPU's tally_path_scratch, as ev is. */
	tally_loop(TALLY_PATH_DEPTH, tally_walk_step_global, 0);
#else
	bpf_loop(TALLY_PATH_DEPTH, tally_walk_step, walk, 0);
#endif
	if (!walk->done)
		ev->truncated = 1;
	if (ev->truncated)
		tally_stat_inc(TALLY_STAT_PATH_TRUNCATED);
	ev->path_len = walk->off;
	return 0;
}

/*
 * Executables of exiting threads, by thread id. Older kernels (6.1 among
 * them) drop the task's mm in do_exit() (exit_mm) before they fire
 * sched_process_exit, so an exit hook cannot read the executable from the
 * task; core.bpf.c's exiting_* programs,
 * on exit_mm_release() just before, remember it here. LRU: an entry is read
 * within the same do_exit(), and a thread id reused later overwrites it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tally_exiting_binaries SEC(".maps");

/* The id of an executable file: (superblock dev, inode number), mixed. */
static __always_inline __u64 tally_file_id(__u64 ino, __u64 dev)
{
	/* The top bit keeps real ids clear of 0 ("not keyed") and TALLY_BINARY_NONE. */
	return tally_mix(ino ^ tally_mix(dev)) | (1ull << 63);
}

/* An exiting task without its mm: the executable remembered at exit_mm_release(), if any. */
static __always_inline __u64 tally_exiting_id(struct task_struct *task)
{
	__u32 tid;
	__u64 *id;

	if (!(BPF_CORE_READ(task, flags) & 0x4 /* PF_EXITING */))
		return TALLY_BINARY_NONE; /* a kernel thread */
	tid = BPF_CORE_READ(task, pid);
	id = bpf_map_lookup_elem(&tally_exiting_binaries, &tid);
	return id ? *id : TALLY_BINARY_NONE;
}

/* The id of the current task's executable; plain loads only. */
static __always_inline __u64 tally_exe_id(struct task_struct *task)
{
#ifdef TALLY_COMPAT
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);

	if (!exe)
		return tally_exiting_id(task); /* an exiting task, a kernel thread, or no executable */
	struct inode *inode = BPF_CORE_READ(exe, f_inode);
	__u64 ino = BPF_CORE_READ(inode, i_ino);
	__u64 dev = BPF_CORE_READ(inode, i_sb, s_dev);
#else
	struct mm_struct *mm = task->mm;
	struct file *exe;
	struct inode *inode;

	if (!mm)
		return tally_exiting_id(task); /* an exiting task, or a kernel thread */
	exe = mm->exe_file;
	if (!exe)
		return TALLY_BINARY_NONE;
	inode = exe->f_inode;
	__u64 ino = inode->i_ino;
	__u64 dev = inode->i_sb->s_dev;
#endif
	return tally_file_id(ino, dev);
}

/* Slow path, once per new id: walk the path and announce it. False if it could not. */
static __noinline bool tally_announce(struct task_struct *task, __u64 id)
{
	__u32 zero = 0;
	__u8 one = 1;
	struct tally_binary_event *ev;

	if (bpf_map_lookup_elem(&tally_known_binaries, &id))
		goto remember;
	ev = bpf_map_lookup_elem(&tally_path_scratch, &zero);
	if (!ev || tally_walk_exe_path(task, ev) < 0 || ev->path_len == 0)
		return false;
	ev->binary_id = id;
	if (bpf_ringbuf_output(&tally_binary_events, ev, sizeof(*ev), 0)) {
		/* Not remembered, so the next event tries again. */
		tally_stat_inc(TALLY_STAT_BINARY_EVENT_DROPS);
		return false;
	}
	bpf_map_update_elem(&tally_known_binaries, &id, &one, BPF_ANY);
remember:;
	__u64 *slot = tally_announced_slot(id);

	if (slot)
		*slot = id;
	return true;
}

/*
 * Announces id unless the announced slot says it was, and remembers in c
 * that it was. A subprogram: inlined into every program, it would push the
 * largest past the reach of a BPF jump.
 */
static __noinline void tally_binary_check(struct task_struct *task, struct tally_label_set_cache *c, __u64 id,
					  __u64 generation)
{
	__u64 *slot = tally_announced_slot(id);

	if (((slot && *slot == id) || tally_announce(task, id)) && c) {
		c->binary = id;
		c->binary_seen = generation;
	}
}

/*
 * The id of the task's executable, announced. c is this CPU's entry of
 * tally_label_set_cache (label_sets.bpf.h): the binary it last saw
 * announced, on the cache line the cgroup's mapping needs anyway, so the
 * common case (one binary's events in a row) skips the announced slot, a
 * line of its own.
 */
static __always_inline __u64 tally_binary_of(struct task_struct *task, struct tally_label_set_cache *c)
{
	__u64 id = tally_exe_id(task);
	__u64 generation;

	if (id == TALLY_BINARY_NONE)
		return id;
	/* Read first: user space forgets an announcement, then moves the generation on. */
	generation = c ? c->generation : 0;
	if (!c || c->binary != id || c->binary_seen != generation)
		tally_binary_check(task, c, id, generation);
	return id;
}

#endif /* TALLY_BINARY_BPF_H */
