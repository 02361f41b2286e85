/**
 * Where an object's classic tracepoint programs run (src/engine/tracepoint-chains.ts):
 * attached alone, or in a chain behind a dispatcher. One per load attempt:
 * places are taken before load (a chained program's slot is one of its
 * constants), joined at attach, and given back when the attempt is given
 * up or the object closes.
 */
import { AttachTarget, NativeBpfObject } from '../native/addon';

/** A program that can run in a chain: its name, tracepoint, and the `const volatile` that holds its slot. */
export interface ChainableProgram {
  name: string;
  target?: AttachTarget;
  chainSlot?: string;
}

/** Where chained programs go (TracepointChains): slot 0 attaches alone. */
export interface ChainJoiner {
  reserve(category: string, name: string): number;
  release(category: string, name: string, slot: number): void;
  join(category: string, name: string, slot: number, programFd: number): void;
  leave(slot: number): void;
}

type Tracepoint = Extract<AttachTarget, { kind: 'tracepoint' }>;

export class ChainPlaces {
  private readonly places = new Map<string, { tp: Tracepoint; slot: number }>();
  private readonly joined = new Set<number>();

  /** Takes a place for each chainable program, and sets its slot constant in the object (before load). */
  constructor(
    private readonly chains: ChainJoiner | undefined,
    programs: readonly ChainableProgram[],
    obj: Pick<NativeBpfObject, 'setConstant'>,
  ) {
    if (!chains) return;
    for (const p of programs) {
      if (!p.chainSlot || p.target?.kind !== 'tracepoint') continue;
      const slot = chains.reserve(p.target.category, p.target.name);
      this.places.set(p.name, { tp: p.target, slot });
      obj.setConstant(p.chainSlot, u32(slot));
    }
  }

  /** Whether the program runs in a chain rather than attached where it runs. */
  chained(program: string): boolean {
    return (this.places.get(program)?.slot ?? 0) !== 0;
  }

  /** Joins the program's chain; false when it is not chained (the caller attaches it). */
  join(program: string, obj: Pick<NativeBpfObject, 'programFd'>): boolean {
    const place = this.places.get(program);
    if (!place || place.slot === 0) return false;
    this.chains!.join(place.tp.category, place.tp.name, place.slot, obj.programFd(program));
    this.joined.add(place.slot);
    return true;
  }

  /** Gives every place back: a slot joined is left, one not joined freed, a place alone given up. Idempotent. */
  giveBack(): void {
    for (const { tp, slot } of this.places.values()) {
      if (this.joined.has(slot)) this.chains!.leave(slot);
      else this.chains!.release(tp.category, tp.name, slot);
    }
    this.places.clear();
    this.joined.clear();
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
