// SPDX-License-Identifier: GPL-2.0
/*
 * TCP bytes sent and received, per (socket cgroup, binary), counted in the
 * kernel.
 *
 * Hook: the sock:sock_send_length / sock:sock_recv_length tracepoints, which
 * fire in sock_sendmsg()/sock_recvmsg() with the syscall's result, so every
 * path through them (send*, write, writev, sendfile/splice into a socket,
 * io_uring) is seen once with the bytes actually moved. Not seen: receiving
 * with splice(2) from a socket (tcp_splice_read) and TCP_ZEROCOPY_RECEIVE,
 * which bypass sock_recvmsg(). Each hook comes in several attach
 * flavours in order of preference (user space loads the best one the kernel
 * accepts):
 *   tp_btf  - BTF-typed raw tracepoint, direct memory access: as cheap as
 *             fentry, and the tracepoint sees every path into a socket;
 *   raw_tp  - raw tracepoint, reads through bpf_probe_read;
 *   fexit/fentry, kretprobe/kprobe on the TCP functions - for kernels < 6.3;
 *   tracepoint - classic perf tracepoint, needs tracefs, costs the most.
 *
 * Attribution: bytes go to the cgroup the *socket* belongs to (the cgroup of
 * the task that created it, or of the listener for accepted sockets), which is
 * what cgroup network accounting uses and what stays right if the hook ever
 * fires outside the owning task.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "tally_types.h"
#include "counters.bpf.h"
#include "binary.bpf.h"
#include "label_sets.bpf.h"
#include "tcp_bytes.h"

char LICENSE[] SEC("license") = "GPL";

#define MSG_PEEK 2
#define IPPROTO_TCP 6
#define IPPROTO_MPTCP 262 /* multipath TCP: the application-level socket */

static __always_inline int count_io(__u64 cgroup_id, __u16 protocol, int ret, int flags, __u32 metric, bool atomic)
{
	/* Errors move no bytes; a peek does not consume them. */
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_MPTCP)
		return 0;
	struct tally_counter_key key = {
		.binary_id = tally_current_binary(),
		.metric = metric,
	};
	tally_key_owner(&key, cgroup_id);
	tally_add(&key, (__u64)ret, atomic);
	return 0;
}

/* tp_btf: sk is a trusted BTF pointer, so plain loads suffice. */
static __always_inline int on_io_btf(struct sock *sk, int ret, int flags, __u32 metric, bool atomic)
{
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;

	return count_io(cg ? cg->kn->id : 0, sk->sk_protocol, ret, flags, metric, atomic);
}

/* raw_tp and tracepoint: untyped pointers, read through CO-RE probe reads. */
static __always_inline int on_io_probe(struct sock *sk, int ret, int flags, __u32 metric)
{
	__u64 cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);

	return count_io(cgroup_id, BPF_CORE_READ(sk, sk_protocol), ret, flags, metric, false);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tcp_send_btf, struct sock *sk, int ret, int flags)
{
	return on_io_btf(sk, ret, flags, TCP_BYTES_SENT, false);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tcp_recv_btf, struct sock *sk, int ret, int flags)
{
	return on_io_btf(sk, ret, flags, TCP_BYTES_RECEIVED, false);
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(tcp_send_raw, struct sock *sk, int ret, int flags)
{
	return on_io_probe(sk, ret, flags, TCP_BYTES_SENT);
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(tcp_recv_raw, struct sock *sk, int ret, int flags)
{
	return on_io_probe(sk, ret, flags, TCP_BYTES_RECEIVED);
}

SEC("tracepoint/sock/sock_send_length")
int tcp_send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return on_io_probe(ctx->sk, ctx->ret, ctx->flags, TCP_BYTES_SENT);
}

SEC("tracepoint/sock/sock_recv_length")
int tcp_recv_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return on_io_probe(ctx->sk, ctx->ret, ctx->flags, TCP_BYTES_RECEIVED);
}

/*
 * Kernels before 6.3 lack the sock_*_length tracepoints. There, TCP bytes are
 * taken from the return values of tcp_sendmsg() and tcp_recvmsg(). This path
 * does not see kTLS or MPTCP application sockets, nor, before 6.5,
 * tcp_sendpage() (sendfile/splice to a socket).
 */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_send_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return on_io_btf(sk, ret, 0, TCP_BYTES_SENT, true);
}

/*
 * tcp_recvmsg() lost its `nonblock` argument in 5.19, which moves `flags`:
 * ask the trampoline how many arguments there are instead of guessing.
 */
SEC("fexit/tcp_recvmsg")
int tcp_recv_fexit(__u64 *ctx)
{
	__u64 nargs = bpf_get_func_arg_cnt(ctx);
	__u64 sk = 0, flags = 0, ret = 0;

	bpf_get_func_arg(ctx, 0, &sk);
	bpf_get_func_arg(ctx, nargs == 6 ? 4 : 3, &flags);
	bpf_get_func_ret(ctx, &ret);
	return on_io_btf((struct sock *)sk, (int)ret, (int)flags, TCP_BYTES_RECEIVED, true);
}

/*
 * kretprobes see only the return value: the sending task's cgroup stands in
 * for the socket's (these functions run in its context), and a MSG_PEEK read
 * cannot be told apart, so it is counted.
 */
SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(tcp_send_kprobe, int ret)
{
	return count_io(bpf_get_current_cgroup_id(), IPPROTO_TCP, ret, 0, TCP_BYTES_SENT, false);
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(tcp_recv_kprobe, int ret)
{
	return count_io(bpf_get_current_cgroup_id(), IPPROTO_TCP, ret, 0, TCP_BYTES_RECEIVED, false);
}

/* Exec: the task's binary changes. Loaded only when keyed by binary. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	tally_on_exec();
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	tally_on_exec();
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(void *ctx)
{
	tally_on_exec();
	return 0;
}
