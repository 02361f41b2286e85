/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The executable of the current task, as a 64-bit id.
 *
 * The id is a hash of the executable's full path, which the kernel assembles
 * by walking dentries (and mounts) from mm->exe_file up to the task's root, so
 * a containerised process reads as /usr/sbin/nginx, as it sees itself. The id
 * is cached per task in task storage: set at exec, and computed lazily the
 * first time a task that predates the agent (or a fresh fork) is seen. Each new
 * id is announced once on a ring buffer; user space keeps id -> path.
 */
#ifndef TALLY_BINARY_BPF_H
#define TALLY_BINARY_BPF_H

#include "tally_types.h"
#include "counters.bpf.h"

/* Load-time switch: false when `binary` is not in the label filter. */
const volatile bool key_by_binary = true;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} tally_task_binary SEC(".maps");

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

static long tally_walk_step(__u64 index, struct tally_walk *w)
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
		w->ev->truncated = 1;
		goto done;
	}
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(&w->ev->path[w->off & (TALLY_PATH_MAX - 1)], TALLY_NAME_MAX, name);

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

/* Write the exe path of task into ev (components leaf first). */
static __always_inline int tally_walk_exe_path(struct task_struct *task, struct tally_binary_event *ev)
{
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct tally_walk w = {};

	ev->truncated = 0;
	ev->path_len = 0;
	if (!exe)
		return -1;
	w.ev = ev;
	w.dentry = BPF_CORE_READ(exe, f_path.dentry);
	w.vfsmnt = BPF_CORE_READ(exe, f_path.mnt);
	w.mnt = (void *)w.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	w.root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	w.root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	bpf_loop(TALLY_PATH_DEPTH, tally_walk_step, &w, 0);
	if (!w.done)
		ev->truncated = 1;
	if (ev->truncated)
		tally_stat_inc(TALLY_STAT_PATH_TRUNCATED);
	ev->path_len = w.off;
	return 0;
}

struct tally_hash {
	const struct tally_binary_event *ev;
	__u64 h;
};

static long tally_hash_step(__u64 i, struct tally_hash *c)
{
	if (i >= sizeof(c->ev->path))
		return 1;
	c->h ^= (unsigned char)c->ev->path[i];
	c->h *= 0x100000001b3ull;
	return 0;
}

/* FNV-1a over the assembled path; the top bit keeps it clear of TALLY_BINARY_NONE. */
static __always_inline __u64 tally_hash_path(const struct tally_binary_event *ev)
{
	struct tally_hash c = { .ev = ev, .h = 0xcbf29ce484222325ull };

	bpf_loop(ev->path_len, tally_hash_step, &c, 0);
	return c.h | (1ull << 63);
}

static __noinline __u64 tally_resolve_binary(struct task_struct *task)
{
	__u32 zero = 0;
	struct tally_binary_event *ev = bpf_map_lookup_elem(&tally_path_scratch, &zero);
	__u8 one = 1;
	__u64 id;

	if (!ev || tally_walk_exe_path(task, ev) < 0 || ev->path_len == 0)
		return TALLY_BINARY_NONE;
	id = tally_hash_path(ev);
	ev->binary_id = id;
	if (bpf_map_lookup_elem(&tally_known_binaries, &id))
		return id;
	/* Announce first, remember second: a failed announce is retried next time. */
	if (bpf_ringbuf_output(&tally_binary_events, ev, sizeof(*ev), 0) == 0)
		bpf_map_update_elem(&tally_known_binaries, &id, &one, BPF_ANY);
	else
		tally_stat_inc(TALLY_STAT_BINARY_EVENT_DROPS);
	return id;
}

/* The binary id of the current task, or 0 when the label filter omits binary. */
static __always_inline __u64 tally_current_binary(void)
{
	struct task_struct *task;
	__u64 *id;

	if (!key_by_binary)
		return 0;
	task = bpf_get_current_task_btf();
	id = bpf_task_storage_get(&tally_task_binary, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!id) {
		tally_stat_inc(TALLY_STAT_BINARY_STORAGE_FAIL);
		return 0;
	}
	if (*id == 0)
		*id = tally_resolve_binary(task);
	return *id;
}

/* At exec the task's executable changes: recompute its id. */
static __always_inline void tally_on_exec(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 *id = bpf_task_storage_get(&tally_task_binary, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!id) {
		tally_stat_inc(TALLY_STAT_BINARY_STORAGE_FAIL);
		return;
	}
	*id = tally_resolve_binary(task);
}

#endif /* TALLY_BINARY_BPF_H */
