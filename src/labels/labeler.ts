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

  labelsFor(cgroupId: bigint): LabelValues {
    const path = this.cgroups.path(cgroupId);
    if (path && this.pods) {
      const k = parseKubeletCgroup(path);
      const pod = k ? this.pods.byUid(k.podUid) : undefined;
      if (k && pod) {
        return {
          namespace: pod.namespace,
          pod: pod.name,
          workload: pod.workload,
          container: k.containerId ? pod.containers.get(k.containerId) : undefined,
        };
      }
    }
    return hostLabels(path);
  }

  /** When the pod behind this cgroup was deleted, if the API server said so. */
  podDeletedAt(cgroupId: bigint): number | undefined {
    if (!this.pods) return undefined;
    const path = this.cgroups.path(cgroupId);
    const k = path ? parseKubeletCgroup(path) : undefined;
    return k ? this.pods.byUid(k.podUid)?.deletedAt : undefined;
  }
}
