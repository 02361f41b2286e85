/**
 * Promoted counters, the user-space side (bpf/tally_types.h,
 * bpf/counters.bpf.h). A key promoted here is counted by the kernel in a
 * plain array at the key's position in tally_fast_index, found with inlined
 * loads, instead of through a call into the kernel's hash-table code: on a
 * rare hook (an exec, a retransmit) that code and its bookkeeping are cold,
 * and the call cost more than everything else the program does.
 *
 * Keys are promoted from tally_counters once they have been counted there,
 * so the hash stays the one place new keys appear; the hash entry stays as
 * it was and its count is read beside the promoted one. A promoted key's
 * count is its position's total over CPUs minus the total when it was
 * promoted: the kernel never resets a counter, so nothing here needs to
 * write a counter a program may be adding to.
 *
 * Retiring a key (its label set went stale, its metric was undefined) clears
 * its entry, so the kernel counts it in the hash again, and keeps the
 * position for one more sweep: a program that found the entry just before
 * may still be adding. What it adds is reported then, as a late count, and
 * only after that may another key take the position.
 */
import { native } from '../native/addon';
import { CounterKey, encodeFastEntry, FAST_PROBES, FAST_SLOTS } from './layout';
import { CounterEntry, counterKeyId } from './counter-store';
import { tallyMix as mix } from './tally-mix';

const MAX_TRIES_PER_CALL = 1024;
const MAX_BLOCKED = 65_536;

/** tally_fast_hash() of bpf/counters.bpf.h. */
export function fastHash(k: CounterKey): bigint {
  const tail = BigInt(k.metric) | (BigInt(k.flags) << 32n) | (BigInt(k.bucket ?? 0) << 48n);
  return mix(k.cgroupId ^ mix(k.binaryId ^ mix((k.label0 ?? 0n) ^ mix((k.label1 ?? 0n) ^ mix(tail)))));
}


/** Each position's total over CPUs, read when first asked for: see snapshot(). */
export type Totals = () => Float64Array;

interface Position {
  key: CounterKey;
  id: string;
  pos: number;
  /** The position's total over CPUs when the key was promoted. */
  base: number;
  /** Set once retired: the sweep it was retired in, what the key had counted then, and whether late counts mean nothing (its metric is gone). */
  retired?: { sweep: number; counted: number; dropLate: boolean };
}

export class PromotedCounters {
  private readonly positions: (Position | undefined)[] = new Array(FAST_SLOTS);
  private readonly byId = new Map<string, Position>();
  /** Keys that found both positions taken: not tried again until one frees. */
  private readonly blocked = new Set<string>();
  private sweeps = 0;

  constructor(
    private readonly indexFd: number,
    private readonly countersFd: number,
  ) {}

  /** Keys promoted and not retired. */
  get size(): number {
    return this.byId.size;
  }

  /** The keys promoted and not retired. */
  keys(): CounterKey[] {
    return [...this.byId.values()].map((p) => p.key);
  }

  has(key: CounterKey): boolean {
    return this.byId.has(counterKeyId(key));
  }

  /**
   * A read of totals() made at most once, and only if asked for: a sweep
   * passes one to each step, so it reads every CPU's array once at most.
   */
  snapshot(): Totals {
    let read: Float64Array | undefined;
    return () => (read ??= this.totals());
  }

  /** Each position's total over CPUs: one read of every CPU's array. */
  private totals(): Float64Array {
    const dump = native().mapLookupAll(this.countersFd);
    const out = new Float64Array(FAST_SLOTS);
    for (let cpu = 0; cpu < dump.count; cpu++) {
      const at = cpu * dump.valueStride;
      for (let p = 0; p < FAST_SLOTS; p++) {
        const o = at + p * 8;
        out[p] += dump.values.readUInt32LE(o + 4) * 4294967296 + dump.values.readUInt32LE(o);
      }
    }
    return out;
  }

  /** What each promoted key has counted since it was promoted. */
  entries(totals: Totals = this.snapshot()): CounterEntry[] {
    if (this.byId.size === 0) return [];
    const t = totals();
    return [...this.byId.values()].map((p) => ({ key: p.key, value: t[p.pos] - p.base }));
  }

  private write(pos: number, key: CounterKey, check: bigint): void {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(pos);
    native().mapUpdate(this.indexFd, k, encodeFastEntry(key, check));
  }

  /**
   * Promotes keys that are not yet, while their positions are free; returns
   * how many it promoted. The entry is written twice, check last: a program
   * reads check first, and an entry without it is no entry. At most
   * MAX_TRIES_PER_CALL keys are tried per call, and a key that found both its
   * positions taken is not tried again until a position frees, so a sweep
   * over 100k keys with a full array costs little.
   */
  promote(keys: CounterKey[], totals: Totals = this.snapshot()): number {
    // Bounded under churn: keys long gone from the hash are forgotten with the rest.
    if (this.blocked.size >= MAX_BLOCKED) this.blocked.clear();
    let tries = 0;
    let promoted = 0;
    for (const key of keys) {
      if (tries >= MAX_TRIES_PER_CALL) break;
      const id = counterKeyId(key);
      if (this.byId.has(id) || this.blocked.has(id)) continue;
      tries++;
      const h = fastHash(key);
      let placed = false;
      for (let i = 0; i < FAST_PROBES && !placed; i++) {
        const pos = Number((h + BigInt(i)) & BigInt(FAST_SLOTS - 1));
        if (this.positions[pos]) continue;
        const p: Position = { key, id, pos, base: totals()[pos] };
        this.write(pos, key, 0n);
        this.write(pos, key, h | 1n);
        this.positions[pos] = p;
        this.byId.set(id, p);
        promoted++;
        placed = true;
      }
      if (!placed) this.blocked.add(id);
    }
    return promoted;
  }

  /**
   * Retires a key: from now on the kernel counts it in the hash. Returns
   * what it counted while promoted (0 if it was not), as of totals, read
   * after the key was promoted (what comes after it is reported late). dropLate: its metric is undefined, and its id may be
   * reused, so what comes late is no one's.
   */
  retire(key: CounterKey, totals: Totals, dropLate = false): number {
    const p = this.byId.get(counterKeyId(key));
    if (!p) return 0;
    const pos = p.pos;
    this.write(pos, { cgroupId: 0n, binaryId: 0n, metric: 0, flags: 0 }, 0n);
    this.byId.delete(p.id);
    const counted = totals()[pos] - p.base;
    p.retired = { sweep: this.sweeps, counted, dropLate };
    return counted;
  }

  /**
   * Retires every key at once (a handover, docs/restart.md), then reads,
   * after settle, what each counted while promoted: one read after every
   * program that found a key promoted has finished adding, so nothing comes
   * late. Every position is free afterwards; what came late to keys
   * retired earlier goes to late(), as sweep() would.
   */
  async retireAll(settle: () => Promise<void>, late: (key: CounterKey, n: number) => void): Promise<CounterEntry[]> {
    const promoted = [...this.byId.values()];
    for (const p of promoted) this.write(p.pos, { cgroupId: 0n, binaryId: 0n, metric: 0, flags: 0 }, 0n);
    await settle();
    const t = this.totals();
    for (const p of this.positions) {
      if (!p?.retired) continue;
      const after = t[p.pos] - p.base - p.retired.counted;
      if (after > 0 && !p.retired.dropLate) late(p.key, after);
    }
    const out = promoted.map((p) => ({ key: p.key, value: t[p.pos] - p.base }));
    for (const p of promoted) this.byId.delete(p.id);
    this.positions.fill(undefined);
    this.blocked.clear();
    return out;
  }

  /** Metrics undefined: keys of theirs retired earlier report nothing late either (their ids may be reused). */
  dropMetrics(ids: Set<number>): void {
    for (const p of this.positions) if (p?.retired && ids.has(p.key.metric)) p.retired.dropLate = true;
  }

  /**
   * Frees the positions retired in an earlier sweep; late(key, n) gets what
   * was added to a key after it was retired.
   */
  sweep(late: (key: CounterKey, n: number) => void, totals: Totals = this.snapshot()): void {
    const sweep = ++this.sweeps;
    for (let pos = 0; pos < FAST_SLOTS; pos++) {
      const p = this.positions[pos];
      if (!p?.retired || p.retired.sweep >= sweep - 1) continue;
      const after = totals()[pos] - p.base - p.retired.counted;
      if (after > 0 && !p.retired.dropLate) late(p.key, after);
      this.positions[pos] = undefined;
      this.blocked.clear();
    }
  }
}
