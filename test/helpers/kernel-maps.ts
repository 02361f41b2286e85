/**
 * An independent look at the agent's kernel maps through bpftool, so tests
 * can assert what the kernel holds, not only what the agent reports.
 */
import { execFileSync } from 'node:child_process';
import { mapIdsOf } from './procfs';

function bpftoolJson<T>(...args: string[]): T {
  return JSON.parse(execFileSync('bpftool', [...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 })) as T;
}

/** The id of the map the process holds under this name (the kernel keeps 15 characters of it). */
export function mapIdByName(pid: number, name: string): number | undefined {
  for (const id of mapIdsOf(pid)) if (bpftoolJson<{ name: string }>('map', 'show', 'id', String(id)).name === name.slice(0, 15)) return id;
  return undefined;
}

export interface RawCounter {
  cgroupId: bigint;
  binaryId: bigint;
  metric: number;
  flags: number;
  /** Histograms: the log2 bucket (0xffff: the sum). */
  bucket: number;
  /** Summed over CPUs. */
  value: bigint;
}

const le = (bytes: string[], at: number, n: number): bigint => {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(parseInt(bytes[at + i], 16));
  return v;
};

/** The agent's tally_counters map, decoded from raw bytes (layout of bpf/tally_types.h). */
export function kernelCounters(pid: number): RawCounter[] {
  const id = mapIdByName(pid, 'tally_counters');
  if (id === undefined) throw new Error(`process ${pid} holds no tally_counters map`);
  const dump = bpftoolJson<Array<{ key: string[]; values: Array<{ value: string[] }> }>>('map', 'dump', 'id', String(id));
  return dump.map((e) => ({
    cgroupId: le(e.key, 0, 8),
    binaryId: le(e.key, 8, 8),
    metric: Number(le(e.key, 32, 4)),
    flags: Number(le(e.key, 36, 2)),
    bucket: Number(le(e.key, 38, 2)),
    value: e.values.reduce((a, v) => a + le(v.value, 0, 8), 0n),
  }));
}

/** The agent's tally_cgroup_label_sets map: cgroup id -> label-set id. */
export function kernelLabelSets(pid: number): Map<bigint, number> {
  const id = mapIdByName(pid, 'tally_cgroup_label_sets');
  if (id === undefined) throw new Error(`process ${pid} holds no tally_cgroup_label_sets map`);
  const dump = bpftoolJson<Array<{ key: string[]; value: string[] }>>('map', 'dump', 'id', String(id));
  return new Map(dump.map((e) => [le(e.key, 0, 8), Number(le(e.value, 0, 4))]));
}

export interface PromotedEntry {
  /** Position in tally_fast_index, and in each CPU's tally_fast_counters. */
  pos: number;
  cgroupId: bigint;
  binaryId: bigint;
  metric: number;
  flags: number;
  bucket: number;
}

/** The keys the agent has promoted: tally_fast_index's entries with check set (layout of bpf/tally_types.h). */
export function kernelPromoted(pid: number): PromotedEntry[] {
  const id = mapIdByName(pid, 'tally_fast_index');
  if (id === undefined) throw new Error(`process ${pid} holds no tally_fast_index map`);
  const dump = bpftoolJson<Array<{ key: string[]; value: string[] }>>('map', 'dump', 'id', String(id));
  return dump
    .filter((e) => le(e.value, 40, 8) !== 0n)
    .map((e) => ({
      pos: Number(le(e.key, 0, 4)),
      cgroupId: le(e.value, 0, 8),
      binaryId: le(e.value, 8, 8),
      metric: Number(le(e.value, 32, 4)),
      flags: Number(le(e.value, 36, 2)),
      bucket: Number(le(e.value, 38, 2)),
    }));
}

/** What the kernel has added at a position of tally_fast_counters, summed over CPUs. */
export function kernelPromotedCount(pid: number, pos: number): bigint {
  const id = mapIdByName(pid, 'tally_fast_counters');
  if (id === undefined) throw new Error(`process ${pid} holds no tally_fast_counters map`);
  const dump = bpftoolJson<Array<{ key: string[]; value: string[] }>>('map', 'dump', 'id', String(id));
  return dump.reduce((a, e) => a + le(e.value, pos * 8, 8), 0n);
}
