/**
 * What an agent leaves for the next one in its pin directory
 * (docs/restart.md): the tables that give meaning to the keys of its pinned
 * counter map, and the series it exported last. Stored gzip'ed JSON in a
 * pinned array map (a bpffs holds no plain files), written last at stop:
 * a pin directory without it is a handover that never finished.
 *
 * Pure: encode, decode and validate, with errors that say what is wrong
 * where; src/persist/pin-dir.ts does the I/O.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

/** Bumped whenever the meaning of a field changes: a state of another format is never read. */
export const STATE_FORMAT = 1;

export interface CarriedSeries {
  key: string;
  labels: Record<string, string>;
  value: number;
  /** Histograms: [bucket, count] pairs. */
  buckets?: [number, number][];
}

export interface StateMetric {
  /** The id the previous agent's programs count it under. */
  id: number;
  name: string;
  type: 'counter' | 'histogram';
  /** What its keys' extra label values mean: equal signatures decode alike (CounterMetric.signature). */
  signature: string;
}

export interface HandoverState {
  format: number;
  /** layoutStamp() of the agent that wrote it: the shape of every key and value in the pinned maps. */
  layout: string;
  /** The tally version that wrote it, for the log. */
  version: string;
  /** The writer's tally_owner_epoch: its programs count while tally_epoch holds it. */
  epoch: number;
  /** When the writer stopped (ms since the epoch). */
  stoppedAt: number;
  /** --metrics-label-filter of the writer, as LabelFilter.toString(). */
  labelFilter: string;
  metrics: StateMetric[];
  /** Label-set id -> its key and labels, as the writer interned them (keys flagged TALLY_KEY_LABEL_SET). */
  labelSets: { id: number; key: string; labels: Record<string, string> }[];
  /** The cgroups the writer had mapped to label sets: [cgroup id, label-set id, namespace id] (ids decimal but the label set's). */
  cgroups: [string, number, string][];
  /** Binary id (decimal) -> path, for keys counted by binary. */
  binaries: [string, string][];
  /** Per family name: its series as the writer's last read showed them, after it took their counts out of the kernel. */
  carry: { name: string; type: 'counter' | 'histogram'; series: CarriedSeries[] }[];
  /** What each counter entry the carry includes held at that read, by counterKeyId: the reader counts only what came after. */
  entryBase: [string, number][];
  /** What each overflow entry (metric id, bucket) held at that read: the reader counts only what came after. */
  overflowBase: { metric: number; bucket: number; value: number }[];
  /**
   * The writer's peer table, in id order (PeerTable.peerNames): what the peer
   * ids in its keys of metrics by peer mean. Absent from a writer before it
   * was kept: those keys are then dropped, as before.
   */
  peers?: string[];
}

/**
 * The shape of everything in the pinned maps, as this build compiled it:
 * two agents with one stamp read each other's keys and values alike.
 */
export function layoutStamp(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify({ format: STATE_FORMAT, ...parts }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).digest('hex').slice(0, 16);
}

export function encodeState(s: HandoverState): Buffer {
  return gzipSync(Buffer.from(JSON.stringify(s)));
}

export class StateError extends Error {}

/** Decodes and checks a state; throws StateError naming the first field that is wrong. */
export function decodeState(bytes: Buffer, where: string): HandoverState {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(bytes).toString('utf8'));
  } catch (e) {
    throw new StateError(`${where}: not a tally handover state (${(e as Error).message}); \`tally state clear\` removes it`);
  }
  const bad = (field: string, want: string): never => {
    throw new StateError(`${where}: field ${field} should be ${want}; \`tally state clear\` removes it`);
  };
  if (!isObject(raw)) return bad('(top)', 'an object');
  const s = raw as Record<string, unknown>;
  if (s.format !== STATE_FORMAT) throw new StateError(`${where}: state format ${String(s.format)}, this tally reads format ${STATE_FORMAT}`);
  for (const f of ['layout', 'version', 'labelFilter'] as const) if (typeof s[f] !== 'string') bad(f, 'a string');
  for (const f of ['epoch', 'stoppedAt'] as const) if (!isCount(s[f])) bad(f, 'a non-negative integer');
  for (const f of ['metrics', 'labelSets', 'cgroups', 'binaries', 'carry', 'entryBase', 'overflowBase'] as const) if (!Array.isArray(s[f])) bad(f, 'a list');
  (s.metrics as unknown[]).forEach((m, i) => {
    if (!isObject(m) || !isCount(m.id) || typeof m.name !== 'string' || !isType(m.type) || typeof m.signature !== 'string') bad(`metrics[${i}]`, '{id, name, type, signature}');
  });
  (s.labelSets as unknown[]).forEach((l, i) => {
    if (!isObject(l) || !isCount(l.id) || l.id === 0 || typeof l.key !== 'string' || !isLabels(l.labels)) bad(`labelSets[${i}]`, '{id > 0, key, labels}');
  });
  (s.cgroups as unknown[]).forEach((c, i) => {
    if (!Array.isArray(c) || c.length !== 3 || !isDecimal(c[0]) || !isCount(c[1]) || c[1] === 0 || !isDecimal(c[2])) bad(`cgroups[${i}]`, '[decimal cgroup id, label-set id > 0, decimal namespace id]');
  });
  (s.binaries as unknown[]).forEach((b, i) => {
    if (!Array.isArray(b) || b.length !== 2 || typeof b[0] !== 'string' || !/^\d+$/.test(b[0]) || typeof b[1] !== 'string') bad(`binaries[${i}]`, '[decimal id, path]');
  });
  (s.carry as unknown[]).forEach((c, i) => {
    if (!isObject(c) || typeof c.name !== 'string' || !isType(c.type) || !Array.isArray(c.series)) return bad(`carry[${i}]`, '{name, type, series}');
    (c.series as unknown[]).forEach((x, j) => {
      const ok = isObject(x) && typeof x.key === 'string' && isLabels(x.labels) && isCount(x.value) && (x.buckets === undefined || (Array.isArray(x.buckets) && x.buckets.every((p) => Array.isArray(p) && p.length === 2 && isCount(p[0]) && isCount(p[1]))));
      if (!ok) bad(`carry[${i}].series[${j}]`, '{key, labels, value >= 0, buckets?: [[bucket, count]]}');
    });
  });
  (s.entryBase as unknown[]).forEach((e, i) => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !isCount(e[1])) bad(`entryBase[${i}]`, '[key id, value]');
  });
  (s.overflowBase as unknown[]).forEach((o, i) => {
    if (!isObject(o) || !isCount(o.metric) || !isCount(o.bucket) || !isCount(o.value)) bad(`overflowBase[${i}]`, '{metric, bucket, value}');
  });
  if (s.peers !== undefined && !(Array.isArray(s.peers) && s.peers.every((x) => typeof x === 'string'))) bad('peers', 'a list of peer names');
  return s as unknown as HandoverState;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isDecimal(v: unknown): boolean {
  return typeof v === 'string' && /^\d+$/.test(v);
}
function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
function isType(v: unknown): boolean {
  return v === 'counter' || v === 'histogram';
}
function isLabels(v: unknown): boolean {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}
