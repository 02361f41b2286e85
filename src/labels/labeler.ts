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
import { PodInfo, PodWatcher } from './kube/pod-watcher';

/**
 * Labels of a pod cgroup whose pod the API server never told us about, once
 * we stop waiting: one shared, recognisable series rather than one per
 * container scope name.
 */
export const UNRESOLVED_POD_LABELS: LabelValues = Object.freeze({ workload: 'unresolved-pod' });

/**
 * How long a pod cgroup waits for its pod (or the pod for its container
 * status) while the watch is connected. The kubelet creates the pod before
 * its cgroups, so a connected watch normally knows it within a second.
 */
export const POD_RESOLUTION_GRACE_MS = 10_000;

/**
 * How long a gone cgroup waits for its removal to be reported. The report
 * normally trails by milliseconds; one removed before tally started (a
 * socket outliving its cgroup) is never reported.
 */
export const REMOVAL_REPORT_GRACE_MS = 5_000;

export interface LabelerOptions {
  /** The filter has `container`: a pod cgroup is not final until its container is known. */
  needsContainer: boolean;
  graceMs?: number;
}

export interface Resolution {
  values: LabelValues;
  /** The pod's Kubernetes labels, for a cgroup of a known pod (--metrics-pod-labels picks from them). */
  podLabels?: Readonly<Record<string, string>>;
  /**
   * False while the labels may still change (the pod, its workload or the
   * container is not known yet). Counts under labels that are not final are
   * held back rather than shown under labels they would later leave, which
   * would make a series decrease.
   */
  final: boolean;
}

export class Labeler {
  private readonly graceMs: number;
  /**
   * The cgroups resolved to each pod, by pod uid, and back: what a change of
   * the pod's labels relabels. Entries leave with their cgroup (forget()).
   */
  private readonly podCgroups = new Map<string, Set<bigint>>();
  private readonly cgroupPod = new Map<bigint, string>();

  constructor(
    private readonly cgroups: CgroupPaths,
    private readonly pods: PodWatcher | undefined,
    private readonly opts: LabelerOptions,
  ) {
    this.graceMs = opts.graceMs ?? POD_RESOLUTION_GRACE_MS;
  }

  /**
   * @param pendingSinceMs when this cgroup was first seen without final labels
   * @param giveUp stop waiting (the cgroup is gone): the labels known now are final
   */
  resolve(cgroupId: bigint, pendingSinceMs?: number, giveUp = false): Resolution {
    const path = this.cgroups.path(cgroupId);
    // A cgroup whose path no longer resolves has been removed: once its removal is reported (with where it
    // was, found above), or a removal before tally started has had time to be, nothing more can be learned.
    if (path === null) {
      const waited = pendingSinceMs !== undefined && Date.now() - pendingSinceMs >= REMOVAL_REPORT_GRACE_MS;
      return { values: {}, final: giveUp || waited || !this.cgroups.removalUnreported(cgroupId) };
    }
    const k = this.pods ? parseKubeletCgroup(path) : undefined;
    if (!k) return { values: hostLabels(path), final: true };
    const stopWaiting = giveUp || (pendingSinceMs !== undefined && this.waitedEnough(pendingSinceMs));
    const pod = this.pods!.byUid(k.podUid);
    if (!pod) return stopWaiting ? { values: UNRESOLVED_POD_LABELS, final: true } : { values: {}, final: false };
    this.remember(cgroupId, pod.uid);
    const container = k.containerId ? pod.containers.get(k.containerId) : undefined;
    const complete = pod.resolved && (!this.opts.needsContainer || k.containerId === undefined || container !== undefined);
    return { values: podValues(pod, container), podLabels: pod.labels, final: complete || stopWaiting };
  }

  /** Waited the grace period while the watch was connected (an API server that is down is waited out). */
  private waitedEnough(pendingSinceMs: number): boolean {
    const connected = this.pods!.connectedSince;
    return connected !== undefined && Date.now() - Math.max(pendingSinceMs, connected) >= this.graceMs;
  }

  /** When the pod behind this cgroup was deleted, if the API server said so. */
  podDeletedAt(cgroupId: bigint): number | undefined {
    if (!this.pods) return undefined;
    const path = this.cgroups.path(cgroupId);
    const k = path ? parseKubeletCgroup(path) : undefined;
    return k ? this.pods.byUid(k.podUid)?.deletedAt : undefined;
  }

  /**
   * The labels of every pod the API server says is alive, and of each of its
   * known containers: a label set with a live pod behind it is live even
   * when idle (a Deployment mid-rollout), so it keeps counting from where it was.
   */
  livePodLabels(): Array<Pick<Resolution, 'values' | 'podLabels'>> {
    if (!this.pods) return [];
    const out: Array<Pick<Resolution, 'values' | 'podLabels'>> = [];
    for (const pod of this.pods.alive()) {
      if (!pod.resolved) continue;
      out.push({ values: podValues(pod, undefined), podLabels: pod.labels });
      if (this.opts.needsContainer) for (const name of pod.containers.values()) out.push({ values: podValues(pod, name), podLabels: pod.labels });
    }
    return out;
  }

  /** The cgroups of the pods whose labels changed since the last call: their resolutions may be out of date. */
  relabelled(): bigint[] {
    if (!this.pods) return [];
    return this.pods.takeLabelChanges().flatMap((uid) => [...(this.podCgroups.get(uid) ?? [])]);
  }

  private remember(cgroupId: bigint, uid: string): void {
    if (this.cgroupPod.get(cgroupId) === uid) return;
    this.forget(cgroupId);
    this.cgroupPod.set(cgroupId, uid);
    let set = this.podCgroups.get(uid);
    if (!set) this.podCgroups.set(uid, (set = new Set()));
    set.add(cgroupId);
  }

  /** A removed cgroup is retired: nothing will resolve it again. */
  forget(cgroupId: bigint): void {
    const uid = this.cgroupPod.get(cgroupId);
    if (uid === undefined) return;
    this.cgroupPod.delete(cgroupId);
    const set = this.podCgroups.get(uid);
    set?.delete(cgroupId);
    if (set?.size === 0) this.podCgroups.delete(uid);
  }
}

function podValues(pod: PodInfo, container: string | undefined): LabelValues {
  return { namespace: pod.namespace, pod: pod.name, workload: pod.workload, container };
}
