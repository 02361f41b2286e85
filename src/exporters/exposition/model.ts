/**
 * One view of every metric, whatever format a scrape asks for.
 *
 * The registry's metrics (prom-client's and tally's own duck-typed ones)
 * hand over Prometheus-shaped samples: a histogram is already a list of
 * cumulative `_bucket{le}` samples plus `_sum` and `_count`. The kernel's
 * histograms also carry their log2 buckets as they are (`native`), so the
 * protobuf format can expose them as native histograms without re-bucketing.
 */
import { Registry } from 'prom-client';

export type FamilyType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name: the family's, or with a _bucket/_sum/_count suffix. */
  name: string;
  labels: Readonly<Record<string, string | number>>;
  value: number;
}

/**
 * A histogram series at schema 0: positive bucket index i counts values in
 * (2^(i-1), 2^i] of the exposed unit, exactly as Prometheus native
 * histograms number them.
 */
export interface NativeHistogram {
  labels: Readonly<Record<string, string>>;
  zeroCount: number;
  /** Bucket index → count, not cumulative; only non-empty buckets. */
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

export interface Family {
  name: string;
  help: string;
  type: FamilyType;
  samples: Sample[];
  /** Kernel histograms: the same series as schema-0 buckets. */
  native?: NativeHistogram[];
}

/** A sample as the registry's metrics hand it over (get()). */
export interface RegistryValue {
  labels?: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A metric as the registry's metrics hand it over (get()). */
export interface RegistryItem {
  name: string;
  help: string;
  type: string;
  values?: RegistryValue[];
  native?: NativeHistogram[];
}

const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary']);

/** Every metric of the registry, read once; the order is the registry's. */
export async function gather(registry: Registry): Promise<Family[]> {
  const items = (await registry.getMetricsAsJSON()) as unknown as RegistryItem[];
  return items.map((m) => ({
    name: m.name,
    help: m.help,
    type: TYPES.has(m.type) ? (m.type as FamilyType) : 'untyped',
    samples: (m.values ?? []).map((v) => ({ name: v.metricName ?? m.name, labels: v.labels ?? {}, value: v.value })),
    native: m.native,
  }));
}
