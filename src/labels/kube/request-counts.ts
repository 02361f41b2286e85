/**
 * Every request tally makes to the Kubernetes API server, by verb, resource
 * and answer: the source of tally_kube_requests_total{verb,resource,code}.
 * tally runs on every node, so this is what the API server pays per node.
 */

/** list and watch of pods; get of the owners that name a workload. */
export type KubeVerb = 'list' | 'watch' | 'get';

/** The HTTP status of the answer, or "error" when none came (refused, reset, timed out). */
export type KubeAnswer = number | 'error';

export interface KubeRequestSample {
  labels: { verb: KubeVerb; resource: string; code: string };
  value: number;
}

export class KubeRequestCounts {
  private readonly counts = new Map<string, KubeRequestSample>();

  count(verb: KubeVerb, resource: string, answer: KubeAnswer): void {
    const code = String(answer);
    const key = `${verb} ${resource} ${code}`;
    const s = this.counts.get(key);
    if (s) s.value++;
    else this.counts.set(key, { labels: { verb, resource, code }, value: 1 });
  }

  /** One sample per verb, resource and code seen so far. */
  samples(): KubeRequestSample[] {
    return [...this.counts.values()].map((s) => ({ labels: { ...s.labels }, value: s.value }));
  }

  /** All requests so far, whatever their answer. */
  get total(): number {
    let n = 0;
    for (const s of this.counts.values()) n += s.value;
    return n;
  }
}

/**
 * The resource an API path names: /api/v1/pods -> pods,
 * /apis/apps/v1/namespaces/shop/replicasets/web-1 -> replicasets.
 */
export function resourceOf(path: string): string {
  const m = /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)/.exec(path);
  return m ? m[1] : 'unknown';
}
