/**
 * What the running kernel's BTF says about hook arguments. Tracepoint
 * prototypes grow between kernels (sched_process_exit's group_dead and
 * tcp_retransmit_skb's err are on 6.18, not on 6.12 or older), so the engine asks rather than
 * assumes a layout. Answers are kept per name: the kernel does not change
 * under a running agent, and each question parses the kernel's BTF.
 */
import { native } from '../native/addon';

const arities = new Map<string, number>();

/**
 * Prototypes to take as fewer args than the kernel's, `event=N,…`
 * (TALLY_KERNEL_ARITY=sched_process_exit=1): how the tests run an older
 * kernel's path on a newer one, as TALLY_KERNEL_WITHOUT does for features.
 * Only ever fewer: reading an arg the kernel does not pass is refused.
 */
function pretendArity(event: string): number | undefined {
  for (const item of (process.env.TALLY_KERNEL_ARITY ?? '').split(',')) {
    const [name, n] = item.split('=');
    if (name?.trim() === event && /^\d+$/.test(n?.trim() ?? '')) return Number(n);
  }
  return undefined;
}

/** Arguments the raw tracepoint `event` passes here; -1 when the kernel's BTF has no such tracepoint. */
export function tracepointArity(event: string): number {
  let n = arities.get(event);
  if (n === undefined) {
    n = native().btfArity('tracepoint', event);
    const fewer = pretendArity(event);
    if (fewer !== undefined && n >= 0) n = Math.min(n, fewer);
    arities.set(event, n);
  }
  return n;
}

const functionArities = new Map<string, number>();

/** Arguments the kernel function `name` takes; -1 when the kernel's BTF has no such function. */
export function functionArity(name: string): number {
  let n = functionArities.get(name);
  if (n === undefined) {
    n = native().btfArity('function', name);
    functionArities.set(name, n);
  }
  return n;
}
