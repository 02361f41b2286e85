/** What /proc says about a process's memory and descriptors, for the memory benchmark. */
import * as fs from 'node:fs';

export interface ProcMemory {
  rssMiB: number;
  /** The peak RSS since the process started (VmHWM). */
  peakMiB: number;
  anonMiB: number;
  fileMiB: number;
}

function kB(status: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export function procMemory(pid: number): ProcMemory {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssMiB: kB(s, 'VmRSS'), peakMiB: kB(s, 'VmHWM'), anonMiB: kB(s, 'RssAnon'), fileMiB: kB(s, 'RssFile') };
}

/**
 * The process's descriptors by kind: BPF maps, programs, links, BTF, perf
 * events, sockets, pipes, files. A kind is the link's target with numbers
 * dropped ("anon_inode:bpf-map", "socket", "/dev/null").
 */
export function fdKinds(pid: number): Map<string, number> {
  const kinds = new Map<string, number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const kind = target.replace(/:\[\d+\]$/, '').replace(/^anon_inode:\[(.*)\]$/, 'anon_inode:$1');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return kinds;
}

/**
 * Resident anonymous memory by where it lives: glibc's main heap ([heap]),
 * the arenas of other threads (64 MiB-aligned mappings glibc makes for
 * them), and the rest (V8's heap pages, mmapped blocks, thread stacks).
 */
export function anonByRegion(pid: number): { mallocMainMiB: number; mallocThreadArenasMiB: number; otherAnonMiB: number } {
  const HEAP_ALIGN = 64n * 1024n * 1024n;
  let main = 0;
  let arenas = 0;
  let other = 0;
  let region: { start: bigint; name: string } | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      region = { start: BigInt(`0x${head[1]}`), name: head[2] };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (!rss || !region) continue;
    const kb = Number(rss[1]);
    if (region.name === '[heap]') main += kb;
    else if (region.name === '' && region.start % HEAP_ALIGN === 0n && region.start >= 0x7f0000000000n) arenas += kb;
    else if (region.name === '') other += kb;
  }
  return { mallocMainMiB: main / 1024, mallocThreadArenasMiB: arenas / 1024, otherAnonMiB: other / 1024 };
}
