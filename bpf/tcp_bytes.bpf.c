// SPDX-License-Identifier: GPL-2.0
/*
 * TCP bytes sent and received, per (socket cgroup, binary), counted in the
 * kernel.
 *
 * Hook: the sock:sock_send_length / sock:sock_recv_length tracepoints, which
 * fire in sock_sendmsg()/sock_recvmsg() with the syscall's result, so every
 * path into a socket (send*, write, writev, splice/sendfile, io_uring) is seen
 * once with the bytes actually moved. Each hook comes in several attach
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
#include "tcp_bytes.h"

char LICENSE[] SEC("license") = "GPL";

#define MSG_PEEK 2
#define IPPROTO_TCP 6
#define IPPROTO_MPTCP 262 /* multipath TCP: the application-level socket */

static __always_inline int count_io(__u64 cgroup_id, __u16 protocol, int ret, int flags, __u32 metric)
{
	/* Errors move no bytes; a peek does not consume them. */
	if (ret <= 0 || (flags & MSG_PEEK))
		return 0;
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_MPTCP)
		return 0;
	if (!cgroup_id)
		cgroup_id = bpf_get_current_cgroup_id();

	struct tally_counter_key key = {
		.cgroup_id = cgroup_id,
		.binary_id = tally_current_binary(),
		.metric = metric,
		.flags = TALLY_KEY_RAW_CGROUP,
	};
	tally_add(&key, (__u64)ret);
	return 0;
}

/* tp_btf: sk is a trusted BTF pointer, so plain loads suffice. */
static __always_inline int on_io_btf(struct sock *sk, int ret, int flags, __u32 metric)
{
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;

	return count_io(cg ? cg->kn->id : 0, sk->sk_protocol, ret, flags, metric);
}

/* raw_tp and tracepoint: untyped pointers, read through CO-RE probe reads. */
static __always_inline int on_io_probe(struct sock *sk, int ret, int flags, __u32 metric)
{
	__u64 cgroup_id = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);

	return count_io(cgroup_id, BPF_CORE_READ(sk, sk_protocol), ret, flags, metric);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tcp_send_btf, struct sock *sk, int ret, int flags)
{
	return on_io_btf(sk, ret, flags, TCP_BYTES_SENT);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tcp_recv_btf, struct sock *sk, int ret, int flags)
{
	return on_io_btf(sk, ret, flags, TCP_BYTES_RECEIVED);
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
 * taken from the TCP functions themselves: the return value of tcp_sendmsg()
 * (bytes accepted) and the `copied` argument of tcp_cleanup_rbuf() (bytes
 * handed to the reader). This path does not see kTLS or MPTCP application
 * sockets, and on kernels before 6.5 not tcp_sendpage() (sendfile/splice).
 */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_send_fexit, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return on_io_btf(sk, ret, 0, TCP_BYTES_SENT);
}

SEC("fentry/tcp_cleanup_rbuf")
int BPF_PROG(tcp_recv_fentry, struct sock *sk, int copied)
{
	return on_io_btf(sk, copied, 0, TCP_BYTES_RECEIVED);
}

/* kretprobe sees only the return value: the socket's cgroup is not at hand,
 * so the sending task's cgroup stands in (tcp_sendmsg runs in its context). */
SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(tcp_send_kprobe, int ret)
{
	return count_io(bpf_get_current_cgroup_id(), IPPROTO_TCP, ret, 0, TCP_BYTES_SENT);
}

SEC("kprobe/tcp_cleanup_rbuf")
int BPF_KPROBE(tcp_recv_kprobe, struct sock *sk, int copied)
{
	return on_io_probe(sk, copied, 0, TCP_BYTES_RECEIVED);
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
