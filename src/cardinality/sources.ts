/**
 * What the counting core asks of the rest of user space: what a cgroup's
 * labels are, whether its pod lives, when it was removed, what a binary or
 * a metric's own label values are called. src/collectors/kernel-counters.ts
 * answers from src/labels/; the core tests answer from a generated history.
 */
import { CounterKey } from '../bpf/layout';

/** A cgroup's labels as the label filter keeps them. */
export interface Resolution {
  /** cgroup-derived labels under the filter (namespace, workload, pod, container). */
  labels: Record<string, string>;
  /** The pod's Kubernetes namespace, whether or not the filter shows it; undefined outside pods. */
  namespace?: string;
  /** False while something may still change them (pod or workload not known yet). */
  final: boolean;
}

export interface CgroupResolver {
  /**
   * @param pendingSinceMs when the cgroup was first seen without final labels
   * @param giveUp the cgroup is gone: whatever is known now is final
   */
  resolve(cgroupId: bigint, pendingSinceMs: number | undefined, giveUp: boolean): Resolution;
  /** When the pod owning this cgroup was deleted, if it was: that starts the TTL too. */
  podDeletedAt(cgroupId: bigint): number | undefined;
  /** labelKeys of cgroup-derived label sets with a live pod behind them, busy or idle. */
  liveSetKeys(): Iterable<string>;
  /**
   * cgroups whose final labels may have changed since the last call (their
   * pod's labels, joined by --metrics-pod-labels, were edited): the core
   * resolves them again (relabel.ts). Absent when labels never change.
   */
  relabelled?(): Iterable<bigint>;
}

/** Which cgroups were removed, and when (src/labels/cgroup-removals.ts). */
export interface Removals {
  /** ms since the epoch; undefined while the cgroup lives. */
  removedAt(cgroupId: bigint): number | undefined;
  /** True when removals may have been missed and ids should be checked one by one. */
  needsRescan(): boolean;
  rescan(cgroupIds: Iterable<bigint>): void;
  /** Forgets removals nothing has asked about since idleSinceMs (now is the sweep's time). */
  forgetIdle(idleSinceMs: number, now: number): void;
}

/** Labels that come from the counter key rather than the cgroup. */
export interface KeyLabelSource {
  /** The binary label of an executable id: { binary: path }, or {} when not keyed by binary or not known. */
  binaryLabels(binaryId: bigint): Record<string, string>;
  /** A policy metric's extra labels, decoded from the key's label values; undefined when it has none. */
  extraLabels(key: CounterKey): Record<string, string> | undefined;
}
