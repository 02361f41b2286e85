/**
 * Which cgroups of the v2 hierarchy have been removed, and when.
 *
 * The kernel reports each removal (bpf/cgroup_events.bpf.c) on a ring buffer.
 * If that hook cannot attach, or the ring buffer overflowed, removals are
 * found by asking whether each cgroup id still resolves (rescan()), so
 * staleness degrades to slower, never to wrong.
 */
import { LRUCache } from 'lru-cache';
import { native, NativeRingBuffer } from '../native/addon';
import { loadObject, LoadedObject } from '../bpf/loader';
import { describeHook } from '../bpf/hook-report';
import { CGROUP_EVENT } from '../bpf/layout';
import { bpfObjectPath } from '../util/paths';
import { bssMap } from '../bpf/bss';
import { Logger } from '../util/log';

export const CGROUP_EVENTS_OBJECT = 'cgroup_events';

interface Removal {
  /** ms since the epoch */
  at: number;
  /** Unknown when found by a rescan. */
  path?: string;
  /** When it was last asked about (ms since the epoch, as of the last sweep or report). */
  lastAskedMs: number;
}

export class CgroupRemovals {
  readonly loaded?: LoadedObject;
  /** Removals reported by the kernel, and removals found by rescans. */
  reported = 0;
  rescanned = 0;
  private readonly removed: LRUCache<bigint, Removal>;
  private readonly ring?: NativeRingBuffer;
  private lastKernelDrops = 0n;
  /** fd of the object's .bss (tally_cgroup_event_drops), found once. */
  private bssFd?: number;
  /**
   * The time as of the last report or sweep: what a lookup stamps on a
   * removal. Coarse on purpose, a sweep's resolution is all forgetIdle needs,
   * and it spares a clock read per lookup (a sweep makes one per mapped cgroup).
   */
  private clockMs = Date.now();

  constructor(
    private readonly mountDir: string,
    capacity: number,
    log: Logger,
    kernelBtfPath?: string,
  ) {
    this.removed = new LRUCache<bigint, Removal>({ max: capacity });
    try {
      this.loaded = loadObject({
        objectPath: bpfObjectPath(CGROUP_EVENTS_OBJECT),
        hooks: [{ hook: 'cgroup_rmdir', candidates: ['rmdir_btf', 'rmdir_raw', 'rmdir_tp'] }],
        kernelBtfPath,
      });
      this.bssFd = bssMap(this.loaded.object)?.fd;
      const [h] = this.loaded.hooks;
      if (h.program) {
        log.info('hook attached', { object: CGROUP_EVENTS_OBJECT, detail: describeHook(h) });
        this.ring = new (native().RingBuffer)(this.loaded.object.mapFd('tally_cgroup_events'), (records) => {
          const now = (this.clockMs = Date.now());
          for (const r of records) {
            const end = r.indexOf(0, CGROUP_EVENT.path);
            const path = r.toString('utf8', CGROUP_EVENT.path, end < 0 ? r.length : end);
            this.removed.set(r.readBigUInt64LE(CGROUP_EVENT.cgroup_id), { at: now, path: path.startsWith('/') ? path : undefined, lastAskedMs: now });
            this.reported++;
          }
        });
      } else {
        log.warn('cgroup removals will be found by rescanning', { object: CGROUP_EVENTS_OBJECT, detail: describeHook(h) });
      }
    } catch (e) {
      log.warn('cgroup removals will be found by rescanning', { object: CGROUP_EVENTS_OBJECT, error: (e as Error).message });
    }
  }

  /** When the cgroup was removed (ms since the epoch), or undefined if it lives. */
  removedAt(id: bigint): number | undefined {
    return this.asked(id)?.at;
  }

  /**
   * Where a removed cgroup was (relative to the v2 root), as the kernel
   * reported at its removal; null when its removal is known but not where
   * (found by a rescan), undefined when no removal is known.
   */
  removedPath(id: bigint): string | null | undefined {
    const r = this.asked(id);
    return r ? (r.path ?? null) : undefined;
  }

  /** A removal, stamped as asked about now; the LRU order is then the order of last asking. */
  private asked(id: bigint): Removal | undefined {
    const r = this.removed.get(id);
    if (r) r.lastAskedMs = this.clockMs;
    return r;
  }

  /**
   * Forgets removals nothing has asked about since idleSinceMs: those of
   * cgroups the agent never counted for, and those whose late events have
   * stopped. Without it the memory kept the last 65,536 removals of the host.
   */
  forgetIdle(idleSinceMs: number, now: number): void {
    this.clockMs = now;
    const idle: bigint[] = [];
    for (const id of this.removed.rkeys()) {
      // Least recently asked first; peek leaves the order as it is.
      if (this.removed.peek(id)!.lastAskedMs >= idleSinceMs) break;
      idle.push(id);
    }
    for (const id of idle) this.removed.delete(id);
  }

  /** True when events may have been missed and ids should be checked one by one. */
  needsRescan(): boolean {
    if (!this.ring) return true;
    const drops = this.kernelDrops();
    if (drops === this.lastKernelDrops && this.ring.stats().dropped === 0) return false;
    this.lastKernelDrops = drops;
    return true;
  }

  /** Marks every id that no longer resolves to a cgroup as removed now. */
  rescan(ids: Iterable<bigint>): void {
    const now = Date.now();
    for (const id of ids) {
      if (this.removed.has(id) || id === 0n) continue;
      if (native().cgroupPath(this.mountDir, id) === null) {
        this.removed.set(id, { at: now, lastAskedMs: now });
        this.rescanned++;
      }
    }
  }

  /** Removal events the kernel could not queue. */
  kernelDrops(): bigint {
    if (this.bssFd === undefined) return 0n;
    const v = native().mapLookup(this.bssFd, Buffer.alloc(4));
    return v ? v.readBigUInt64LE(0) : 0n;
  }

  get attached(): boolean {
    return this.ring !== undefined;
  }

  close(): void {
    this.ring?.close();
    this.loaded?.object.close();
  }
}
