/**
 * cgroup id -> labels. A cgroup under a kubelet pod cgroup gets the pod's
 * namespace, name, workload and container name (once the pod is known from
 * the API server); any other cgroup keeps the host labels (workload = last
 * path component).
 */
import { CgroupPaths } from './cgroup-paths';
import { hostLabels } from './host-labels';
import { parseKubeletCgroup } from './kubelet-cgroups';
import { LabelValues } from './label-filter';
import { PodWatcher } from './kube/pod-watcher';

export class Labeler {
  constructor(
    private readonly cgroups: CgroupPaths,
    private readonly pods?: PodWatcher,
  ) {}

  /**
   * The labels, and whether they are final: a cgroup that no longer resolves,
   * or a pod cgroup whose pod (or its workload, or the container) is not
   * known yet, may still change, so the kernel keeps counting it raw.
   */
  resolve(cgroupId: bigint): { values: LabelValues; final: boolean } {
    const path = this.cgroups.path(cgroupId);
    if (path === null) return { values: {}, final: false };
    const k = this.pods ? parseKubeletCgroup(path) : undefined;
    if (k) {
      const pod = this.pods!.byUid(k.podUid);
      if (pod) {
        const container = k.containerId ? pod.containers.get(k.containerId) : undefined;
        return {
          values: { namespace: pod.namespace, pod: pod.name, workload: pod.workload, container },
          final: pod.resolved && (k.containerId === undefined || container !== undefined),
        };
      }
      return { values: hostLabels(path), final: false };
    }
    return { values: hostLabels(path), final: true };
  }

  /** When the pod behind this cgroup was deleted, if the API server said so. */
  podDeletedAt(cgroupId: bigint): number | undefined {
    if (!this.pods) return undefined;
    const path = this.cgroups.path(cgroupId);
    const k = path ? parseKubeletCgroup(path) : undefined;
    return k ? this.pods.byUid(k.podUid)?.deletedAt : undefined;
  }
}
