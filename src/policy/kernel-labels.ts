/**
 * Which of a metric's extra labels the kernel keeps a value for in the
 * counter key (at most LIMITS.labelsPerMetric), and which value each label
 * decodes from.
 *
 * Every label is a value of its own, except peer labels: `peer: class`,
 * `peer: namespace` and `peer: service` on one arg are three readings of one
 * lookup, the peer id of the remote address (src/peers/peer-table.ts). The
 * kernel keeps that id once, at the first such label's place, and user space
 * decodes each of them from it.
 */
import { ExtraLabel } from './model';

export interface KernelLabels {
  /** The labels the kernel keeps a value for, in key order. */
  kernel: ExtraLabel[];
  /** For each of the metric's labels, the index in `kernel` of the value it decodes from. */
  index: number[];
}

export function kernelLabels(labels: readonly ExtraLabel[]): KernelLabels {
  const kernel: ExtraLabel[] = [];
  const index = labels.map((l) => {
    const shared = l.peer === undefined ? -1 : kernel.findIndex((k) => k.peer !== undefined && k.arg === l.arg);
    if (shared >= 0) return shared;
    kernel.push(l);
    return kernel.length - 1;
  });
  return { kernel, index };
}
