/**
 * Learning binary paths from the kernel's announcements (bpf/binary.bpf.h):
 * the ring buffer that delivers them, and what a read does about ids it
 * meets before their path.
 */
import { native, NativeBpfObject, NativeRingBuffer } from '../native/addon';
import { forgetAnnounced } from '../bpf/binary-announcements';
import { CounterEntry } from '../bpf/counter-store';
import { ANNOUNCED_SLOTS, decodeBinaryEvent } from '../bpf/layout';
import { BinaryPaths } from '../labels/binary-paths';
import { Logger } from '../util/log';

export class BinaryAnnouncements {
  private readonly ring: NativeRingBuffer;
  /** Ids asked to be announced again, so a scrape waits for each only once. */
  private readonly reannounced = new Set<bigint>();

  constructor(
    private readonly core: NativeBpfObject,
    private readonly binaries: BinaryPaths,
    private readonly log: Logger,
  ) {
    this.ring = new (native().RingBuffer)(core.mapFd('tally_binary_events'), (records) => {
      for (const r of records) binaries.learn(decodeBinaryEvent(r));
    });
  }

  /**
   * Before entries are labelled: an announcement may still be on its way
   * from the ring-buffer thread (the kernel announces a binary just before
   * counting its first event). Deliveries run in a later turn of the event
   * loop: wait for them, briefly. Ids still unknown after that are asked for
   * again.
   */
  async awaitPaths(entries: CounterEntry[]): Promise<void> {
    for (let waited = 0; waited < 50 && this.unknown(entries).length > 0; waited += 2) {
      await new Promise((r) => setTimeout(r, 2));
    }
    this.reannounce(this.unknown(entries));
  }

  /** Binary ids in the counters whose path user space does not know (and has not asked for yet). */
  private unknown(entries: CounterEntry[]): bigint[] {
    const ids = new Set<bigint>();
    for (const e of entries) {
      const id = e.key.binaryId;
      if (id > 1n && !this.binaries.has(id) && !this.reannounced.has(id)) ids.add(id);
    }
    return [...ids];
  }

  /**
   * An id the kernel believes announced but user space never learned (a
   * dropped delivery, or evicted from the path cache): forget it in the
   * kernel, so the next event of that binary announces its path again.
   */
  private reannounce(ids: bigint[]): void {
    if (ids.length === 0) return;
    if (this.reannounced.size > 4 * ANNOUNCED_SLOTS) this.reannounced.clear();
    forgetAnnounced(this.core, ids);
    for (const id of ids) this.reannounced.add(id);
    this.log.debug('asked the kernel to announce binaries again', { count: ids.length });
  }

  stats(): { delivered: number; dropped: number; failedErrno: number } {
    return this.ring.stats();
  }

  close(): void {
    this.ring.close();
  }
}
