/**
 * The previous agent's keys in this agent's terms (docs/restart.md): its
 * metric ids become this agent's ids for the same metric (same name, type
 * and signature), its label-set ids this agent's ids for the same labels,
 * and the peer ids in the keys of a metric by peer this agent's ids for the
 * same peers (each agent numbers peers as it meets them).
 * A key that cannot be read so is dropped and counted, never misread.
 */
import { CounterEntry, counterKeyId } from '../bpf/counter-store';
import { CounterKey, KEY_LABEL_SET, KEY_RAW_CGROUP } from '../bpf/layout';
import { HandoverState } from './state';

export interface TranslateTarget {
  /** This agent's id for a metric, if it defines one with this name, type and signature. */
  metricId(name: string, type: 'counter' | 'histogram', signature: string): number | undefined;
  /** This agent's label-set id for these labels (interned if new). */
  labelSetId(key: string, labels: Record<string, string>): number;
  /** Which of this agent's metric's two key label values hold peer ids (0: label0, 1: label1). */
  peerSlots(metricId: number): readonly number[];
  /** This agent's id for a peer, by its name (PeerTable.peerNames); undefined if it cannot give one. */
  peerId(name: string): number | undefined;
}

export interface Translated {
  entries: CounterEntry[];
  /** Overflow counts gained since the state was written: [metric, bucket, count]. */
  overflow: [number, number, number][];
  /** Counts that could not be read in this agent's terms: a metric it does not define alike, a namespace-pending key. */
  dropped: number;
}

export function translate(state: HandoverState, entries: CounterEntry[], overflow: CounterEntry[], target: TranslateTarget): Translated {
  const metric = new Map<number, number | undefined>();
  for (const m of state.metrics) metric.set(m.id, target.metricId(m.name, m.type, m.signature));
  const labelSets = new Map(state.labelSets.map((l) => [l.id, l]));
  const entryBase = new Map(state.entryBase);
  // A raw cgroup the previous agent knew the labels of counts as its label set: this agent may not resolve it (removed meanwhile).
  const cgroupSet = new Map(state.cgroups.map(([cgroup, labelSet]) => [BigInt(cgroup), labelSet]));
  const out: Translated = { entries: [], overflow: [], dropped: 0 };
  for (const raw of entries) {
    // Only what came after the previous agent's last read: the carry holds the rest.
    const e = { key: raw.key, value: raw.value - (entryBase.get(counterKeyId(raw.key)) ?? 0) };
    if (e.value <= 0) continue;
    const id = metric.get(e.key.metric);
    let cgroupId = e.key.cgroupId;
    let ok = id !== undefined && (e.key.flags === KEY_RAW_CGROUP || e.key.flags === KEY_LABEL_SET);
    let flags = e.key.flags;
    const known = e.key.flags === KEY_RAW_CGROUP ? cgroupSet.get(e.key.cgroupId) : undefined;
    if (ok && (e.key.flags === KEY_LABEL_SET || known !== undefined)) {
      const ls = labelSets.get(known ?? Number(e.key.cgroupId));
      if (ls) {
        cgroupId = BigInt(target.labelSetId(ls.key, ls.labels));
        flags = KEY_LABEL_SET;
      } else {
        ok = false;
      }
    }
    const labels = ok ? peersTranslated(e.key, target.peerSlots(id!), state.peers, target) : undefined;
    if (!ok || labels === undefined) {
      out.dropped += e.value;
      continue;
    }
    out.entries.push({ key: { ...e.key, ...labels, metric: id!, cgroupId, flags }, value: e.value });
  }
  return withOverflow(state, overflow, metric, out);
}

/** The key's label values with each peer id the writer gave made this agent's; undefined if one cannot be. */
function peersTranslated(key: CounterKey, slots: readonly number[], peers: readonly string[] | undefined, target: TranslateTarget): Pick<CounterKey, 'label0' | 'label1'> | undefined {
  const out: Pick<CounterKey, 'label0' | 'label1'> = {};
  for (const slot of slots) {
    const field = slot === 0 ? 'label0' : 'label1';
    const name = peers?.[Number(key[field] ?? 0n)];
    const id = name === undefined ? undefined : target.peerId(name);
    if (id === undefined) return undefined;
    out[field] = BigInt(id);
  }
  return out;
}

function withOverflow(state: HandoverState, overflow: CounterEntry[], metric: Map<number, number | undefined>, out: Translated): Translated {
  const base = new Map(state.overflowBase.map((o) => [`${o.metric}:${o.bucket}`, o.value]));
  for (const e of overflow) {
    const gained = e.value - (base.get(`${e.key.metric}:${e.key.bucket ?? 0}`) ?? 0);
    if (gained <= 0) continue;
    const id = metric.get(e.key.metric);
    if (id === undefined) out.dropped += gained;
    else out.overflow.push([id, e.key.bucket ?? 0, gained]);
  }
  return out;
}
