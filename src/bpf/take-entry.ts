/**
 * Reads and deletes one entry of a hash map, for retiring a series.
 *
 * BPF_MAP_LOOKUP_AND_DELETE_ELEM does it in one syscall, under the bucket's
 * lock, but the kernel accepts it on hash maps only from 5.14 (before, only
 * on queues and stacks: ENOTSUPP). On 5.10 every sweep failed on it, so no
 * series ever retired and no cgroup was folded into its label set.
 *
 * There, a lookup and then a delete do the same in two syscalls. That is
 * safe for the same reason the one-syscall form is: the sweep takes an entry
 * only once nothing should write it (README, "Kernel and user space never
 * race": its cgroup was remapped a sweep earlier and every CPU made to look
 * the mapping up again, or its value has not moved since the last sweep).
 * An event that broke that rule would be lost either way, between the copy
 * and the delete; the two syscalls only widen that window by microseconds.
 */
import { isNativeError, native } from '../native/addon';

/** Whether this kernel takes an entry in one syscall; learnt from its first answer. */
let atomic: boolean | undefined;

/** True once the kernel refused the one-syscall form and takes fall back to lookup-then-delete. */
export function takesFallBack(): boolean {
  return atomic === false;
}

/** Test hook: forces the lookup-then-delete path (true) or lets the kernel decide again (undefined). */
export function forceTakeFallback(fallback: boolean | undefined): void {
  atomic = fallback === undefined ? undefined : !fallback;
}

/** The entry's value (all CPUs' for a per-CPU map), deleted; null if absent. */
export function takeEntry(fd: number, key: Buffer): Buffer | null {
  if (atomic !== false) {
    try {
      const value = native().mapLookupAndDelete(fd, key);
      atomic = true;
      return value;
    } catch (e) {
      // ENOTSUPP before 5.14; EINVAL where a kernel rejects the command's flags.
      if (atomic === true || !isNativeError(e) || (e.code !== 'ENOTSUPP' && e.code !== 'EINVAL')) throw e;
      atomic = false;
    }
  }
  const value = native().mapLookup(fd, key);
  if (value) native().mapDelete(fd, key);
  return value;
}
