/**
 * Cluster peers: each address of a Service's endpoints, as the peer it is
 * from this node (peer-table.ts). Pure: endpoint-slice-watch.ts feeds it
 * what the API server says.
 *
 * The class says where the endpoint runs, against this node:
 *   same-node   the endpoint's nodeName is this node
 *   same-zone   its zone is this node's topology.kubernetes.io/zone
 *   cross-zone  both zones are known and differ
 *   cluster     a zone is not known (no zone on the endpoint, or no zone
 *               label on this node): a cluster address, but which zone
 *               cannot be told, and guessing would charge bytes wrongly
 */
import { Peer, ClusterPeer } from './peer-table';
import { CLUSTER_CLASS, CROSS_ZONE_CLASS, SAME_NODE_CLASS, SAME_ZONE_CLASS } from './peer-cidrs';


/** The label an EndpointSlice names its Service with. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** The label a Node names its zone with. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** An EndpointSlice as endpoint-slices.ts reads it: only what peers need. */
export interface EndpointSliceRecord {
  uid: string;
  namespace: string;
  name: string;
  resourceVersion?: string;
  /** The Service (kubernetes.io/service-name); '' for a slice of no Service. */
  service: string;
  addressType: 'IPv4' | 'IPv6';
  endpoints: Array<{ addresses: string[]; nodeName?: string; zone?: string }>;
}

export interface ThisNode {
  name: string;
  /** Its topology.kubernetes.io/zone; undefined until known, or when it has none. */
  zone?: string;
}

export function classOf(endpoint: { nodeName?: string; zone?: string }, node: ThisNode): string {
  if (endpoint.nodeName !== undefined && endpoint.nodeName === node.name) return SAME_NODE_CLASS;
  if (endpoint.zone === undefined || node.zone === undefined) return CLUSTER_CLASS;
  return endpoint.zone === node.zone ? SAME_ZONE_CLASS : CROSS_ZONE_CLASS;
}

/**
 * Every endpoint address of these slices, once. An address in several slices
 * (a pod behind two Services) is the peer of the first by namespace, Service
 * and slice name: one answer, the same on every node and after every relist.
 */
export function clusterPeers(slices: Iterable<EndpointSliceRecord>, node: ThisNode): ClusterPeer[] {
  const ordered = [...slices].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
  const byAddress = new Map<string, Peer>();
  for (const s of ordered) {
    for (const e of s.endpoints) {
      const peer: Peer = { class: classOf(e, node), namespace: s.namespace, service: s.service };
      for (const a of e.addresses) if (!byAddress.has(a)) byAddress.set(a, peer);
    }
  }
  return [...byAddress].map(([address, peer]) => ({ address, peer }));
}
