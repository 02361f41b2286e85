/**
 * How a metric's label sets roll up once it reaches its series limit
 * (docs/rollup.md): which labels are dropped, in which order, and how much
 * of the limit is kept for rolled-up series.
 *
 * Level i of the roll-up drops the first i labels of the order that are in
 * the filter; its series keep the rest, and overflow="true". Dropping the
 * last label would leave nothing to tell series apart: that is the flat
 * {overflow="true"} series, the level after the last. So a filter with n
 * roll-up labels has n-1 roll-up levels, named after the finest label each
 * keeps ("workload" keeps namespace and workload), then "flat".
 *
 * Labels outside the order (a policy metric's own labels, such as a syscall
 * name, bounded by their maxValues) are kept at every level but the flat one.
 *
 * A metric by peer (docs/peers.md) rolls up its peer labels too, finest
 * first, in a plan of its own (withPeerLabels): peer_service just before
 * workload, peer_namespace just before the last step (namespace), and
 * peer_class, like any label outside the order, only at flat. So the
 * coarsest level of such a metric is (namespace, peer_class): what egress
 * and cross-zone charge-back sum by.
 *
 * The pod labels (--metrics-pod-labels) are one step of the order,
 * `pod_labels`: they are dropped together, before pod in the default order,
 * and in the same level as pod when pod follows them (see the constructor).
 */
import { FILTER_LABELS, FilterLabel, LabelFilter, LabelFilterError } from '../labels/label-filter';
import { NO_POD_LABELS, POD_LABELS_STEP, PodLabels } from '../labels/pod-labels';

/** A step of the roll-up order: a label of the filter, or the pod labels together. */
export type RollupStep = FilterLabel | typeof POD_LABELS_STEP;
const ROLLUP_STEPS: readonly RollupStep[] = [...FILTER_LABELS, POD_LABELS_STEP];

/** The default order: the label with the most values per node first. */
export const DEFAULT_ROLLUP_ORDER: readonly RollupStep[] = ['container', POD_LABELS_STEP, 'pod', 'binary', 'workload', 'namespace'];

/**
 * The default share of the limit kept for rolled-up series, in percent:
 * label sets of their own take at most the rest. A quarter leaves a node's
 * namespaces and several hundred workloads room at the default limit of 2000.
 */
export const DEFAULT_ROLLUP_RESERVE_PERCENT = 25;

export const OVERFLOW_LABEL = 'overflow';
export const FLAT_LEVEL = 'flat';
export const OVERFLOW_LABELS: Readonly<Record<string, string>> = Object.freeze({ [OVERFLOW_LABEL]: 'true' });

/** The key of a label set: its labels in a stable order. */
export function labelKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(labels);
}

/** The flat overflow series' key. */
export const OVERFLOW_KEY = labelKey(OVERFLOW_LABELS);

/** The labels of a metric by peer that roll up in steps of their own (withPeerLabels). */
export interface PeerRollupLabels {
  /** peer_namespace's name in this metric. */
  namespace?: string;
  /** peer_service's name in this metric. */
  service?: string;
}

export class RollupPlan {
  /** The roll-up steps of the filter (and the pod labels, if any, and a metric's peer labels), in the order they are dropped. */
  readonly order: readonly string[];
  /** Level names, finest first: the finest label each level keeps. */
  readonly levels: readonly string[];
  /** Per level: the labels it drops. Made once: a read may place 100k label sets. */
  private readonly dropped: ReadonlyArray<ReadonlySet<string>>;
  private readonly inOrder: ReadonlySet<string>;
  private readonly filter: LabelFilter;
  private readonly requestedOrder: readonly RollupStep[];
  private readonly withPeers = new Map<string, RollupPlan>();

  constructor(
    filter: LabelFilter,
    order: readonly RollupStep[] = DEFAULT_ROLLUP_ORDER,
    /** Percent of the limit kept for rolled-up series. */
    readonly reservePercent = DEFAULT_ROLLUP_RESERVE_PERCENT,
    private readonly podLabels: PodLabels = NO_POD_LABELS,
    peer: PeerRollupLabels = {},
  ) {
    const steps: string[] = order.filter((l) => (l === POD_LABELS_STEP ? podLabels.size > 0 : filter.has(l)));
    // Peer steps only where there is a roll-up at all, and never last: the last step is the metric's coarsest local label.
    if (steps.length > 0 && peer.service !== undefined) steps.splice(steps.includes('workload') ? steps.indexOf('workload') : steps.length - 1, 0, peer.service);
    if (steps.length > 0 && peer.namespace !== undefined) steps.splice(steps.length - 1, 0, peer.namespace);
    this.order = steps;
    this.filter = filter;
    this.requestedOrder = order;
    // pod_labels right before pod is dropped with it: a pod's labels are the
    // pod's, so a level keeping pod without them would merge no series and
    // only spend places of the limit. Separated (pod not in the filter, or an
    // order that puts them apart), each step is a level of its own.
    const groups: string[][] = [];
    for (const step of this.order) {
      const last = groups[groups.length - 1];
      if (step === 'pod' && last?.[last.length - 1] === POD_LABELS_STEP) last.push(step);
      else groups.push([step]);
    }
    this.levels = groups.slice(1).map((g) => g[g.length - 1]);
    // A step's label names: the pod labels step stands for every pod label's.
    const names = (step: string): readonly string[] => (step === POD_LABELS_STEP ? podLabels.names : [step]);
    this.dropped = groups.map((_, level) => new Set(groups.slice(0, level + 1).flat().flatMap(names)));
    this.inOrder = new Set(this.order.flatMap(names));
  }

  /** This plan for a metric with these peer labels (one plan per distinct set of names, made once). */
  withPeerLabels(peer: PeerRollupLabels): RollupPlan {
    if (peer.namespace === undefined && peer.service === undefined) return this;
    const key = `${peer.namespace ?? ''}\0${peer.service ?? ''}`;
    let plan = this.withPeers.get(key);
    if (!plan) this.withPeers.set(key, (plan = new RollupPlan(this.filter, this.requestedOrder, this.reservePercent, this.podLabels, peer)));
    return plan;
  }

  /** No roll-up: every label set past the limit goes to the flat series, as before roll-up existed. */
  static none(): RollupPlan {
    return new RollupPlan(new LabelFilter([]), DEFAULT_ROLLUP_ORDER, 0);
  }

  /** Label sets of their own a metric may have under `limit`: the reserve is kept only if there is a level to use it. */
  ownLimit(limit: number): number {
    if (this.levels.length === 0) return limit;
    return limit - Math.floor((limit * this.reservePercent) / 100);
  }

  /**
   * The labels of a label set at level i (0-based, finest first), with
   * overflow="true"; undefined when nothing of the order is left to keep,
   * which is the flat series' place.
   */
  rolledLabels(labels: Readonly<Record<string, string>>, level: number): Record<string, string> | undefined {
    const dropped = this.dropped[level];
    const out: Record<string, string> = {};
    let kept = false;
    for (const name in labels) {
      if (dropped.has(name)) continue;
      out[name] = labels[name];
      if (this.inOrder.has(name)) kept = true;
    }
    if (!kept) return undefined;
    out[OVERFLOW_LABEL] = 'true';
    return out;
  }
}

/**
 * Parses --metrics-rollup-order: every label the filter has, each once,
 * coarsest last. pod_labels may be placed anywhere; an order that leaves it
 * out, with pod labels given, drops them just before pod (first, without pod).
 */
export function parseRollupOrder(text: string, filter: LabelFilter, podLabels: PodLabels = NO_POD_LABELS): RollupStep[] {
  const names = text.split(',').map((s) => s.trim());
  const seen: RollupStep[] = [];
  for (const n of names) {
    if (!(ROLLUP_STEPS as readonly string[]).includes(n)) {
      throw new LabelFilterError(`unknown label "${n}" in --metrics-rollup-order; valid labels: ${ROLLUP_STEPS.join(', ')}`);
    }
    if (seen.includes(n as RollupStep)) throw new LabelFilterError(`label "${n}" appears twice in --metrics-rollup-order`);
    seen.push(n as RollupStep);
  }
  if (podLabels.size > 0 && !seen.includes(POD_LABELS_STEP)) seen.splice(Math.max(0, seen.indexOf('pod')), 0, POD_LABELS_STEP);
  const missing = filter.labels.filter((l) => !seen.includes(l));
  if (missing.length > 0) {
    throw new LabelFilterError(`--metrics-rollup-order "${text}" leaves out ${missing.join(', ')}, which --metrics-label-filter has; name every label of the filter, the first dropped first`);
  }
  return seen;
}
