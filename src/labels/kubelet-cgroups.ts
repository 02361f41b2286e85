/**
 * What a kubelet-created cgroup path says about its pod and container.
 *
 * The kubelet names pod cgroups after the pod UID and the container runtime
 * names container cgroups after the container id, in shapes that depend on
 * the cgroup driver (systemd or cgroupfs) and the runtime (containerd, CRI-O,
 * Docker). The pod UID alone identifies the pod, so a path resolves to its
 * pod even before the pod's status lists the container.
 */

export type Runtime = 'containerd' | 'cri-o' | 'docker';
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

export interface KubeletCgroup {
  podUid: string;
  qos: QosClass;
  /** Absent for the pod-level cgroup itself and for runtime helpers (conmon). */
  containerId?: string;
  runtime?: Runtime;
}

// A pod UID, or a static pod's config hash (which its mirror pod carries as an annotation).
const UID = '(?:[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}|[0-9a-fA-F]{32})';
const ID = '[0-9a-f]{12,64}';

// systemd driver: kubepods[-<qos>]-pod<uid with underscores>.slice
const SYSTEMD_POD = new RegExp(`^kubepods(?:-(burstable|besteffort))?-pod(${UID})\\.slice$`);
// cgroupfs driver: pod<uid>, under kubepods/[<qos>/]
const CGROUPFS_POD = new RegExp(`^pod(${UID})$`);

// Container cgroups, by runtime, in both drivers' spellings.
const CONTAINERS: Array<[RegExp, Runtime]> = [
  [new RegExp(`^cri-containerd-(${ID})\\.scope$`), 'containerd'],
  [new RegExp(`^crio-(${ID})\\.scope$`), 'cri-o'],
  [new RegExp(`^docker-(${ID})\\.scope$`), 'docker'],
  // containerd with the systemd driver but nested under its own service (kind, k3s):
  // "kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>"
  [new RegExp(`^cri-containerd:(${ID})$`), 'containerd'],
  // cgroupfs driver: the bare id.
  [new RegExp(`^(${ID})$`), 'containerd'],
];

const CONMON = /^crio-conmon-[0-9a-f]+\.scope$/;

function normaliseUid(uid: string): string {
  return uid.replace(/_/g, '-').toLowerCase();
}

function container(name: string): { containerId: string; runtime?: Runtime } | undefined {
  for (const [re, runtime] of CONTAINERS) {
    const m = re.exec(name);
    // A bare id says nothing about the runtime.
    if (m) return re.source.startsWith('^(') ? { containerId: m[1] } : { containerId: m[1], runtime };
  }
  return undefined;
}

/**
 * Parses a cgroup path (relative to the cgroup2 mount, or a v1 hierarchy's);
 * undefined when it is not under a kubelet pod cgroup.
 */
export function parseKubeletCgroup(path: string): KubeletCgroup | undefined {
  const parts = path.split('/').filter((p) => p.length > 0);
  for (let i = 0; i < parts.length; i++) {
    let part = parts[i];
    let inline: string | undefined;
    // "kubepods-…-pod<uid>.slice:cri-containerd:<id>" carries both in one name.
    const colon = part.indexOf(':');
    if (colon > 0 && part.slice(0, colon).endsWith('.slice')) {
      inline = part.slice(colon + 1);
      part = part.slice(0, colon);
    }

    let podUid: string | undefined;
    let qos: QosClass = 'guaranteed';
    const sd = SYSTEMD_POD.exec(part);
    if (sd) {
      podUid = sd[2];
      if (sd[1]) qos = sd[1] as QosClass;
    } else {
      const fs = CGROUPFS_POD.exec(part);
      // cgroupfs: only directly under kubepods or kubepods/<qos>.
      if (fs && i > 0) {
        const parent = parts[i - 1];
        if (parent === 'burstable' || parent === 'besteffort') {
          if (i > 1 && parts[i - 2] === 'kubepods') {
            podUid = fs[1];
            qos = parent;
          }
        } else if (parent === 'kubepods') {
          podUid = fs[1];
        }
      }
    }
    if (!podUid) continue;

    const result: KubeletCgroup = { podUid: normaliseUid(podUid), qos };
    const next = inline ?? parts[i + 1];
    if (next !== undefined && !CONMON.test(next)) {
      const c = container(next);
      if (c) Object.assign(result, c);
    }
    return result;
  }
  return undefined;
}
