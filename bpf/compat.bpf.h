/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Two builds of the policy programs: the default one, and TALLY_COMPAT for
 * kernels that lack what it uses (Linux 5.10 to 5.16, found by the startup
 * probe, src/engine/kernel-features.ts):
 *
 * - bpf_loop() (5.17) and its callbacks: a kernel before 5.13 does not count
 *   a callback passed by address as a subprogram, and refuses every program
 *   of the object with "number of funcs in func_info doesn't match number of
 *   subprogs". COMPAT runs the same step functions in a bounded loop, which
 *   the verifier walks iteration by iteration (5.3 and later).
 * - bpf_get_current_task_btf() (5.11): COMPAT gets the task as a plain
 *   number, so every field of it is a CO-RE read instead of a plain load.
 * - atomics that return the old value (5.12): COMPAT adds, then reads.
 *
 * Everything else is the same code, so both builds count the same events.
 */
#ifndef TALLY_COMPAT_BPF_H
#define TALLY_COMPAT_BPF_H

#ifdef TALLY_COMPAT

#define tally_current_task() ((struct task_struct *)bpf_get_current_task())

/*
 * fn(index) for index 0..n-1 until it returns non-zero, as bpf_loop() does.
 * fn is a global function over per-CPU state: the verifier checks it once,
 * and the loop around it is a call and a test per step.
 */
#define tally_loop(n, fn, unused)                               \
	({                                                      \
		_Pragma("clang loop unroll(disable)")           \
		for (__u32 __i = 0; __i < (n); __i++)           \
			if (fn(__i))                            \
				break;                          \
	})

#else

#define tally_current_task() bpf_get_current_task_btf()
#define tally_loop(n, fn, ctx) bpf_loop(n, fn, ctx, 0)

#endif

#endif /* TALLY_COMPAT_BPF_H */
