/**
 * The maps every counting object shares (bpf/counters.bpf.h,
 * bpf/label_sets.bpf.h, bpf/binary.bpf.h): the core object creates them,
 * every policy hook's object reuses them by fd.
 */
export const COUNTER_MAP = 'tally_counters';
export const LABEL_SET_MAP = 'tally_cgroup_label_sets';
/** Remote addresses to peer ids (bpf/peers.bpf.h), filled by src/peers. */
export const PEER_MAP = 'tally_peers';

export const SHARED_MAPS = [
  COUNTER_MAP,
  'tally_overflow',
  'tally_stats',
  LABEL_SET_MAP,
  'tally_label_set_cache',
  'tally_binary_events',
  'tally_known_binaries',
  'tally_announced',
  'tally_exiting_binaries',
  'tally_fast_index',
  'tally_fast_counters',
  'tally_epoch',
  PEER_MAP,
] as const;

export type SharedMapFds = Record<(typeof SHARED_MAPS)[number], number>;
