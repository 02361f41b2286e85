/**
 * @kubernetes/client-node, loaded on demand. Its 1.x line is an ES module
 * (2.x needs Node 22), so this CommonJS project reaches it with import().
 */
export type K8s = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

let loading: Promise<K8s> | undefined;

export function k8s(): Promise<K8s> {
  loading ??= import('@kubernetes/client-node');
  return loading;
}

/**
 * The cluster to talk to: --kubeconfig, else the in-cluster service account
 * when KUBERNETES_SERVICE_HOST is set, else none (host mode).
 *
 * In host mode the library is not imported at all: its sources alone hold
 * some 25 MiB of V8 heap (strings and compiled code) that the agent would
 * keep for nothing (BENCHMARKS.md, "Agent memory").
 */
export async function loadKubeConfig(kubeconfig?: string): Promise<InstanceType<K8s['KubeConfig']> | undefined> {
  if (!kubeconfig && !process.env.KUBERNETES_SERVICE_HOST) return undefined;
  const { KubeConfig } = await k8s();
  const kc = new KubeConfig();
  if (kubeconfig) {
    kc.loadFromFile(kubeconfig);
    return plainHttpAllowed(kc);
  }
  if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    return kc;
  }
  return undefined;
}

/**
 * A server at http://… (kubectl proxy, which adds the credentials itself) is
 * used as kubectl uses it. The library refuses plain HTTP unless
 * insecure-skip-tls-verify is set ("HTTP protocol is not allowed when
 * skipTLSVerify is not set or false"), a flag that means nothing without TLS;
 * setting it for such a cluster changes nothing else.
 */
function plainHttpAllowed(kc: InstanceType<K8s['KubeConfig']>): InstanceType<K8s['KubeConfig']> {
  kc.clusters = kc.clusters.map((c) => (/^http:/i.test(c.server) && !c.skipTLSVerify ? { ...c, skipTLSVerify: true } : c));
  return kc;
}
