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
 */
import { FILTER_LABELS, FilterLabel, LabelFilter, LabelFilterError } from '../labels/label-filter';

/** The default order: the label with the most values per node first. */
export const DEFAULT_ROLLUP_ORDER: readonly FilterLabel[] = ['container', 'pod', 'binary', 'workload', 'namespace'];

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

export class RollupPlan {
  /** The roll-up labels of the filter, in the order they are dropped. */
  readonly order: readonly FilterLabel[];
  /** Level names, finest first: the finest label each level keeps. */
  readonly levels: readonly string[];
  /** Per level: the labels it drops. Made once: a read may place 100k label sets. */
  private readonly dropped: ReadonlyArray<ReadonlySet<string>>;
  private readonly inOrder: ReadonlySet<string>;

  constructor(
    filter: LabelFilter,
    order: readonly FilterLabel[] = DEFAULT_ROLLUP_ORDER,
    /** Percent of the limit kept for rolled-up series. */
    readonly reservePercent = DEFAULT_ROLLUP_RESERVE_PERCENT,
  ) {
    this.order = order.filter((l) => filter.has(l));
    this.levels = this.order.slice(1);
    this.dropped = this.order.map((_, level) => new Set(this.order.slice(0, level + 1)));
    this.inOrder = new Set(this.order);
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

/** Parses --metrics-rollup-order: every label the filter has, each once, coarsest last. */
export function parseRollupOrder(text: string, filter: LabelFilter): FilterLabel[] {
  const names = text.split(',').map((s) => s.trim());
  const seen: FilterLabel[] = [];
  for (const n of names) {
    if (!(FILTER_LABELS as readonly string[]).includes(n)) {
      throw new LabelFilterError(`unknown label "${n}" in --metrics-rollup-order; valid labels: ${FILTER_LABELS.join(', ')}`);
    }
    if (seen.includes(n as FilterLabel)) throw new LabelFilterError(`label "${n}" appears twice in --metrics-rollup-order`);
    seen.push(n as FilterLabel);
  }
  const missing = filter.labels.filter((l) => !seen.includes(l));
  if (missing.length > 0) {
    throw new LabelFilterError(`--metrics-rollup-order "${text}" leaves out ${missing.join(', ')}, which --metrics-label-filter has; name every label of the filter, the first dropped first`);
  }
  return seen;
}
