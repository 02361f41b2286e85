/**
 * Tracepoint chains (bpf/chain.h): the hooks of every policy on one classic
 * tracepoint run behind one attachment of it. The kernel lets 64 perf-event
 * programs attach to a tracepoint for every tool on the host together; a
 * program per hook let one 64-hook policy lock every other tool out.
 *
 * Per tracepoint, a dispatcher (bpf/chain.bpf.c) is attached; it tail-calls
 * the chain's first hook program, and each hook program the next. A hook
 * program keeps its configuration as constants (the verifier prunes what it
 * does not use); only its place in the chain is in the maps here, so a hook
 * joins or leaves with a few map writes and nothing is reloaded.
 *
 * A chain holds TALLY_CHAIN_LENGTH hooks (the kernel follows 33 tail calls);
 * past that a tracepoint gets a second chain and dispatcher.
 *
 * A chain costs each event more than a program attached alone: 123 ns per
 * write(2) with file-writes on this host (BENCHMARKS.md), about a third of
 * the hook's cost. So the first ALONE_PER_TRACEPOINT hooks at a tracepoint
 * attach alone, as before, and only those past them run in chains: the
 * usual few hooks per tracepoint pay nothing, and tally never holds more
 * than ALONE_PER_TRACEPOINT + 1 of the kernel's 64 places per 32 hooks.
 *
 * A hook that leaves is unlinked at once (new events skip it) and its slot
 * is cleared a grace period later: an event that already read the link to
 * it still finds it, and goes on from it to the rest of the chain.
 */
import { native, NativeBpfObject, NativeProgramInfo } from '../native/addon';
import { loadObject } from '../bpf/loader';
import { bpfObjectPath } from '../util/paths';

export const CHAIN_PROGRAMS_MAP = 'tally_chain_progs';
export const CHAIN_NEXT_MAP = 'tally_chain_next';
const DISPATCHER = 'tally_dispatch';
/** Longer than any program run: events that read a removed link have left it by then. */
export const CHAIN_GRACE_MS = 100;
/** Hooks at one tracepoint that attach alone before further ones are chained. */
export const ALONE_PER_TRACEPOINT = 8;

/** The maps' writes, so that the linking logic can be tested without a kernel. */
export interface ChainMaps {
  setProgram(slot: number, programFd: number): void;
  clearProgram(slot: number): void;
  setNext(slot: number, next: number): void;
}

/** Attaches a dispatcher for `head` at a tracepoint; returns how to detach it and read its statistics. */
export type DispatcherLoader = (category: string, name: string, head: number) => Dispatcher;
export interface Dispatcher {
  close(): void;
  linkFds(): number[];
  programInfo(): NativeProgramInfo | null;
}

interface Chain {
  head: number;
  members: number[];
  dispatcher: Dispatcher;
}

export interface ChainStats {
  point: string;
  /** 1 for a point's first chain, 2 for its second, … */
  chain: number;
  info: NativeProgramInfo | null;
}

export class TracepointChains {
  private readonly free: number[] = [];
  private readonly byPoint = new Map<string, Chain[]>();
  /** Hook programs attached alone (or about to be) at each point. */
  private readonly alone = new Map<string, number>();
  /** What leave() deferred to the end of the grace period, by its timer. */
  private readonly pending = new Map<NodeJS.Timeout, () => void>();

  constructor(
    private readonly maps: ChainMaps,
    private readonly loadDispatcher: DispatcherLoader,
    slots: number,
    private readonly length: number,
    private readonly graceMs = CHAIN_GRACE_MS,
    private readonly alonePerPoint = ALONE_PER_TRACEPOINT,
  ) {
    for (let s = slots - 1; s >= 1; s--) this.free.push(s);
  }

  /**
   * Where a hook program about to load at category/name runs: 0 to attach
   * it alone (a place counted now), or a slot in a chain (its constant
   * tally_chain_slot) to join() once loaded. release() what is not used.
   */
  reserve(category: string, name: string): number {
    const point = pointOf(category, name);
    const n = this.alone.get(point) ?? 0;
    if (n < this.alonePerPoint) {
      this.alone.set(point, n + 1);
      return 0;
    }
    return this.slot();
  }

  /** Undoes reserve(); for a program attached alone, its detach. */
  release(category: string, name: string, slot: number): void {
    if (slot !== 0) {
      this.free.push(slot);
      return;
    }
    const point = pointOf(category, name);
    const n = (this.alone.get(point) ?? 0) - 1;
    if (n > 0) this.alone.set(point, n);
    else this.alone.delete(point);
  }

  private slot(): number {
    const s = this.free.pop();
    if (s === undefined) throw new Error(`every slot of the tracepoint chains is taken (${this.used()} hooks and chains); remove policies`);
    return s;
  }

  /**
   * Links a loaded hook program at the end of a chain of the tracepoint
   * category/name, starting a chain (its dispatcher attached) when none has
   * room. Throws, with nothing changed, when a new dispatcher cannot attach.
   */
  join(category: string, name: string, slot: number, programFd: number): void {
    const point = pointOf(category, name);
    const chains = this.byPoint.get(point) ?? [];
    let chain = chains.find((c) => c.members.length < this.length);
    if (!chain) {
      const head = this.slot();
      this.maps.setNext(head, 0);
      try {
        chain = { head, members: [], dispatcher: this.loadDispatcher(category, name, head) };
      } catch (e) {
        this.free.push(head);
        throw e;
      }
      chains.push(chain);
      this.byPoint.set(point, chains);
    }
    this.maps.setNext(slot, 0);
    this.maps.setProgram(slot, programFd);
    // The link to it last: an event finds the program in place.
    this.maps.setNext(chain.members.length ? chain.members[chain.members.length - 1] : chain.head, slot);
    chain.members.push(slot);
  }

  /** Unlinks a hook program; its slot is cleared and freed after the grace period. */
  leave(slot: number): void {
    for (const [point, chains] of this.byPoint) {
      for (const chain of chains) {
        const i = chain.members.indexOf(slot);
        if (i < 0) continue;
        const before = i === 0 ? chain.head : chain.members[i - 1];
        const after = chain.members[i + 1] ?? 0;
        this.maps.setNext(before, after);
        chain.members.splice(i, 1);
        const retire: number[] = [slot];
        if (chain.members.length === 0) {
          // The last hook: the dispatcher goes now (nothing left to run), its slot with the hook's.
          chain.dispatcher.close();
          retire.push(chain.head);
          chains.splice(chains.indexOf(chain), 1);
          if (chains.length === 0) this.byPoint.delete(point);
        }
        this.defer(() => {
          for (const s of retire) {
            this.maps.clearProgram(s);
            this.maps.setNext(s, 0);
            this.free.push(s);
          }
        });
        return;
      }
    }
  }

  /** Dispatchers attached at each point: the kernel attachments the chains hold. */
  attachments(): Map<string, number> {
    return new Map([...this.byPoint].map(([p, cs]) => [p, cs.length]));
  }

  /** Hook programs the chains run at each point. */
  hooks(): Map<string, number> {
    return new Map([...this.byPoint].map(([p, cs]) => [p, cs.reduce((n, c) => n + c.members.length, 0)]));
  }

  /** Each dispatcher's statistics: the kernel times a chain's run whole, from its dispatcher. */
  stats(): ChainStats[] {
    return [...this.byPoint].flatMap(([point, cs]) => cs.map((c, i) => ({ point, chain: i + 1, info: c.dispatcher.programInfo() })));
  }

  /** The dispatchers' links, to pin at a handover (docs/restart.md). */
  linkFds(): number[] {
    return [...this.byPoint.values()].flat().flatMap((c) => c.dispatcher.linkFds());
  }

  /** Runs what leave() deferred, now. */
  flush(): void {
    const due = [...this.pending];
    this.pending.clear();
    for (const [t, f] of due) {
      clearTimeout(t);
      f();
    }
  }

  /** Detaches every dispatcher. */
  close(): void {
    this.flush();
    for (const chains of this.byPoint.values()) for (const c of chains) c.dispatcher.close();
    this.byPoint.clear();
  }

  private used(): number {
    return [...this.byPoint.values()].flat().reduce((n, c) => n + 1 + c.members.length, 0);
  }

  private defer(f: () => void): void {
    const t = setTimeout(() => {
      this.pending.delete(t);
      f();
    }, this.graceMs);
    t.unref();
    this.pending.set(t, f);
  }
}

export function pointOf(category: string, name: string): string {
  return `tracepoint:${category}:${name}`;
}

/**
 * The chains of this process, on the kernel: both maps created here, hook
 * objects share them (reuseMaps), and each dispatcher is an instance of
 * bpf/chain.bpf.o.
 */
export function kernelChains(opts: { kernelBtfPath?: string; alonePerPoint?: number } = {}): { chains: TracepointChains; reuseMaps: Record<string, number>; programArrayFd: number; close(): void } {
  const addon = native();
  const { slots, length } = addon.layout.chain;
  const progs = addon.arrayMapCreate(CHAIN_PROGRAMS_MAP, 4, slots, true);
  const next = addon.arrayMapCreate(CHAIN_NEXT_MAP, 4, slots);
  const maps: ChainMaps = {
    setProgram: (slot, fd) => addon.mapUpdate(progs, u32(slot), u32(fd)),
    clearProgram: (slot) => void addon.mapDelete(progs, u32(slot)),
    setNext: (slot, n) => addon.mapUpdate(next, u32(slot), u32(n)),
  };
  const reuseMaps = { [CHAIN_PROGRAMS_MAP]: progs, [CHAIN_NEXT_MAP]: next };
  const load: DispatcherLoader = (category, name, head) => {
    const loaded = loadObject({
      objectPath: bpfObjectPath('chain'),
      hooks: [{ hook: pointOf(category, name), candidates: [{ programs: [{ name: DISPATCHER, target: { kind: 'tracepoint', category, name } }], constants: { tally_chain_head: u32(head) } }] }],
      reuseMaps,
      kernelBtfPath: opts.kernelBtfPath,
    });
    const h = loaded.hooks[0];
    if (!h.program) {
      loaded.object.close();
      const r = h.refused[h.refused.length - 1];
      throw Object.assign(new Error(`attaching the chain's dispatcher to ${category}/${name}: ${r?.reason ?? 'refused'}`), { code: r?.code, errno: r?.errno });
    }
    const obj: NativeBpfObject = loaded.object;
    return { close: () => obj.close(), linkFds: () => obj.linkFds(), programInfo: () => obj.programInfo(DISPATCHER) };
  };
  const chains = new TracepointChains(maps, load, slots, length, CHAIN_GRACE_MS, opts.alonePerPoint);
  return {
    chains,
    reuseMaps,
    programArrayFd: progs,
    close: () => {
      chains.close();
      addon.closeFd(progs);
      addon.closeFd(next);
    },
  };
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
