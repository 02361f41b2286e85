// SPDX-License-Identifier: GPL-2.0
/* The floor: programs that do nothing, on the hooks tally uses. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sock_send_length")
int BPF_PROG(empty_send_btf) { return 0; }

SEC("tp_btf/sock_recv_length")
int BPF_PROG(empty_recv_btf) { return 0; }

SEC("tracepoint/sock/sock_send_length")
int empty_send_tp(void *ctx) { return 0; }

SEC("tracepoint/sock/sock_recv_length")
int empty_recv_tp(void *ctx) { return 0; }

/* The engine's hooks on this kernel: raw tracepoints. */
SEC("raw_tp/sock_send_length")
int empty_send_raw(void *ctx) { return 0; }

SEC("raw_tp/sock_recv_length")
int empty_recv_raw(void *ctx) { return 0; }

/* The syscall fallback: both raw syscall tracepoints, doing nothing. */
SEC("raw_tp/sys_enter")
int empty_sys_enter(void *ctx) { return 0; }

SEC("raw_tp/sys_exit")
int empty_sys_exit(void *ctx) { return 0; }

/* file-writes' hook where there is no fentry: the syscall's own sys_exit tracepoint. */
SEC("tracepoint/syscalls/sys_exit_write")
int empty_sys_exit_write(void *ctx) { return 0; }

/* process' hooks: the scheduler's exec and exit tracepoints, typed. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(empty_exec_btf) { return 0; }

SEC("tp_btf/sched_process_exit")
int BPF_PROG(empty_exit_btf) { return 0; }

/* tcp-retransmits' hook: the retransmit tracepoint, typed. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(empty_retransmit_btf) { return 0; }

/* A uprobe policy's hooks: entry and return of a user function (attached to a target at run time). */
SEC("uprobe")
int empty_uprobe(void *ctx) { return 0; }

SEC("uretprobe")
int empty_uretprobe(void *ctx) { return 0; }

/* udp-peers' hooks: cgroup_skb on the cgroup v2 root, both ways (a verdict: 1 lets the packet through). */
SEC("cgroup_skb/egress")
int empty_skb_egress(struct __sk_buff *skb) { return 1; }

SEC("cgroup_skb/ingress")
int empty_skb_ingress(struct __sk_buff *skb) { return 1; }
