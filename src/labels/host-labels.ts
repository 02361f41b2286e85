/**
 * Labels of a process outside Kubernetes: the workload is the last component
 * of its cgroup v2 path (a systemd unit such as nginx.service, or a
 * container's scope); namespace and pod do not exist and are left out.
 */
import { LabelValues } from './label-filter';

export function hostLabels(cgroupPath: string | null): LabelValues {
  if (!cgroupPath) return {};
  const parts = cgroupPath.split('/').filter((p) => p.length > 0);
  return parts.length > 0 ? { workload: parts[parts.length - 1] } : {};
}
