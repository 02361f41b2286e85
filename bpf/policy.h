/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel/user boundary of policy hooks (bpf/policy.bpf.c): the
 * configuration user space compiles a policy's hook into, and the keys of the
 * maps it fills with selector values. One hook is one instance of the object,
 * its configuration a `const volatile` global set before load, so the
 * verifier sees every count and switch below as a constant and prunes what
 * the hook does not use: a hook costs what it asks for, not what the engine
 * can do.
 *
 * Plain fixed-width types only; the addon reports sizes and offsets to
 * TypeScript, which checks its encoder against them at startup.
 */
#ifndef TALLY_POLICY_H
#define TALLY_POLICY_H

#include "tally_types.h"

#define TALLY_POL_ARGS      6
#define TALLY_POL_SELECTORS 5
#define TALLY_POL_FILTERS   5  /* matchArgs per selector */
#define TALLY_POL_BINARIES  4  /* matchBinaries per selector */
#define TALLY_POL_VALUES    16 /* inline values per filter */
#define TALLY_POL_TASKS     2  /* matchNamespaces (Linux) and matchCapabilities per selector */
#define TALLY_POL_TASK_VALUES 4
#define TALLY_POL_METRICS   8
#define TALLY_POL_LABELS    2  /* extra labels per metric */
#define TALLY_POL_STR       128
#define TALLY_POL_NONE      0xff

/* Where an argument is read from. */
enum tally_pol_source {
	TALLY_SRC_NONE = 0,
	TALLY_SRC_REGS = 1,    /* kprobe, uprobe: the n-th argument register */
	TALLY_SRC_CTX = 2,     /* fentry/fexit, raw_tp: the n-th u64 of the context */
	TALLY_SRC_RECORD = 3,  /* tracepoint: `size` bytes at `index` (an offset) in the event record */
	TALLY_SRC_SYSCALL = 4, /* raw_tp sys_enter: the n-th syscall argument in the saved user registers */
	TALLY_SRC_CONST = 5,   /* `konst`: an arg this kernel's tracepoint does not pass (ifMissing) */
	TALLY_SRC_GROUP_DEAD = 6, /* 1 if the task in context slot `index` ended its thread group, counted once */
	TALLY_SRC_USDT = 7,    /* USDT probe: its n-th argument, where the probe's note says it is (bpf_usdt_arg) */
	TALLY_SRC_PACKET = 8,  /* cgroup_skb: index 0 the packet, index 1 its transport payload's bytes (packets.bpf.h) */
};

/* How an argument is decoded. */
enum tally_pol_type {
	TALLY_T_INT = 1,      /* signed integer of `size` bytes */
	TALLY_T_UINT = 2,     /* unsigned integer of `size` bytes */
	TALLY_T_STRING = 3,   /* char *: NUL-terminated, user or kernel memory (`user`) */
	TALLY_T_FILE = 4,     /* struct file *: its path, its type */
	TALLY_T_PATH = 5,     /* struct path *: its path */
	TALLY_T_FD = 6,       /* a file descriptor of the current task: its number, path and type */
	TALLY_T_SOCK = 7,     /* struct sock *: addresses, ports, family, protocol, owning cgroup */
	TALLY_T_SKB = 8,      /* struct sk_buff *: the same, from its socket */
	TALLY_T_SOCKADDR = 9, /* struct sockaddr *: the destination address and port */
	TALLY_T_TASK = 10,    /* struct task_struct *: how it exited */
	TALLY_T_BINPRM = 11,  /* struct linux_binprm *: its file, as TALLY_T_FILE */
	TALLY_T_SOCKET = 12,  /* struct socket *: its sock, as TALLY_T_SOCK */
	TALLY_T_NETDEV = 13,  /* struct net_device *: its name */
	TALLY_T_PACKET = 14,  /* a cgroup_skb packet: its headers' addresses, ports, protocol; its socket's cgroup */
};

/* A part of a decoded argument that a filter or label reads. */
enum tally_pol_field {
	TALLY_F_VALUE = 0,    /* the integer itself */
	TALLY_F_SADDR = 1,
	TALLY_F_DADDR = 2,
	TALLY_F_SPORT = 3,
	TALLY_F_DPORT = 4,
	TALLY_F_PROTOCOL = 5,
	TALLY_F_FAMILY = 6,
	TALLY_F_FILE_TYPE = 7, /* S_IFMT bits of a file, fd or path's inode */
	TALLY_F_STRING = 8,    /* the string, or the path */
	TALLY_F_EXIT_STATUS = 9, /* a task's exit: 0 ok (status 0), 1 error (another status), 2 killed by a signal */
	TALLY_F_STRING_END = 10, /* the string or path reversed, for Postfix: its end is the reversed string's prefix */
	TALLY_F_FS_MAGIC = 11,   /* the magic number of the file system a file, fd or path's inode is on */
};

enum tally_pol_op {
	TALLY_OP_EQ = 1,      /* field equals one of values[] */
	TALLY_OP_NEQ = 2,     /* field equals none of values[] */
	TALLY_OP_GT = 3,      /* field > values[0] (signed for TALLY_T_INT) */
	TALLY_OP_LT = 4,
	TALLY_OP_MASK = 5,    /* field & values[i] != 0 for some i */
	TALLY_OP_RANGE = 6,   /* field in [lo, hi] for some values[i] = lo | hi << 32 */
	TALLY_OP_NOT_RANGE = 7,
	TALLY_OP_LPM = 8,     /* string or address found in the LPM trie under `slot` */
	TALLY_OP_NOT_LPM = 9,
	TALLY_OP_NOT_MASK = 10, /* field & values[i] == 0 for every i */
};

/* want_file bits. */
#define TALLY_WANT_FILE_TYPE 1
#define TALLY_WANT_FS_MAGIC  2

struct tally_pol_arg {
	__u8 source;     /* TALLY_SRC_* */
	__u8 type;       /* TALLY_T_* */
	__u8 size;       /* bytes of an integer (record fields) */
	__u8 user;       /* pointers point to user memory (syscall arguments) */
	__u8 want_str;   /* something reads the string or path */
	__u8 want_net;   /* which of addresses, ports, protocol, family are read: bit 1 << TALLY_F_* */
	__u8 want_file;  /* what of the file is read: TALLY_WANT_FILE_TYPE, TALLY_WANT_FS_MAGIC */
	__u8 pad;
	__u16 index;     /* register / context slot / record offset */
	__u16 pad2;
	__s32 konst;     /* TALLY_SRC_CONST: the value */
};

/* A thread group whose end was counted: its signal_struct and its leader's start time. */
struct tally_pol_group_key {
	__u64 signal;
	__u64 leader_start;
};

struct tally_pol_filter {
	__u8 op;         /* TALLY_OP_* */
	__u8 arg;        /* index into args[] */
	__u8 field;      /* TALLY_F_* */
	__u8 nvalues;
	__u32 slot;      /* key prefix in the LPM tries */
	__u64 values[TALLY_POL_VALUES];
};

struct tally_pol_binaries {
	__u8 in;         /* 1: the binary is one of the set, or matches; 0: it is not, or does not */
	__u8 field;      /* 0: a set of ids (In, NotIn); TALLY_F_STRING (Prefix) or
	                  * TALLY_F_STRING_END (Postfix): the path, in the LPM trie */
	__u8 pad[2];
	__u32 slot;      /* key prefix in tally_pol_binaries, or the LPM slot */
};

/*
 * matchNamespaces of one selector, its entries combined by user space into
 * one set: the Kubernetes namespace of the event's owner (its namespace_id in
 * tally_cgroup_mapping) is one of values[] (TALLY_OP_EQ), or none of them
 * (TALLY_OP_NEQ). A TracingPolicyNamespaced has one in every selector.
 */
struct tally_pol_namespaces {
	__u8 op;         /* 0: no constraint; TALLY_OP_EQ or TALLY_OP_NEQ */
	__u8 nvalues;
	__u8 pad[6];
	__u64 values[TALLY_POL_VALUES];
};

/* What a task filter reads of the calling task. */
enum tally_pol_task_field {
	TALLY_TASK_NS_UTS = 1, /* Linux namespaces: the inode number (ls -Li /proc/PID/ns/X) */
	TALLY_TASK_NS_IPC = 2,
	TALLY_TASK_NS_MNT = 3,
	TALLY_TASK_NS_PID = 4, /* the pid namespace the task is in */
	TALLY_TASK_NS_PID_FOR_CHILDREN = 5,
	TALLY_TASK_NS_NET = 6,
	TALLY_TASK_NS_TIME = 7,
	TALLY_TASK_NS_TIME_FOR_CHILDREN = 8,
	TALLY_TASK_NS_CGROUP = 9,
	TALLY_TASK_NS_USER = 10,
	TALLY_TASK_CAP_EFFECTIVE = 16, /* capability sets: a bit per CAP_ number */
	TALLY_TASK_CAP_PERMITTED = 17,
	TALLY_TASK_CAP_INHERITABLE = 18,
};

/*
 * Tetragon's matchNamespaces (Linux namespaces) and matchCapabilities: a
 * namespace's inode number is one of values[] (TALLY_OP_EQ) or none
 * (TALLY_OP_NEQ); a capability set holds some bit of values[0]
 * (TALLY_OP_MASK) or none (TALLY_OP_NOT_MASK).
 */
struct tally_pol_task_filter {
	__u8 field;      /* TALLY_TASK_* */
	__u8 op;
	__u8 nvalues;
	__u8 pad[5];
	__u64 values[TALLY_POL_TASK_VALUES];
};

struct tally_pol_selector {
	__u8 nfilters;
	__u8 nbinaries;
	__u8 ntasks;
	__u8 pad[5];
	struct tally_pol_filter filters[TALLY_POL_FILTERS];
	struct tally_pol_binaries binaries[TALLY_POL_BINARIES];
	struct tally_pol_namespaces namespaces;
	struct tally_pol_task_filter tasks[TALLY_POL_TASKS];
};

enum tally_pol_label_kind {
	TALLY_LABEL_NONE = 0,
	TALLY_LABEL_CAPPED = 1, /* an integer field; the first `cap` distinct values, then TALLY_LABEL_OVERFLOW */
	TALLY_LABEL_PREFIX = 2, /* 1 + index of the prefix (LPM under `slot`) the string starts with, else overflow */
	TALLY_LABEL_CONST = 3,  /* always `slot`: which hook counted (tally_policy_events_total) */
	TALLY_LABEL_BOUNDED = 4, /* an integer field with fewer values than its cap (exitStatus: 3): as is, nothing to track */
	TALLY_LABEL_PEER = 5,    /* the peer id of a sock's remote address (field daddr) in tally_peers (bpf/peers.bpf.h) */
};

struct tally_pol_label {
	__u8 kind;       /* TALLY_LABEL_* */
	__u8 arg;
	__u8 field;      /* TALLY_F_* */
	__u8 pad;
	__u32 slot;      /* CAPPED: index into tally_pol_seen_count; PREFIX: LPM slot */
	__u32 cap;
	__u32 pad2;
};

enum tally_pol_value {
	TALLY_VAL_COUNT = 0,   /* 1 per event */
	TALLY_VAL_ARG = 1,     /* an integer argument */
	TALLY_VAL_RETURN = 2,  /* the return value */
	TALLY_VAL_LATENCY = 3, /* nanoseconds from entry to return */
};

struct tally_pol_metric {
	__u32 id;        /* metric id in the shared counter map */
	__u8 histogram;
	__u8 value;      /* TALLY_VAL_* */
	__u8 arg;        /* TALLY_VAL_ARG: index into args[] */
	__u8 nlabels;
	struct tally_pol_label labels[TALLY_POL_LABELS];
	__u32 pending_id; /* match_namespaces: the id counts wait under while the owner's namespace is unknown (TALLY_KEY_NS_PENDING) */
	__u32 pad;
};

struct tally_pol_config {
	__u8 nargs;
	__u8 nselectors;
	__u8 nmetrics;
	__u8 owner_arg;  /* a sock or skb arg whose socket owns the event, or TALLY_POL_NONE: the current task */
	__u8 has_return; /* entry and return are both hooked: the entry waits for the return */
	__u8 ret_signed; /* a negative return value (an error) adds nothing */
	__u8 task_context; /* the hook runs in the owning task's context: its binary labels socket-owned events */
	__u8 match_binaries; /* some selector has matchBinaries: the binary id is needed to select */
	__u32 syscall_nr; /* raw syscall tracepoints: the one syscall this hook is */
	__u8 match_namespaces; /* some selector has matchNamespaces: the owner's namespace is needed to select */
	/*
	 * fexit in the compat build: the context slot of the return value, which
	 * follows the function's arguments. bpf_get_func_ret() is 5.17, so the
	 * compat build reads it with a probe read (bpf/policy.bpf.c, pol_fexit).
	 */
	__u8 fexit_ret_slot;
	/*
	 * Bytes of the hooked function's return value (1, 2, 4; 0 or 8: all
	 * 64 bits). fexit and kretprobes see the whole register, whose upper
	 * half an int return leaves zero: tcp_recvmsg()'s -EAGAIN would read
	 * as 4294967285 bytes received. Narrower values are extended by
	 * ret_signed first.
	 */
	__u8 ret_size;
	__u8 pad2;
	/*
	 * What every event reads first: on hooks that run cache-cold (exec,
	 * exit), each cache line of this read-only data the program touches is
	 * a miss, so the header, args and metrics share the first lines and the
	 * large selectors come last.
	 */
	struct tally_pol_arg args[TALLY_POL_ARGS];
	struct tally_pol_metric metrics[TALLY_POL_METRICS];
	struct tally_pol_selector selectors[TALLY_POL_SELECTORS];
};

/* Key of the LPM tries for strings and addresses: slot, then the bytes. */
struct tally_pol_lpm_key {
	__u32 prefixlen; /* bits: 32 for the slot plus 8 per byte matched */
	__u32 slot;      /* big-endian, so it is matched first */
	__u8 data[TALLY_POL_STR];
};

/* Key of tally_pol_binaries: is binary_id in the set `slot`? */
struct tally_pol_binary_key {
	__u32 slot;
	__u32 pad;
	__u64 binary_id;
};

/* Key of tally_pol_seen: a capped label's values seen so far. */
struct tally_pol_seen_key {
	__u32 slot;
	__u32 pad;
	__u64 value;
};

#define TALLY_POL_SEEN_SLOTS (TALLY_POL_METRICS * TALLY_POL_LABELS)

#endif /* TALLY_POLICY_H */
