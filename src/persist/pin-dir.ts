/**
 * The pin directory (--bpf-pin-dir, docs/restart.md) on disk:
 *
 *   DIR/maps/NAME   the previous agent's counter maps (tally_counters,
 *                   tally_overflow) and tally_epoch, which says whose
 *                   programs count
 *   DIR/links/N     its programs' links: they keep counting while no agent runs
 *   DIR/state       its handover state (state.ts), in an array map: written
 *                   last, so without it the handover did not finish
 *
 * A bpffs holds only pins and directories, hence the state in a map.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native/addon';
import { Found } from './compat';
import { decodeState, encodeState, HandoverState, StateError } from './state';

/** Bytes per entry of the state map; entry 0 holds the blob's length, the next ones the blob. */
const CHUNK = 4096;

/** The maps a next agent reads. */
export const PINNED_MAPS = ['tally_counters', 'tally_overflow', 'tally_epoch'] as const;
export type PinnedMap = (typeof PINNED_MAPS)[number];

export class PinDir {
  constructor(readonly dir: string) {}

  private get statePath(): string {
    return path.join(this.dir, 'state');
  }

  mapPath(name: PinnedMap): string {
    return path.join(this.dir, 'maps', name);
  }

  private get linksDir(): string {
    return path.join(this.dir, 'links');
  }

  /** Checks that the directory is in a bpffs (or can be made in one); throws an error naming the flag otherwise. */
  checkBpffs(): void {
    const parent = fs.existsSync(this.dir) ? this.dir : path.dirname(this.dir);
    let type: number;
    try {
      type = Number(fs.statfsSync(parent).type);
    } catch (e) {
      throw new Error(`--bpf-pin-dir ${this.dir}: ${(e as Error).message}; give a directory in a BPF file system (mount -t bpf bpf /sys/fs/bpf)`);
    }
    if (type !== BPF_FS_MAGIC) throw new Error(`--bpf-pin-dir ${this.dir}: ${parent} is not in a BPF file system; give a directory under one (usually /sys/fs/bpf/tally)`);
  }

  /** What the directory holds. */
  read(): Found {
    if (!fs.existsSync(this.statePath)) {
      const leftovers = this.list();
      return leftovers.length === 0 ? { kind: 'empty' } : { kind: 'unreadable', reason: `${this.dir} holds pins (${leftovers.slice(0, 3).join(', ')}) but no state: the previous agent did not finish its handover` };
    }
    let fd: number | undefined;
    try {
      fd = native().objGet(this.statePath);
      const info = native().mapInfo(fd);
      if (info.type !== 'array' || info.valueSize !== CHUNK || info.keySize !== 4) throw new StateError(`${this.statePath}: a ${info.type} map with ${info.keySize}-byte keys and ${info.valueSize}-byte values, not a tally state`);
      const len = native().mapLookup(fd, u32(0))!.readUInt32LE(0);
      if (len > (info.maxEntries - 1) * CHUNK) throw new StateError(`${this.statePath}: says ${len} bytes, holds ${(info.maxEntries - 1) * CHUNK}`);
      const chunks: Buffer[] = [];
      for (let i = 1; i * CHUNK - CHUNK < len; i++) chunks.push(native().mapLookup(fd, u32(i))!);
      return { kind: 'state', state: decodeState(Buffer.concat(chunks).subarray(0, len), this.statePath) };
    } catch (e) {
      return { kind: 'unreadable', reason: (e as Error).message };
    } finally {
      if (fd !== undefined) native().closeFd(fd);
    }
  }

  /** A new fd for a pinned map, or undefined when it is not there. */
  openMap(name: PinnedMap): number | undefined {
    return fs.existsSync(this.mapPath(name)) ? native().objGet(this.mapPath(name)) : undefined;
  }

  /** Unpins the previous agent's links: each was the last reference, so its program stops and detaches. */
  detachLinks(): number {
    let n = 0;
    for (const f of fs.existsSync(this.linksDir) ? fs.readdirSync(this.linksDir) : []) {
      fs.unlinkSync(path.join(this.linksDir, f));
      n++;
    }
    return n;
  }

  /**
   * Removes every pin, links first (their programs stop counting), then the
   * maps and the state, then the directory. Returns what it removed.
   */
  clear(): string[] {
    const removed: string[] = [];
    if (!fs.existsSync(this.dir)) return removed;
    for (const sub of ['links', 'maps']) {
      const d = path.join(this.dir, sub);
      if (!fs.existsSync(d)) continue;
      for (const f of fs.readdirSync(d)) {
        fs.unlinkSync(path.join(d, f));
        removed.push(path.join(sub, f));
      }
      fs.rmdirSync(d);
    }
    if (fs.existsSync(this.statePath)) {
      fs.unlinkSync(this.statePath);
      removed.push('state');
    }
    const rest = fs.readdirSync(this.dir);
    if (rest.length > 0) throw new Error(`${this.dir} also holds ${rest.join(', ')}, which tally did not pin there; it left them, and the directory`);
    fs.rmdirSync(this.dir);
    return removed;
  }

  /** Pins the maps and links, then the state: a next agent finds all or (no state) none of it usable. */
  write(state: HandoverState, maps: Record<PinnedMap, number>, links: number[]): void {
    fs.mkdirSync(path.join(this.dir, 'maps'), { recursive: true });
    fs.mkdirSync(this.linksDir, { recursive: true });
    for (const name of PINNED_MAPS) native().objPin(maps[name], this.mapPath(name));
    links.forEach((fd, i) => native().objPin(fd, path.join(this.linksDir, String(i))));
    this.writeState(state);
  }

  /** Pins the state (replacing one there): what marks the handover finished. */
  writeState(state: HandoverState): void {
    if (fs.existsSync(this.statePath)) fs.unlinkSync(this.statePath);
    const blob = encodeState(state);
    const n = Math.ceil(blob.length / CHUNK);
    const fd = native().arrayMapCreate('tally_state', CHUNK, n + 1);
    try {
      const head = Buffer.alloc(CHUNK);
      head.writeUInt32LE(blob.length, 0);
      native().mapUpdate(fd, u32(0), head);
      for (let i = 0; i < n; i++) {
        const chunk = Buffer.alloc(CHUNK);
        blob.copy(chunk, 0, i * CHUNK, Math.min(blob.length, (i + 1) * CHUNK));
        native().mapUpdate(fd, u32(i + 1), chunk);
      }
      native().objPin(fd, this.statePath);
    } finally {
      native().closeFd(fd);
    }
  }

  private list(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs.readdirSync(this.dir, { recursive: true }).map(String).filter((f) => !fs.statSync(path.join(this.dir, f)).isDirectory());
  }
}

/** statfs(2)'s f_type of a BPF file system. */
const BPF_FS_MAGIC = 0xcafe4a11;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
