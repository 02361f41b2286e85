/**
 * A kernel log2 histogram as an OTLP exponential histogram at scale 0,
 * bucket for bucket: nothing is re-bucketed or estimated.
 *
 * Kernel bucket k (0 <= k < BUCKETS) counts values in (2^(k-1), 2^k] of the
 * kernel's unit, and the kernel's unit is 2^unitLog2 of the exported one.
 * At scale 0, OTLP bucket i counts values in (2^i, 2^(i+1)]. So kernel
 * bucket k is OTLP bucket k - 1 + unitLog2, exact zeros (BUCKET_ZERO) are
 * the zero count, and the sum (BUCKET_SUM) scales by 2^unitLog2, exactly
 * (a power of two). min and max are not known and are left out.
 */
import type { ExponentialHistogram } from '@opentelemetry/sdk-metrics';
import { BUCKETS, BUCKET_SUM, BUCKET_ZERO } from '../../bpf/layout';

export function exponentialHistogram(buckets: ReadonlyMap<number, number>, unitLog2 = 0): ExponentialHistogram {
  let lo = BUCKETS;
  let hi = -1;
  let count = 0;
  for (const [k, v] of buckets) {
    if (k < BUCKETS && v > 0) {
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    }
    if (k < BUCKETS || k === BUCKET_ZERO) count += v;
  }
  // Dense from the lowest to the highest non-empty bucket, as OTLP wants.
  const bucketCounts: number[] = hi < lo ? [] : new Array<number>(hi - lo + 1).fill(0);
  if (hi >= lo) for (const [k, v] of buckets) if (k >= lo && k <= hi) bucketCounts[k - lo] += v;
  return {
    count,
    sum: (buckets.get(BUCKET_SUM) ?? 0) * 2 ** unitLog2,
    scale: 0,
    zeroCount: buckets.get(BUCKET_ZERO) ?? 0,
    positive: { offset: hi < lo ? 0 : lo - 1 + unitLog2, bucketCounts },
    negative: { offset: 0, bucketCounts: [] },
  };
}
