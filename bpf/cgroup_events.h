/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel/user boundary of cgroup_events.bpf.c: plain C types only. */
#ifndef TALLY_CGROUP_EVENTS_H
#define TALLY_CGROUP_EVENTS_H

#ifndef __BPF__
#include <linux/types.h>
#endif

/* A cgroup of the v2 hierarchy was removed. */
struct tally_cgroup_event {
	__u64 cgroup_id;
};

#endif
