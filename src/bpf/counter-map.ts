/**
 * Reads the kernel's counter map (tally_counters, bpf/counters.bpf.h) in
 * batches and sums each entry's per-CPU values.
 */
import { BPF_ANY, native } from '../native/addon';
import { COUNTER_KEY_SIZE, decodeCounterKey, encodeCounterKey, KEY_OVERFLOW, sumPerCpu } from './layout';
import { CounterEntry } from './counter-store';

export type { CounterEntry } from './counter-store';


/**
 * Sum of a per-CPU u64 value as a Number, without BigInt arithmetic (which
 * dominated reading 100k entries). Exact while the sum stays below 2^53,
 * which a byte counter reaches after 9 PB.
 */
export function sumPerCpuNumber(values: Buffer, offset: number, stride: number): number {
  let total = 0;
  for (let o = offset; o < offset + stride; o += 8) total += values.readUInt32LE(o + 4) * 4294967296 + values.readUInt32LE(o);
  return total;
}

export interface CounterDump {
  entries: CounterEntry[];
  batched: boolean;
}

export function readCounterMap(fd: number): CounterDump {
  const dump = native().mapLookupAll(fd);
  if (dump.keySize !== COUNTER_KEY_SIZE) throw new Error(`counter map key is ${dump.keySize} bytes, expected ${COUNTER_KEY_SIZE}`);
  const entries: CounterEntry[] = new Array(dump.count);
  for (let i = 0; i < dump.count; i++) {
    entries[i] = {
      key: decodeCounterKey(dump.keys, i * dump.keySize),
      value: sumPerCpuNumber(dump.values, i * dump.valueStride, dump.valueStride),
    };
  }
  return { entries, batched: dump.batched };
}

/**
 * Creates a metric's overflow entry (in tally_overflow) before any program
 * runs, so an update that finds the counter map full always has somewhere to go.
 */
export function seedOverflowKey(fd: number, metric: number, bucket = 0): Buffer {
  const info = native().mapInfo(fd);
  const key = encodeCounterKey({ cgroupId: 0n, binaryId: 0n, metric, flags: KEY_OVERFLOW, bucket });
  native().mapUpdate(fd, key, Buffer.alloc(info.valueStride), BPF_ANY);
  return key;
}

/** The per-CPU u64 array tally_stats, summed per index. */
export function readStatsArray(fd: number): bigint[] {
  const dump = native().mapLookupAll(fd);
  const out: bigint[] = [];
  for (let i = 0; i < dump.count; i++) {
    out[dump.keys.readUInt32LE(i * dump.keySize)] = sumPerCpu(dump.values, i * dump.valueStride, dump.valueStride);
  }
  return out;
}
