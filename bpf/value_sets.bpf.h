/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In and NotIn over a selector's set of 64-bit values: the Kubernetes
 * namespaces of matchNamespaces (policy.bpf.c) and the inode numbers of
 * Tetragon's Linux matchNamespaces (task_filters.bpf.h) are both sets in
 * read-only configuration, matched the same way.
 */
#ifndef TALLY_VALUE_SETS_BPF_H
#define TALLY_VALUE_SETS_BPF_H

/*
 * Whether v is among the first n of values (max entries at most, a
 * constant), then the set's op: TALLY_OP_EQ (In) admits a value found, any
 * other op one not found. A macro: the loop unrolls only where max is a
 * literal, which an inline function's parameter is not when clang unrolls.
 */
#define value_set_admits(values, n, max, op, v)                 \
	({                                                      \
		bool __found = false;                           \
		_Pragma("unroll")                               \
		for (__u32 __k = 0; __k < (max); __k++) {       \
			if (__k >= (n))                         \
				break;                          \
			if ((values)[__k] == (v)) {             \
				__found = true;                 \
				break;                          \
			}                                       \
		}                                               \
		(op) == TALLY_OP_EQ ? __found : !__found;       \
	})

#endif
