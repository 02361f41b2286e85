/**
 * The label filter (--metrics-label-filter): which labels series carry. A
 * label outside the filter is absent from every series, and the kernel does
 * not key by it either (binary), so filtering saves map entries, not just
 * label values.
 */

/** Every label the filter can name, in the order series print them. */
export const FILTER_LABELS = ['namespace', 'workload', 'pod', 'container', 'binary'] as const;
export type FilterLabel = (typeof FILTER_LABELS)[number];

/** container is optional: one series per container multiplies cardinality. */
export const DEFAULT_LABEL_FILTER: readonly FilterLabel[] = ['namespace', 'workload', 'pod', 'binary'];

export class LabelFilterError extends Error {}

/** Parses "namespace,workload" into an ordered, de-duplicated list (LabelFilter.parse compiles it). */
export function parseLabelFilter(text: string): FilterLabel[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.length === 1 && names[0] === '') {
    throw new LabelFilterError(`--metrics-label-filter is empty; valid labels: ${FILTER_LABELS.join(', ')}`);
  }
  const seen = new Set<FilterLabel>();
  for (const n of names) {
    if (n === '') throw new LabelFilterError(`--metrics-label-filter "${text}" has an empty entry; separate labels with single commas`);
    if (!(FILTER_LABELS as readonly string[]).includes(n)) {
      throw new LabelFilterError(`unknown label "${n}" in --metrics-label-filter; valid labels: ${FILTER_LABELS.join(', ')}`);
    }
    if (seen.has(n as FilterLabel)) throw new LabelFilterError(`label "${n}" appears twice in --metrics-label-filter`);
    seen.add(n as FilterLabel);
  }
  return FILTER_LABELS.filter((l) => seen.has(l));
}

/** Label values for one series: only labels that are in the filter and non-empty. */
export type LabelValues = Partial<Record<FilterLabel, string>>;

export function applyFilter(filter: readonly FilterLabel[], values: LabelValues): LabelValues {
  const out: LabelValues = {};
  for (const l of filter) {
    const v = values[l];
    if (v !== undefined && v !== '') out[l] = v;
  }
  return out;
}

/**
 * The filter compiled once, at startup, into the questions the rest of tally
 * asks of it: what the kernel keys by (load-time switches of every counting
 * object), what a cgroup's labels keep, and what the labeler waits for.
 */
export class LabelFilter {
  /** The labels, in the order series print them. */
  readonly labels: readonly FilterLabel[];
  /** namespace, workload, pod and container: all derive from the cgroup. */
  readonly cgroupLabels: readonly FilterLabel[];
  /** The kernel keys counters by executable (binary in the filter). */
  readonly keyByBinary: boolean;
  /** The kernel keys counters by cgroup (some cgroup-derived label in the filter). */
  readonly keyByCgroup: boolean;

  constructor(labels: readonly FilterLabel[]) {
    this.labels = FILTER_LABELS.filter((l) => labels.includes(l));
    this.cgroupLabels = this.labels.filter((l) => l !== 'binary');
    this.keyByBinary = this.labels.includes('binary');
    this.keyByCgroup = this.cgroupLabels.length > 0;
  }

  static parse(text: string): LabelFilter {
    return new LabelFilter(parseLabelFilter(text));
  }

  has(label: FilterLabel): boolean {
    return this.labels.includes(label);
  }

  /** A cgroup's label values as its series carry them: only cgroup-derived labels in the filter, and non-empty. */
  cgroupValues(values: LabelValues): Record<string, string> {
    return applyFilter(this.cgroupLabels, values) as Record<string, string>;
  }

  toString(): string {
    return this.labels.join(',');
  }
}

/** Every label: the widest filter, for loading a program that must verify under any. */
export const WIDEST_LABEL_FILTER = new LabelFilter(FILTER_LABELS);
