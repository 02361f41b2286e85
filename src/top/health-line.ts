/**
 * The header line of `tally top`: how the agent itself is doing, from its
 * health metrics (docs/metrics.md): its series, how full its kernel maps
 * are, and what did not fit (label sets beyond the series limit, updates
 * that found a map full).
 */
import { Sample } from './exposition-parse';

export interface MapFill {
  map: string;
  entries: number;
  capacity: number;
}

export interface AgentHealth {
  /** tally_metric_series summed over metrics: label sets with a series of their own. */
  series: number;
  /** tally_metric_overflowed_label_sets summed: label sets counted in an overflow series instead. */
  overflowedLabelSets: number;
  /** Every map with both entries and capacity, fullest first. */
  maps: MapFill[];
  /** tally_bpf_map_overflow_updates_total summed over maps. */
  overflowUpdates: number;
  /** tally_bpf_map_lost_updates_total summed over maps: should stay 0. */
  lostUpdates: number;
  version?: string;
}

const total = (samples: Sample[], name: string): number => samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);

export function healthOf(samples: Sample[]): AgentHealth {
  const capacities = new Map(samples.filter((s) => s.name === 'tally_bpf_map_capacity').map((s) => [s.labels.map, s.value]));
  const maps: MapFill[] = [];
  for (const s of samples) {
    const capacity = capacities.get(s.labels.map);
    if (s.name === 'tally_bpf_map_entries' && capacity) maps.push({ map: s.labels.map, entries: s.value, capacity });
  }
  maps.sort((a, b) => b.entries / b.capacity - a.entries / a.capacity || (a.map < b.map ? -1 : 1));
  return {
    series: total(samples, 'tally_metric_series'),
    overflowedLabelSets: total(samples, 'tally_metric_overflowed_label_sets'),
    maps,
    overflowUpdates: total(samples, 'tally_bpf_map_overflow_updates_total'),
    lostUpdates: total(samples, 'tally_bpf_map_lost_updates_total'),
    version: samples.find((s) => s.name === 'tally_build_info')?.labels.version,
  };
}

const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

/** "series 812 (3 label sets over the limit) | map tally_counters 1,024/16,384 (6.3%) | map overflow 0 updates, 0 lost". */
export function healthLine(h: AgentHealth): string {
  const parts = [`series ${thousands(h.series)}${h.overflowedLabelSets ? ` (${thousands(h.overflowedLabelSets)} label sets over the limit)` : ''}`];
  const fullest = h.maps[0];
  if (fullest) parts.push(`map ${fullest.map} ${thousands(fullest.entries)}/${thousands(fullest.capacity)} (${((100 * fullest.entries) / fullest.capacity).toFixed(1)}%)`);
  parts.push(`map overflow ${thousands(h.overflowUpdates)} updates, ${thousands(h.lostUpdates)} lost`);
  return parts.join(' | ');
}
