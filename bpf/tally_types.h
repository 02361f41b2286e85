/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel/user boundary of tally's counting programs: plain C types shared
 * by the BPF programs (bpf/NAME.bpf.c) and the native addon (native/), which
 * reports their sizes and offsets to TypeScript so the decoders there are
 * checked against this file at startup rather than trusted.
 *
 * No kernel or libc headers here: only fixed-width integer types.
 */
#ifndef TALLY_TYPES_H
#define TALLY_TYPES_H

#ifdef __BPF__
/* vmlinux.h provides __u64 and friends. */
#else
#include <linux/types.h>
#endif

/* Flags of a counter key. */
#define TALLY_KEY_RAW_CGROUP 0u /* key.cgroup_id is a raw cgroup v2 id */
#define TALLY_KEY_OVERFLOW   1u /* reserved entry that absorbs updates when the map is full */
#define TALLY_KEY_LABEL_SET  2u /* key.cgroup_id is a label-set id assigned by user space */
/*
 * A policy hook with matchNamespaces counted an event of a cgroup whose
 * Kubernetes namespace user space has not resolved yet: key.cgroup_id is the
 * raw cgroup id, key.metric the metric's pending id, and the bits from
 * TALLY_KEY_PENDING_SHIFT up say which selectors matched but for their
 * namespace. User space folds the count in once it knows the namespace, or
 * drops it if no such selector admits that namespace.
 */
#define TALLY_KEY_NS_PENDING 4u
#define TALLY_KEY_PENDING_SHIFT 8

/*
 * Key of every in-kernel counter. The map is per-CPU, so a value is one __u64
 * per possible CPU, summed by user space at read time.
 */
struct tally_counter_key {
	__u64 cgroup_id; /* cgroup v2 id of the socket/task, or a label-set id (flags); 0 in overflow keys */
	__u64 binary_id; /* id of the executable (see binary.bpf.h); 0 when not keyed by binary */
	__u64 labels[2]; /* values of a policy metric's extra labels (a port, a capped integer, a prefix index); 0 when unused */
	__u32 metric;    /* metric id, local to one BPF object */
	__u16 flags;     /* TALLY_KEY_* */
	__u16 bucket;    /* histograms: log2 bucket, TALLY_BUCKET_ZERO or TALLY_BUCKET_SUM; 0 for counters */
};

/*
 * Value of tally_cgroup_label_sets: what user space resolved a cgroup to. A
 * cgroup is in the map only once its labels are final.
 */
struct tally_cgroup_mapping {
	__u32 label_set;    /* label-set id under the label filter */
	__u32 pad;
	__u64 namespace_id; /* the pod's Kubernetes namespace, hashed (src/labels/namespace-id.ts); 0: not in a pod */
};

/*
 * This CPU's entry of tally_label_set_cache (an array with one entry per
 * possible CPU): the last cgroup looked up in tally_cgroup_label_sets, and
 * the last binary this CPU saw announced. User space removes a mapping, or
 * forgets an announcement, then writes every CPU's entry with a new
 * generation and the rest zero; an entry holds only if it was filled under
 * the current generation. A program can interrupt another mid-update on the
 * same CPU (a softirq's hook a syscall's), so the mapping also holds only if
 * cgroup_id and check, written first and last, agree: a torn update is a
 * miss, never another cgroup's mapping. One cache line, aligned as one.
 */
struct tally_label_set_cache {
	__u64 generation; /* written by user space only */
	__u64 seen;       /* the generation m was looked up under */
	__u64 cgroup_id;
	struct tally_cgroup_mapping m; /* label_set 0: the cgroup has no mapping (yet) */
	__u64 check;
	__u64 binary;      /* a binary id this CPU announced, or found announced */
	__u64 binary_seen; /* the generation that was under */
} __attribute__((aligned(64)));

/*
 * Promoted counters: the kernel adds to a counter user space promoted with
 * plain loads and stores, no hash-map call. Looking a key up in the per-CPU
 * hash calls into the kernel's hash-table code, whose text and bookkeeping
 * are cold on a rare hook (an exec, a retransmit); an array lookup is
 * inlined. User space promotes keys it has seen in tally_counters: it writes
 * the key into tally_fast_index at one of TALLY_FAST_PROBES positions from
 * its hash (tally_fast_hash), and from then on the kernel adds that key's
 * events to this CPU's tally_fast_counters at the same position. A key not
 * promoted (a new one, or the table full there) goes to the hash as before.
 */
#define TALLY_FAST_SLOTS  4096 /* power of two: used as an index mask */
#define TALLY_FAST_PROBES 2

/*
 * One position of tally_fast_index. check is the key's hash with the low bit
 * set, written last when user space promotes and zeroed when it retires the
 * key: an entry the kernel finds with check == its own key's hash holds that
 * key. User space reuses a position only a sweep after retiring it, so no
 * program can still be reading it mid-change.
 */
struct tally_fast_entry {
	struct tally_counter_key key;
	__u64 check;
	__u64 pad[2];
} __attribute__((aligned(64)));

/* This CPU's promoted counters (an array with one entry per possible CPU): never reset, so user space reads a key's count as the difference from a base. */
struct tally_fast_counters {
	__u64 value[TALLY_FAST_SLOTS];
};

/*
 * A histogram's bucket i counts values in (2^(i-1), 2^i]: bucket 0 counts 1.
 * These are exactly the buckets of a Prometheus native histogram and of an
 * OTLP exponential histogram at schema/scale 0, so neither re-buckets.
 * Zeros have a bucket of their own, the zero bucket of both formats.
 */
#define TALLY_BUCKETS     64
#define TALLY_BUCKET_ZERO 0xfffe
#define TALLY_BUCKET_SUM  0xffff

/* Latencies are counted in units of 2^-TALLY_LATENCY_SHIFT seconds. */
#define TALLY_LATENCY_SHIFT 30

/* Room for overflow entries: 4096 counters, or 62 histograms of 66 entries. */
#define TALLY_OVERFLOW_ENTRIES 4096

/* An extra label's value when its cap is reached, or no prefix matched. */
#define TALLY_LABEL_OVERFLOW 0xffffffffffffffffull

/* binary_id of a task without an executable (kernel threads). Real ids have
 * the top bit set; 0 means "not keyed by binary". */
#define TALLY_BINARY_NONE 1ull

/*
 * Executable paths are assembled in the kernel by walking dentries from the
 * file up to the task's root. Components are stored leaf first, each
 * NUL-terminated, so the BPF side only ever appends; user space reverses them.
 */
#define TALLY_PATH_MAX      1024 /* power of two: used as an index mask */
#define TALLY_NAME_MAX      256  /* NAME_MAX + NUL */
#define TALLY_PATH_DEPTH    48
#define TALLY_ANNOUNCED_SLOTS 1024 /* power of two */

/* Ring-buffer record: "binary_id means this path". Sent once per new binary. */
struct tally_binary_event {
	__u64 binary_id;
	__u32 path_len;   /* bytes of path[] in use */
	__u32 truncated;  /* 1 when the walk hit TALLY_PATH_MAX or TALLY_PATH_DEPTH */
	char path[TALLY_PATH_MAX + TALLY_NAME_MAX];
};

/* Indexes of the per-CPU tally_stats array: things that must never go unseen. */
enum tally_stat {
	TALLY_STAT_MAP_FULL = 0,        /* counter updates diverted to the overflow key */
	TALLY_STAT_LOST = 1,            /* updates lost entirely (overflow key missing) */
	TALLY_STAT_BINARY_EVENT_DROPS = 2, /* binary path events that found the ring buffer full */
	TALLY_STAT_PATH_TRUNCATED = 3,  /* executable paths cut at the walk limits */
	TALLY_STAT__COUNT = 4,
};

/*
 * Peers (bpf/peers.bpf.h): the remote address of a socket, resolved in the
 * kernel to a small peer id through tally_peers, an LPM trie user space
 * fills (src/peers). Every address is keyed in IPv6 form, an IPv4 address
 * as its IPv4-mapped ::ffff:a.b.c.d, so an IPv4 peer reached over an IPv6
 * socket (a dual-stack client) finds the same entry as over IPv4, and an
 * IPv4 network a.b.c.d/n is the entry ::ffff:a.b.c.d/(96 + n).
 */
struct tally_peer_key {
	__u32 prefixlen; /* bits of addr that the entry matches, 0 to 128 */
	__u8 addr[16];   /* network byte order */
};

/* The peer id of an address that no entry matches: peer_class="unknown". */
#define TALLY_PEER_UNKNOWN 0u

#endif /* TALLY_TYPES_H */
