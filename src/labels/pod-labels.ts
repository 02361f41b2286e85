/**
 * --metrics-pod-labels: the Kubernetes pod labels that series carry, as
 * labels of their own (docs/pod-labels.md). Each entry is a pod label key,
 * optionally renamed: `app.kubernetes.io/name` is exported as
 * app_kubernetes_io_name, `team=owner_team` as owner_team.
 *
 * A Kubernetes key may hold `.`, `-` and `/`, which a Prometheus label name
 * may not; they become `_`. Two keys can then meet in one name, or a key can
 * land on a label tally sets itself (namespace, pod, …): either is refused at
 * startup, naming both and the rename that fixes it, because a series would
 * otherwise carry one of two values with nothing to say which.
 */
import { FILTER_LABELS } from './label-filter';

export class PodLabelsError extends Error {}

/** One allowlisted pod label: its key in Kubernetes and its name on series. */
export interface PodLabel {
  key: string;
  name: string;
}

/** Labels tally puts on series itself, and why: a pod label may not take their names. */
export const OWN_LABELS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(FILTER_LABELS.map((l) => [l, `tally's own label (--metrics-label-filter)`])),
  node: 'the label tally keeps for the node',
  overflow: 'the label tally marks rolled-up series with',
  le: 'the label Prometheus names histogram buckets with',
  quantile: 'the label Prometheus names summary quantiles with',
};

/** The roll-up order's name for the pod labels, dropped together (rollup-plan.ts). */
export const POD_LABELS_STEP = 'pod_labels';

const PROM_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Kubernetes: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
const KUBE_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const KUBE_PREFIX = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function isKubeLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  if (slash < 0) return KUBE_NAME.test(key);
  return KUBE_PREFIX.test(key.slice(0, slash)) && KUBE_NAME.test(key.slice(slash + 1));
}

/** A Kubernetes label key as a Prometheus label name: every other character becomes `_`, a leading digit gets one before it. */
export function sanitizeLabelName(key: string): string {
  const name = key.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

function readEntry(entry: string): PodLabel {
  const eq = entry.indexOf('=');
  const key = (eq < 0 ? entry : entry.slice(0, eq)).trim();
  const renamed = eq < 0 ? undefined : entry.slice(eq + 1).trim();
  if (!isKubeLabelKey(key)) {
    throw new PodLabelsError(`--metrics-pod-labels: "${key}" is not a Kubernetes label key (an optional DNS prefix and "/", then up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`);
  }
  const name = renamed ?? sanitizeLabelName(key);
  if (!PROM_NAME.test(name) || name.startsWith('__')) {
    throw new PodLabelsError(`--metrics-pod-labels: "${entry}" names the label "${name}", which is not a Prometheus label name (letters, digits and _, not starting with a digit or __)`);
  }
  return { key, name };
}

/** What to write instead of an entry, to give its label a name of its own. */
function renameHint(l: PodLabel): string {
  return `${l.key}=pod_${l.name}`;
}

/** Parses and checks the flag; throws PodLabelsError naming every conflict found first. */
export function parsePodLabels(text: string): PodLabel[] {
  if (text.trim() === '') return [];
  const out: PodLabel[] = [];
  for (const entry of text.split(',')) {
    if (entry.trim() === '') throw new PodLabelsError(`--metrics-pod-labels "${text}" has an empty entry; separate pod label keys with single commas`);
    const l = readEntry(entry);
    const why = OWN_LABELS[l.name];
    if (why) {
      throw new PodLabelsError(`--metrics-pod-labels: pod label "${l.key}" would be exported as "${l.name}", which is ${why}; rename it, e.g. --metrics-pod-labels ${renameHint(l)}`);
    }
    const sameKey = out.find((o) => o.key === l.key);
    if (sameKey) throw new PodLabelsError(`--metrics-pod-labels names pod label "${l.key}" twice; name each key once`);
    const sameName = out.find((o) => o.name === l.name);
    if (sameName) {
      throw new PodLabelsError(`--metrics-pod-labels: pod labels "${sameName.key}" and "${l.key}" would both be exported as "${l.name}"; rename one, e.g. --metrics-pod-labels ${sameName.key},${renameHint(l)}`);
    }
    out.push(l);
  }
  return out;
}

/** The allowlist compiled once: which pod labels series carry, under which names. */
export class PodLabels {
  /** Their names on series, in the order of the flag. */
  readonly names: readonly string[];

  constructor(readonly labels: readonly PodLabel[] = []) {
    this.names = labels.map((l) => l.name);
  }

  static parse(text: string): PodLabels {
    return new PodLabels(parsePodLabels(text));
  }

  get size(): number {
    return this.labels.length;
  }

  /** A pod's allowlisted labels under their series names; a label the pod lacks (or has empty) is absent. */
  select(podLabels: Readonly<Record<string, string>> | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    if (!podLabels) return out;
    for (const l of this.labels) {
      const v = podLabels[l.key];
      if (v !== undefined && v !== '') out[l.name] = v;
    }
    return out;
  }

  /** The Kubernetes key a series label came from, if it is a pod label. */
  keyOf(name: string): string | undefined {
    return this.labels.find((l) => l.name === name)?.key;
  }

  /** Names a metric's own labels share with the pod labels: on that metric, the metric's own label wins. */
  collisions(labelNames: readonly string[] | undefined): string[] {
    return (labelNames ?? []).filter((n) => this.names.includes(n));
  }

  /** Warns once a metric is defined whose own labels shadow pod labels, with the rename that fixes it. */
  warnCollisions(metric: { name: string; labelNames?: readonly string[] }, warn: (msg: string, fields: Record<string, unknown>) => void): void {
    const clash = this.collisions(metric.labelNames);
    if (clash.length === 0) return;
    warn('a metric has labels of its own named like pod labels; on its series its own label wins, and the pod label is not shown', {
      metric: metric.name,
      labels: clash.join(','),
      fix: `rename the pod label in --metrics-pod-labels, e.g. ${clash.map((n) => `${this.keyOf(n)}=pod_${n}`).join(',')}`,
    });
  }

  toString(): string {
    return this.labels.map((l) => (l.name === sanitizeLabelName(l.key) ? l.key : `${l.key}=${l.name}`)).join(',');
  }
}

export const NO_POD_LABELS = new PodLabels();
