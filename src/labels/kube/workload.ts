/**
 * A pod's workload: the name of the controller users think in.
 *   ReplicaSet -> its Deployment (the ReplicaSet's owner; when it cannot be
 *                 read, the pod-template-hash rule: "<deployment>-<hash>")
 *   Job        -> its CronJob (the Job's owner; else "<cronjob>-<minutes>")
 *   StatefulSet, DaemonSet, anything else -> the owner's name
 *   no owner   -> the pod itself
 */

export interface OwnerRef {
  kind: string;
  name: string;
}

export interface PodMeta {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  owner?: OwnerRef;
}

/** Reads the controller of a ReplicaSet or Job; undefined when unknown or unreadable. */
export type OwnerLookup = (kind: 'ReplicaSet' | 'Job', namespace: string, name: string) => Promise<OwnerRef | undefined>;

export async function resolveWorkload(pod: PodMeta, lookup: OwnerLookup): Promise<{ kind: string; name: string }> {
  const owner = pod.owner;
  if (!owner) return { kind: 'Pod', name: pod.name };
  if (owner.kind === 'ReplicaSet') {
    const parent = await lookup('ReplicaSet', pod.namespace, owner.name);
    if (parent) return parent;
    const hash = pod.labels?.['pod-template-hash'];
    if (hash && owner.name.endsWith(`-${hash}`)) return { kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
    return owner;
  }
  if (owner.kind === 'Job') {
    const parent = await lookup('Job', pod.namespace, owner.name);
    if (parent) return parent;
    const m = /^(.+)-\d{8,}$/.exec(owner.name);
    return m ? { kind: 'CronJob', name: m[1] } : owner;
  }
  return owner;
}
