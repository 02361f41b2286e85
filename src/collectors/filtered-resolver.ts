/**
 * The labeler's answers under the label filter, as the counting core asks
 * for them (src/cardinality/sources.ts).
 */
import { labelKey } from '../cardinality/series-limiter';
import { CgroupResolver } from '../cardinality/sources';
import { LabelFilter } from '../labels/label-filter';
import { Labeler } from '../labels/labeler';

export function filteredResolver(labeler: Labeler, filter: LabelFilter): CgroupResolver {
  return {
    resolve: (id, pendingSince, giveUp) => {
      const r = labeler.resolve(id, pendingSince, giveUp);
      return { labels: filter.cgroupValues(r.values), namespace: r.values.namespace, final: r.final };
    },
    podDeletedAt: (id) => labeler.podDeletedAt(id),
    liveSetKeys: () => labeler.livePodLabels().map((v) => labelKey(filter.cgroupValues(v))),
  };
}
