/**
 * The user-space side of bpf/binary.bpf.h's announcements: the kernel says
 * "binary id X is path P" once, and remembers that it did in two places
 * (tally_known_binaries and the tally_announced cache), and each CPU
 * remembers the last binary it saw announced (tally_label_set_cache).
 */
import { BPF_ANY, native, NativeBpfObject } from '../native/addon';
import { ANNOUNCED_SLOTS } from './layout';
import { forgetCpuCaches } from './cpu-cache';

/**
 * Makes the kernel forget that it announced these ids, so that the next
 * event of each binary announces its path again. For ids whose announcement
 * user space lost (a dropped delivery, or a path evicted from its cache).
 */
export function forgetAnnounced(obj: NativeBpfObject, ids: Iterable<bigint>): void {
  const known = obj.mapFd('tally_known_binaries');
  const slots = obj.mapFd('tally_announced');
  const empty = Buffer.alloc(8);
  for (const id of ids) {
    const key = Buffer.alloc(8);
    key.writeBigUInt64LE(id);
    native().mapDelete(known, key);
    const slot = Buffer.alloc(4);
    slot.writeUInt32LE(Number(id & BigInt(ANNOUNCED_SLOTS - 1)));
    // Clear the slot only if it still holds this id; another id may own it now.
    const cur = native().mapLookup(slots, slot);
    if (cur && cur.readBigUInt64LE(0) === id) native().mapUpdate(slots, slot, empty, BPF_ANY);
  }
  forgetCpuCaches(obj.mapFd('tally_label_set_cache'));
}
