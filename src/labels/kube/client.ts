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
 */
export async function loadKubeConfig(kubeconfig?: string): Promise<InstanceType<K8s['KubeConfig']> | undefined> {
  const { KubeConfig } = await k8s();
  const kc = new KubeConfig();
  if (kubeconfig) {
    kc.loadFromFile(kubeconfig);
    return kc;
  }
  if (process.env.KUBERNETES_SERVICE_HOST) {
    kc.loadFromCluster();
    return kc;
  }
  return undefined;
}
