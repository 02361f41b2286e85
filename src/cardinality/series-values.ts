/** One series of a read, as the counting core hands it to the exporters. */
export interface SeriesValues {
  labels: Readonly<Record<string, string>>;
  /** labelKey(labels), when the reader has it: exporters that remember series across reads key them by it. */
  key?: string;
  /** Counters: the count. */
  value: number;
  /** Histograms: count per bucket (BUCKET_ZERO for zeros), and the sum under BUCKET_SUM. */
  buckets?: Map<number, number>;
}
