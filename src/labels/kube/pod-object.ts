/**
 * The boundary between what the API server (or anything between it and us)
 * sends and what tally keeps: a pod as JSON is read into a PodRecord, field by
 * field, with every type checked. Nothing past this module touches the raw
 * object, so a malformed one can only be refused here, never throw later.
 *
 * A pod without a uid, name or namespace is unusable (the kubelet names its
 * cgroups after the uid; labels need the others) and is refused with a
 * reason. Fields that only refine labels (owner references, container
 * statuses, annotations, labels) are read leniently: an entry of the wrong
 * shape is left out, as if the API server had not sent it.
 */
import { OwnerRef } from './workload';

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  /** The object's resourceVersion, when it has one. */
  resourceVersion?: string;
  labels: Record<string, string>;
  /** Static pods: the config hash their cgroups are named after (kubernetes.io/config.mirror). */
  mirrorHash?: string;
  /** The controller (or else first) owner reference. */
  owner?: OwnerRef;
  /** Container id (without the runtime:// prefix) -> container name. */
  containers: Map<string, string>;
}

/** Why an object cannot be used; these are the `reason` label values of tally_kube_watch_errors_total. */
export type UnusableObject = 'no_object' | 'no_metadata';

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty string, else undefined. */
export const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** A namespaced object and the metadata every reader needs: its uid, name and namespace; a reason when it lacks them. */
export function readObjectMeta(o: unknown): { o: Record<string, unknown>; md: Record<string, unknown>; uid: string; name: string; namespace: string } | UnusableObject {
  if (!isMapping(o)) return 'no_object';
  const md = o.metadata;
  if (!isMapping(md)) return 'no_metadata';
  const uid = text(md.uid);
  const name = text(md.name);
  const namespace = text(md.namespace);
  if (!uid || !name || !namespace) return 'no_metadata';
  return { o, md, uid, name, namespace };
}

/** Reads a pod; a reason when it cannot be used at all. */
export function readPod(obj: unknown): PodRecord | UnusableObject {
  const meta = readObjectMeta(obj);
  if (typeof meta === 'string') return meta;
  const { o, md, uid, name, namespace } = meta;
  const pod: PodRecord = { uid, name, namespace, labels: stringMap(md.labels), containers: containerIds(o.status) };
  const rv = text(md.resourceVersion);
  if (rv) pod.resourceVersion = rv;
  const mirror = text(stringMap(md.annotations)[MIRROR_ANNOTATION]);
  if (mirror) pod.mirrorHash = mirror;
  const owner = ownerOf(md.ownerReferences);
  if (owner) pod.owner = owner;
  return pod;
}

/** The controller owner reference, else the first, of an object's ownerReferences. */
export function ownerOf(refs: unknown): OwnerRef | undefined {
  if (!Array.isArray(refs)) return undefined;
  const valid = refs.filter((r): r is Record<string, unknown> => isMapping(r) && text(r.kind) !== undefined && text(r.name) !== undefined);
  const r = valid.find((x) => x.controller === true) ?? valid[0];
  return r ? { kind: r.kind as string, name: r.name as string } : undefined;
}

/** Two label maps with the same keys and values. */
export function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isMapping(v)) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function containerIds(status: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!isMapping(status)) return out;
  for (const field of ['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses']) {
    const list = status[field];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isMapping(c)) continue;
      const name = text(c.name);
      const id = text(c.containerID)?.replace(/^[a-z-]+:\/\//, '');
      if (name && id) out.set(id, name);
    }
  }
  return out;
}
