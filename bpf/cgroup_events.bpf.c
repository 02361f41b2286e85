// SPDX-License-Identifier: GPL-2.0
/*
 * Removal of cgroups of the v2 hierarchy, for staleness: user space deletes a
 * removed cgroup's counter entries after the series TTL, and labels a cgroup
 * removed before it was resolved from the path reported here. In hybrid mode
 * the v1 hierarchies fire the same tracepoint with ids from other kernfs
 * roots, so only hierarchy 0 (the default, v2) is reported.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "cgroup_events.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* about 500 removals: a node draining its pods at once */
} tally_cgroup_events SEC(".maps");

/* Removals the ring buffer had no room for; user space then rescans. */
__u64 tally_cgroup_event_drops;

static __always_inline int report(int hierarchy, __u64 id, const char *path)
{
	struct tally_cgroup_event *ev;

	if (hierarchy != 0)
		return 0;
	ev = bpf_ringbuf_reserve(&tally_cgroup_events, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&tally_cgroup_event_drops, 1);
		return 0;
	}
	ev->cgroup_id = id;
	if (bpf_probe_read_kernel_str(ev->path, sizeof(ev->path), path) < 0)
		ev->path[0] = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(rmdir_btf, struct cgroup *cgrp, const char *path)
{
	return report(cgrp->root->hierarchy_id, cgrp->kn->id, path);
}

SEC("raw_tp/cgroup_rmdir")
int BPF_PROG(rmdir_raw, struct cgroup *cgrp, const char *path)
{
	return report(BPF_CORE_READ(cgrp, root, hierarchy_id), BPF_CORE_READ(cgrp, kn, id), path);
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int rmdir_tp(struct trace_event_raw_cgroup *ctx)
{
	/* __data_loc: the string's offset in the record in the low 16 bits. */
	return report(ctx->root, ctx->id, (const char *)ctx + (ctx->__data_loc_path & 0xffff));
}
