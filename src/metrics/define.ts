/**
 * Metrics whose values are read at scrape time, never pushed on a timer: a
 * scrape sees the kernel as it is.
 *
 * They are plain objects that prom-client's Registry asks for their values
 * (get()), rather than prom-client Counters and Gauges: those hash and
 * validate every label set on every inc()/set(), which at 100k series costs
 * more than reading the kernel. The collectors here already hold one value
 * per label set, so they hand them over as they are.
 */
import { Registry } from 'prom-client';
import { MetricSpec } from './catalog';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export type Collect = () => Iterable<Sample> | Promise<Iterable<Sample>>;

export function defineMetric(registry: Registry, spec: MetricSpec, collect: Collect): void {
  const metric = {
    name: spec.name,
    help: spec.help,
    type: spec.type,
    aggregator: 'sum' as const,
    async get() {
      return { name: spec.name, help: spec.help, type: spec.type, aggregator: 'sum' as const, values: [...(await collect())] };
    },
    reset() {},
  };
  // Duck-typed: the Registry only calls get() (and reset()) on it.
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
