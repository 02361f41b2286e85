/**
 * metadata of a policy document: the name (and for TracingPolicyNamespaced
 * the namespace). Fields Kubernetes adds to stored objects are accepted, so a
 * policy saved with `kubectl get -o yaml` reads as it was applied.
 */
import { Fields, Node } from './reader';

const METADATA_KEYS = [
  'name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'managedFields', 'finalizers', 'ownerReferences', 'generateName', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink',
] as const;

/** DNS-1123 label: what Kubernetes allows as a namespace name. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_EXPECTED = 'a Kubernetes name (lowercase letters, digits and -, starting and ending with a letter or digit, at most 63 characters)';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_SUBDOMAIN_EXPECTED = 'a Kubernetes object name (lowercase letters, digits, - and ., starting and ending with a letter or digit, at most 253 characters)';

export type NamespaceRule =
  /** MetricsPolicy: cluster-wide; a namespace is an error. */
  | 'forbidden'
  /** TracingPolicy: cluster-scoped, a namespace is ignored (as Kubernetes does). */
  | 'ignored'
  /** TracingPolicyNamespaced: required. */
  | 'required';

export interface Metadata {
  name?: string;
  namespace?: string;
}

/**
 * `nameRule` 'label' for MetricsPolicy names (they become label values and
 * file-friendly ids), 'subdomain' for Tetragon's, which Kubernetes allows dots in.
 */
export function readMetadata(root: Fields, nameRule: 'label' | 'subdomain', nsRule: NamespaceRule): Metadata {
  const f = root.require('metadata', 'a mapping with the policy\'s name')?.mapping(METADATA_KEYS);
  if (!f) return {};
  const out: Metadata = {};
  const nameNode = f.require('name', 'the policy\'s name');
  const [pattern, expected, max] = nameRule === 'label' ? [DNS_LABEL, DNS_LABEL_EXPECTED, 63] : [DNS_SUBDOMAIN, DNS_SUBDOMAIN_EXPECTED, 253];
  const name = nameNode?.string(expected);
  if (name !== undefined) out.name = pattern.test(name) && name.length <= max ? name : nameNode?.error(expected, lowercaseHint(name, pattern));
  const nsNode = f.get('namespace');
  if (nsRule === 'required' && !nsNode) {
    f.require('namespace', 'the Kubernetes namespace whose pods this policy counts');
  } else if (nsNode && nsRule === 'forbidden') {
    nsNode.report('error', 'no namespace', 'a MetricsPolicy is cluster-wide; to count one namespace, use matchNamespaces in its selectors', nsNode.found, true);
  } else if (nsNode && nsRule === 'ignored') {
    nsNode.report('warning', 'no namespace', 'a TracingPolicy is cluster-wide and Kubernetes ignores its namespace; to count one namespace, use TracingPolicyNamespaced', nsNode.found, true);
  } else if (nsNode) {
    const ns = nsNode.string(DNS_LABEL_EXPECTED);
    if (ns !== undefined) out.namespace = DNS_LABEL.test(ns) ? ns : nsNode.error(DNS_LABEL_EXPECTED, lowercaseHint(ns, DNS_LABEL));
  }
  for (const key of ['labels', 'annotations']) {
    const n = f.get(key);
    if (n) stringMap(n);
  }
  return out;
}

function lowercaseHint(name: string, pattern: RegExp): string | undefined {
  const fixed = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return fixed && pattern.test(fixed) ? `write "${fixed}"` : undefined;
}

/** labels and annotations: string values; their keys are Kubernetes' business. */
function stringMap(node: Node): void {
  const v = node.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    node.error('a mapping of strings');
    return;
  }
  for (const [k, val] of Object.entries(v)) if (typeof val !== 'string') node.child(k, val).error('a string');
}
