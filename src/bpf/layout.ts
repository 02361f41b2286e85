/**
 * Decoders for the plain C types of bpf/tally_types.h. Offsets are written
 * out here for speed, and checked once against what the addon compiled from
 * the header itself (checkLayout), so a change on one side cannot go unseen.
 */
import { native } from '../native/addon';

export const COUNTER_KEY_SIZE = 40;
const KEY = { cgroup_id: 0, binary_id: 8, labels: 16, metric: 32, flags: 36, bucket: 38 } as const;

export const BINARY_EVENT = { size: 1296, binary_id: 0, path_len: 8, truncated: 12, path: 16 } as const;
export const CGROUP_EVENT = { size: 520, cgroup_id: 0, path: 8 } as const;

export const KEY_RAW_CGROUP = 0;
export const KEY_OVERFLOW = 1;
export const KEY_LABEL_SET = 2;
/** A policy hook's event whose owner's namespace decides, later, whether it counts: see pendingSelectors(). */
export const KEY_NS_PENDING = 4;
const KEY_PENDING_SHIFT = 8;

/** The selectors a namespace-pending key still waits on (a bit per selector), or 0 for any other key. */
export function pendingSelectors(k: CounterKey): number {
  return k.flags & KEY_NS_PENDING ? k.flags >> KEY_PENDING_SHIFT : 0;
}

/** Key of tally_peers (struct tally_peer_key): a prefix length, then an IPv6 address (IPv4 as ::ffff:a.b.c.d). */
export const PEER_KEY = { size: 20, prefixlen: 0, addr: 4 } as const;
/** The peer id of an address no entry of tally_peers matches. */
export const PEER_UNKNOWN = 0;

/** Value of tally_cgroup_label_sets (struct tally_cgroup_mapping). */
const MAPPING = { size: 16, label_set: 0, namespace_id: 8 } as const;

/** struct tally_label_set_cache (one cache line). */
const LS_CACHE = { size: 64, generation: 0 } as const;

/**
 * Arrays with one entry per possible CPU, which programs find by CPU number
 * (cheaper on a cold hook than a per-CPU array): the loader sizes them.
 */
export const CPU_INDEXED_MAPS: readonly string[] = ['tally_label_set_cache', 'tally_pol_scratch', 'tally_fast_counters'];

export const LABEL_SET_CACHE_GENERATION = LS_CACHE.generation;

/** One CPU's entry of tally_label_set_cache: this generation, and the rest zero (nothing remembered). */
export function encodeLabelSetCache(generation: bigint): Buffer {
  const b = Buffer.alloc(LS_CACHE.size);
  b.writeBigUInt64LE(generation, LS_CACHE.generation);
  return b;
}

export function encodeCgroupMapping(labelSet: number, namespaceId: bigint): Buffer {
  const b = Buffer.alloc(MAPPING.size);
  b.writeUInt32LE(labelSet, MAPPING.label_set);
  b.writeBigUInt64LE(namespaceId, MAPPING.namespace_id);
  return b;
}

export const BINARY_NONE = 1n;
/** Histogram buckets: bucket i counts values in (2^(i-1), 2^i]; bucket 0 counts 1. */
export const BUCKETS = 64;
/** The bucket field of a histogram's zero bucket (values of exactly 0). */
export const BUCKET_ZERO = 0xfffe;
/** Latency histograms count in units of 2^LATENCY_UNIT_LOG2 seconds. */
export const LATENCY_UNIT_LOG2 = -30;
/** The bucket field of a histogram's sum entry. */
export const BUCKET_SUM = 0xffff;
/** An extra label's value past its cap, or when no prefix matched. */
export const LABEL_OVERFLOW = 0xffffffffffffffffn;

/** Slots of the kernel's tally_announced cache. */
export const ANNOUNCED_SLOTS = 1024;

/** Positions of tally_fast_index, and how many from a key's hash it may sit at (tally_types.h). */
export const FAST_SLOTS = 4096;
export const FAST_PROBES = 2;
/** struct tally_fast_entry: a promoted key, and its hash with the low bit set once valid. */
const FAST_ENTRY = { size: 64, key: 0, check: 40 } as const;

export function encodeFastEntry(key: CounterKey, check: bigint): Buffer {
  const b = Buffer.alloc(FAST_ENTRY.size);
  encodeCounterKey(key).copy(b, FAST_ENTRY.key);
  b.writeBigUInt64LE(check, FAST_ENTRY.check);
  return b;
}


/** Indexes of the kernel's tally_stats array. */
export const KernelStat = {
  mapFull: 0,
  lost: 1,
  binaryEventDrops: 2,
  pathTruncated: 3,
  count: 4,
} as const;

export interface CounterKey {
  cgroupId: bigint;
  binaryId: bigint;
  metric: number;
  flags: number;
  /** A policy metric's extra label values (0n when unused). */
  label0?: bigint;
  label1?: bigint;
  /** Histograms: the log2 bucket, BUCKET_ZERO or BUCKET_SUM. */
  bucket?: number;
}

/**
 * Small u64s as shared BigInts: a read decodes four per entry of 100k, and
 * most are small (label-set ids, binary ids, label values, zeros). Making a
 * new BigInt for each was most of the time a read spent decoding.
 */
const SMALL_BIGINTS = 1 << 16;
const smallBigInts: bigint[] = [];

function readU64(buf: Buffer, offset: number): bigint {
  const lo = buf.readUInt32LE(offset);
  const hi = buf.readUInt32LE(offset + 4);
  if (hi === 0 && lo < SMALL_BIGINTS) return (smallBigInts[lo] ??= BigInt(lo));
  return buf.readBigUInt64LE(offset);
}

export function decodeCounterKey(buf: Buffer, offset: number): CounterKey {
  return {
    cgroupId: readU64(buf, offset + KEY.cgroup_id),
    binaryId: readU64(buf, offset + KEY.binary_id),
    metric: buf.readUInt32LE(offset + KEY.metric),
    flags: buf.readUInt16LE(offset + KEY.flags),
    label0: readU64(buf, offset + KEY.labels),
    label1: readU64(buf, offset + KEY.labels + 8),
    bucket: buf.readUInt16LE(offset + KEY.bucket),
  };
}

export function encodeCounterKey(k: CounterKey): Buffer {
  const buf = Buffer.alloc(COUNTER_KEY_SIZE);
  buf.writeBigUInt64LE(k.cgroupId, KEY.cgroup_id);
  buf.writeBigUInt64LE(k.binaryId, KEY.binary_id);
  buf.writeBigUInt64LE(k.label0 ?? 0n, KEY.labels);
  buf.writeBigUInt64LE(k.label1 ?? 0n, KEY.labels + 8);
  buf.writeUInt32LE(k.metric, KEY.metric);
  buf.writeUInt16LE(k.flags, KEY.flags);
  buf.writeUInt16LE(k.bucket ?? 0, KEY.bucket);
  return buf;
}

/** Sum of a per-CPU u64 value: one slot of 8 bytes per possible CPU. */
export function sumPerCpu(values: Buffer, offset: number, stride: number): bigint {
  let total = 0n;
  for (let o = offset; o < offset + stride; o += 8) total += values.readBigUInt64LE(o);
  return total;
}

export interface BinaryEvent {
  binaryId: bigint;
  path: string;
  truncated: boolean;
}

/** The kernel writes path components leaf first, each NUL-terminated. */
export function decodeBinaryEvent(buf: Buffer): BinaryEvent {
  const binaryId = buf.readBigUInt64LE(BINARY_EVENT.binary_id);
  const len = Math.min(buf.readUInt32LE(BINARY_EVENT.path_len), buf.length - BINARY_EVENT.path);
  const truncated = buf.readUInt32LE(BINARY_EVENT.truncated) !== 0;
  const raw = buf.subarray(BINARY_EVENT.path, BINARY_EVENT.path + len).toString('utf8');
  const parts = raw.split('\0').filter((p) => p.length > 0);
  parts.reverse();
  return { binaryId, path: (truncated ? '…/' : '/') + parts.join('/'), truncated };
}

/** Throws if the addon's view of tally_types.h differs from this file's. */
export function checkLayout(): void {
  const l = native().layout;
  const want: Array<[string, number, number]> = [
    ['counter key size', l.counterKey.size, COUNTER_KEY_SIZE],
    ['counter key cgroup_id', l.counterKey.cgroup_id, KEY.cgroup_id],
    ['counter key binary_id', l.counterKey.binary_id, KEY.binary_id],
    ['counter key labels', l.counterKey.labels, KEY.labels],
    ['counter key metric', l.counterKey.metric, KEY.metric],
    ['counter key bucket', l.counterKey.bucket, KEY.bucket],
    ['counter key flags', l.counterKey.flags, KEY.flags],
    ['binary event size', l.binaryEvent.size, BINARY_EVENT.size],
    ['binary event path_len', l.binaryEvent.path_len, BINARY_EVENT.path_len],
    ['binary event truncated', l.binaryEvent.truncated, BINARY_EVENT.truncated],
    ['binary event path', l.binaryEvent.path, BINARY_EVENT.path],
    ['cgroup event size', l.cgroupEvent.size, CGROUP_EVENT.size],
    ['cgroup event cgroup_id', l.cgroupEvent.cgroup_id, CGROUP_EVENT.cgroup_id],
    ['cgroup event path', l.cgroupEvent.path, CGROUP_EVENT.path],
    ['cgroup mapping size', l.cgroupMapping.size, MAPPING.size],
    ['cgroup mapping label_set', l.cgroupMapping.label_set, MAPPING.label_set],
    ['cgroup mapping namespace_id', l.cgroupMapping.namespace_id, MAPPING.namespace_id],
    ['label-set cache size', l.labelSetCache.size, LS_CACHE.size],
    ['label-set cache generation', l.labelSetCache.generation, LS_CACHE.generation],
    ['TALLY_KEY_NS_PENDING', Number(l.constants.TALLY_KEY_NS_PENDING), KEY_NS_PENDING],
    ['TALLY_KEY_PENDING_SHIFT', Number(l.constants.TALLY_KEY_PENDING_SHIFT), KEY_PENDING_SHIFT],
    ['TALLY_KEY_OVERFLOW', Number(l.constants.TALLY_KEY_OVERFLOW), KEY_OVERFLOW],
    ['TALLY_BUCKETS', Number(l.constants.TALLY_BUCKETS), BUCKETS],
    ['TALLY_BUCKET_SUM', Number(l.constants.TALLY_BUCKET_SUM), BUCKET_SUM],
    ['TALLY_BUCKET_ZERO', Number(l.constants.TALLY_BUCKET_ZERO), BUCKET_ZERO],
    ['TALLY_LATENCY_SHIFT', Number(l.constants.TALLY_LATENCY_SHIFT), -LATENCY_UNIT_LOG2],
    ['TALLY_KEY_LABEL_SET', Number(l.constants.TALLY_KEY_LABEL_SET), KEY_LABEL_SET],
    ['TALLY_STAT__COUNT', Number(l.constants.TALLY_STAT__COUNT), KernelStat.count],
    ['TALLY_STAT_MAP_FULL', Number(l.constants.TALLY_STAT_MAP_FULL), KernelStat.mapFull],
    ['TALLY_STAT_LOST', Number(l.constants.TALLY_STAT_LOST), KernelStat.lost],
    ['TALLY_STAT_BINARY_EVENT_DROPS', Number(l.constants.TALLY_STAT_BINARY_EVENT_DROPS), KernelStat.binaryEventDrops],
    ['TALLY_STAT_PATH_TRUNCATED', Number(l.constants.TALLY_STAT_PATH_TRUNCATED), KernelStat.pathTruncated],
    ['TALLY_ANNOUNCED_SLOTS', Number(l.constants.TALLY_ANNOUNCED_SLOTS), ANNOUNCED_SLOTS],
    ['TALLY_FAST_SLOTS', Number(l.constants.TALLY_FAST_SLOTS), FAST_SLOTS],
    ['TALLY_FAST_PROBES', Number(l.constants.TALLY_FAST_PROBES), FAST_PROBES],
    ['fast entry size', l.fastEntry.size, FAST_ENTRY.size],
    ['fast entry key', l.fastEntry.key, FAST_ENTRY.key],
    ['fast entry check', l.fastEntry.check, FAST_ENTRY.check],
    ['peer key size', l.peerKey.size, PEER_KEY.size],
    ['peer key prefixlen', l.peerKey.prefixlen, PEER_KEY.prefixlen],
    ['peer key addr', l.peerKey.addr, PEER_KEY.addr],
    ['TALLY_PEER_UNKNOWN', Number(l.constants.TALLY_PEER_UNKNOWN), PEER_UNKNOWN],
  ];
  const bad = want.filter(([, got, expected]) => got !== expected);
  if (bad.length > 0) {
    throw new Error(
      'bpf/tally_types.h and src/bpf/layout.ts disagree: ' +
        bad.map(([what, got, expected]) => `${what} is ${got} in C, ${expected} in TypeScript`).join('; '),
    );
  }
  if (l.constants.TALLY_BINARY_NONE !== BINARY_NONE) throw new Error('TALLY_BINARY_NONE differs between C and TypeScript');
}
