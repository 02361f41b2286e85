/**
 * Series labels to OpenTelemetry attributes, following the semantic
 * conventions where they exist (k8s.*, process.executable.path).
 *
 * `workload` has no single convention: Kubernetes names the controller by
 * its kind (k8s.deployment.name, k8s.statefulset.name, …). The series does
 * not carry the kind, so it is looked up among this node's pods (the
 * PodWatcher resolved it when it resolved the workload): a workload whose
 * kind is known and has a convention gets that attribute. Anything else (a
 * host cgroup such as nginx.service, `unresolved-pod`, a controller kind
 * without a convention, or a name two kinds share in a namespace) is
 * `tally.workload.name`, with `tally.workload.kind` when the kind is known.
 */
import type { Attributes } from '@opentelemetry/api';

/** Labels whose attribute does not depend on anything else. */
export const LABEL_ATTRIBUTES: Readonly<Record<string, string>> = {
  namespace: 'k8s.namespace.name',
  pod: 'k8s.pod.name',
  container: 'k8s.container.name',
  binary: 'process.executable.path',
};

/** The attribute `workload` becomes, by the kind of controller it names. */
export const WORKLOAD_ATTRIBUTES: Readonly<Record<string, string>> = {
  Deployment: 'k8s.deployment.name',
  StatefulSet: 'k8s.statefulset.name',
  DaemonSet: 'k8s.daemonset.name',
  ReplicaSet: 'k8s.replicaset.name',
  Job: 'k8s.job.name',
  CronJob: 'k8s.cronjob.name',
  /** A pod without a controller is its own workload. */
  Pod: 'k8s.pod.name',
};

export const WORKLOAD_NAME_ATTRIBUTE = 'tally.workload.name';
export const WORKLOAD_KIND_ATTRIBUTE = 'tally.workload.kind';
/** A pod label joined by --metrics-pod-labels: the semantic conventions' k8s.pod.label.<key>, with the Kubernetes key as it is. */
export const POD_LABEL_ATTRIBUTE_PREFIX = 'k8s.pod.label.';

/** The overflow series (label overflow="true"), as the OpenTelemetry SDKs mark theirs. */
export const OVERFLOW_ATTRIBUTE = 'otel.metric.overflow';

/** The kind of controller a series' workload label names, when known. */
export type WorkloadKindOf = (labels: Readonly<Record<string, string>>) => string | undefined;

/**
 * @param attributeOf labels whose attribute is given (the pod labels, by their
 *   series name): checked before the rules above, because a pod label may
 *   have been renamed to anything but tally's own labels
 */
export function seriesAttributes(labels: Readonly<Record<string, string>>, kindOf?: WorkloadKindOf, attributeOf?: Readonly<Record<string, string>>): Attributes {
  const out: Attributes = {};
  for (const [label, value] of Object.entries(labels)) {
    const given = attributeOf?.[label];
    if (given !== undefined) {
      out[given] = value;
    } else if (label === 'overflow') {
      out[OVERFLOW_ATTRIBUTE] = value === 'true';
    } else if (label === 'workload') {
      const kind = kindOf?.(labels);
      const attr = kind === undefined ? undefined : WORKLOAD_ATTRIBUTES[kind];
      if (attr) {
        out[attr] = value;
      } else {
        out[WORKLOAD_NAME_ATTRIBUTE] = value;
        if (kind !== undefined) out[WORKLOAD_KIND_ATTRIBUTE] = kind;
      }
    } else {
      out[LABEL_ATTRIBUTES[label] ?? label] = value;
    }
  }
  return out;
}

/** The pod labels' attributes: k8s.pod.label.<Kubernetes key>, by series label name. */
export function podLabelAttributes(podLabels: { labels: ReadonlyArray<{ key: string; name: string }> }): Record<string, string> {
  return Object.fromEntries(podLabels.labels.map((l) => [l.name, POD_LABEL_ATTRIBUTE_PREFIX + l.key]));
}

export interface PodWorkload {
  namespace: string;
  workload: string;
  workloadKind: string;
  resolved: boolean;
}

/**
 * Indexes the pods' workloads by namespace and name (or by name alone when
 * series carry no namespace). A name two kinds share is left unknown.
 *
 * @param namespaced the label filter has `namespace`: a series without one
 *   then belongs to a host cgroup, never to a pod.
 */
export function workloadKinds(pods: Iterable<PodWorkload>, namespaced: boolean): WorkloadKindOf {
  const AMBIGUOUS = '';
  const kinds = new Map<string, string>();
  const keyOf = (namespace: string | undefined, workload: string): string => (namespaced ? `${namespace}\0${workload}` : workload);
  for (const p of pods) {
    if (!p.resolved) continue;
    const key = keyOf(p.namespace, p.workload);
    const had = kinds.get(key);
    kinds.set(key, had === undefined || had === p.workloadKind ? p.workloadKind : AMBIGUOUS);
  }
  return (labels) => {
    if (labels.workload === undefined || (namespaced && labels.namespace === undefined)) return undefined;
    const kind = kinds.get(keyOf(labels.namespace, labels.workload));
    return kind === AMBIGUOUS ? undefined : kind;
  };
}
