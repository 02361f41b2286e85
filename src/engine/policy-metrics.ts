/**
 * A running policy's metrics as the rest of tally sees them: how its
 * kernel counters are labelled, and which pending counts a namespace admits.
 */
import { createHash } from 'node:crypto';
import { CounterMetric } from '../collectors/kernel-counters';
import { LABEL_OVERFLOW, LATENCY_UNIT_LOG2 } from '../bpf/layout';
import { EXIT_STATUSES, Hook, Metric, Policy } from '../policy/model';
import { namespaceSet } from './compile';
import { namespaceId } from '../labels/namespace-id';
import { PeerTable } from '../peers/peer-table';
import { kernelLabels } from '../policy/kernel-labels';

/** For tools that label no live traffic (docs, policy check): ids decode as this table's fixed classes. */
const NO_PEERS = new PeerTable();

/** What KernelCounters needs to label a policy metric's series. */
export function counterMetric(m: Metric, id: number, hook: Hook, policy: Policy, peers: PeerTable = NO_PEERS): CounterMetric {
  const unitLog2 = m.value.kind === 'latency' ? LATENCY_UNIT_LOG2 : 0;
  const base = { id, name: m.name, help: m.help, type: m.type, unitLog2, signature: metricSignature(m, hook, policy, unitLog2) } as const;
  if (Object.keys(m.constLabels).length > 0) {
    const hookNames = policy.hooks.map((h) => h.name);
    return { ...base, labelNames: ['policy', 'hook'], labels: (l0) => ({ policy: policy.name!, hook: hookNames[Number(l0)] ?? 'unknown' }) };
  }
  if (m.labels.length === 0) return base;
  const { kernel, index } = kernelLabels(m.labels);
  const decoders = m.labels.map((l) => {
    const arg = hook.args.find((a) => a.index === l.arg);
    const signed = !l.field && arg !== undefined && /^(int|int8|int16|int32|int64|long|fd)$/.test(arg.type);
    return (v: bigint): string => {
      if (l.peer) return peers.peerOf(v)[l.peer];
      if (v === LABEL_OVERFLOW) return l.overflowValue;
      if (l.prefixes) return l.prefixes[Number(v) - 1] ?? l.overflowValue;
      if (l.field === 'exitStatus') return EXIT_STATUSES[Number(v)] ?? l.overflowValue;
      return (signed ? BigInt.asIntN(64, v) : v).toString();
    };
  });
  const peerName = (part: 'namespace' | 'service'): string | undefined => m.labels.find((l) => l.peer === part)?.name;
  const peerLabels = { namespace: peerName('namespace'), service: peerName('service') };
  const metric: CounterMetric = {
    ...base,
    ...(peerLabels.namespace !== undefined || peerLabels.service !== undefined ? { peerLabels } : {}),
    ...(kernel.some((l) => l.peer) ? { peerSlots: kernel.flatMap((l, slot) => (l.peer ? [slot] : [])) } : {}),
    labelNames: m.labels.map((l) => l.name),
    labels: (l0, l1) => {
      const out: Record<string, string> = {};
      m.labels.forEach((l, i) => (out[l.name] = decoders[i](index[i] === 0 ? l0 : l1)));
      return out;
    },
  };
  return metric;
}

/**
 * For counts a hook made pending a namespace: whether the namespace, once
 * known, satisfies one of the selectors the event waited on, as the kernel
 * would have decided (engine/compile.ts namespaceSet).
 */
export function namespaceVerdict(hook: Hook): (selectors: number, namespace: string | undefined) => boolean {
  const sets = hook.selectors.map((s) => namespaceSet(s.matchNamespaces));
  return (selectors, namespace) => {
    const id = namespaceId(namespace);
    return sets.some((set, i) => (selectors & (1 << i)) !== 0 && set !== undefined && set.ids.includes(id) === set.in);
  };
}

/**
 * What a metric's keys mean, as a short digest: its policy, type, unit, and
 * how its extra label values decode (names, arguments and their types,
 * prefixes, the hooks a const label numbers, which labels are peers). A next agent reads a previous
 * agent's keys of a metric only if their signatures agree (docs/restart.md). Peer ids are not part of
 * it: each agent numbers peers as it meets them, and a restart translates them by name (persist/translate.ts).
 */
function metricSignature(m: Metric, hook: Hook, policy: Policy, unitLog2: number): string {
  const labels = m.labels.map((l) => ({
    name: l.name, arg: l.arg, type: hook.args.find((a) => a.index === l.arg)?.type, field: l.field, prefixes: l.prefixes, overflow: l.overflowValue,
    ...(l.peer ? { peer: l.peer, peerIds: 'translated' } : {}),
  }));
  const constHooks = Object.keys(m.constLabels).length > 0 ? policy.hooks.map((h) => h.name) : [];
  const text = JSON.stringify({ policy: policy.name, name: m.name, type: m.type, unitLog2, labels, constHooks });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
