/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel/user boundary of cgroup_events.bpf.c: plain C types only. */
#ifndef TALLY_CGROUP_EVENTS_H
#define TALLY_CGROUP_EVENTS_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define TALLY_CGROUP_PATH_MAX 512

/*
 * A cgroup of the v2 hierarchy was removed, and where it was: a pod's
 * cgroup may go before user space has resolved its labels, and by then its
 * id no longer resolves to a path.
 */
struct tally_cgroup_event {
	__u64 cgroup_id;
	char path[TALLY_CGROUP_PATH_MAX]; /* from the hierarchy's root, NUL-terminated; empty if it could not be read */
};

#endif
