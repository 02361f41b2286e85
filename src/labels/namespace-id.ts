/**
 * A Kubernetes namespace as the kernel knows it (tally_cgroup_mapping's
 * namespace_id, and the values of a selector's matchNamespaces): 64 bits of
 * the name's SHA-256. A hash rather than ids handed out by user space, so the
 * policy compiler and the cgroup resolver agree without sharing state, and a
 * policy naming a namespace no pod has used yet needs nothing registered.
 * Two names of one cluster colliding in 64 bits is not a practical concern
 * (about 3e-12 for 10,000 namespaces).
 */
import { createHash } from 'node:crypto';

/** namespace_id of a cgroup that belongs to no (known) pod. */
export const NO_NAMESPACE = 0n;

export function namespaceId(name: string | undefined): bigint {
  if (name === undefined || name === '') return NO_NAMESPACE;
  const id = createHash('sha256').update(name, 'utf8').digest().readBigUInt64LE(0);
  return id === NO_NAMESPACE ? 1n : id;
}
