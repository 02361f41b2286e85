/**
 * The labeler's answers under the label filter, as the counting core asks
 * for them (src/cardinality/sources.ts).
 */
import { labelKey } from '../cardinality/series-limiter';
import { CgroupResolver } from '../cardinality/sources';
import { LabelFilter } from '../labels/label-filter';
import { Labeler, Resolution } from '../labels/labeler';
import { NO_POD_LABELS, PodLabels } from '../labels/pod-labels';

/**
 * A cgroup's labels: the filter's, then its pod's allowlisted labels
 * (--metrics-pod-labels), joined here, in user space, so the kernel keeps
 * counting under the label-set id whatever they are.
 */
export function filteredResolver(labeler: Labeler, filter: LabelFilter, podLabels: PodLabels = NO_POD_LABELS): CgroupResolver {
  const labelsOf = (r: Pick<Resolution, 'values' | 'podLabels'>): Record<string, string> =>
    podLabels.size === 0 ? filter.cgroupValues(r.values) : { ...filter.cgroupValues(r.values), ...podLabels.select(r.podLabels) };
  return {
    resolve: (id, pendingSince, giveUp) => {
      const r = labeler.resolve(id, pendingSince, giveUp);
      return { labels: labelsOf(r), namespace: r.values.namespace, final: r.final };
    },
    podDeletedAt: (id) => labeler.podDeletedAt(id),
    liveSetKeys: () => labeler.livePodLabels().map((v) => labelKey(labelsOf(v))),
    relabelled: () => {
      const ids = labeler.relabelled(); // taken either way, so nothing piles up
      // Without pod labels on series, a change of a pod's labels changes no cgroup's.
      return podLabels.size === 0 ? [] : ids;
    },
  };
}
