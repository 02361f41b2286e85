/**
 * prom-client metrics whose values are read at scrape time (prom-client's
 * collect() hook), never pushed on a timer: a scrape sees the kernel as it is.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { MetricSpec } from './catalog';
import { FILTER_LABELS } from '../labels/label-filter';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export type Collect = () => Iterable<Sample> | Promise<Iterable<Sample>>;

/** Label names a metric may carry: its own, plus the filter labels and overflow. */
export function labelNamesOf(spec: MetricSpec): string[] {
  return spec.filterLabels ? [...spec.labels, ...FILTER_LABELS, 'overflow'] : [...spec.labels];
}

export function defineMetric(registry: Registry, spec: MetricSpec, collect: Collect): void {
  const common = { name: spec.name, help: spec.help, labelNames: labelNamesOf(spec), registers: [registry] };
  if (spec.type === 'counter') {
    new Counter({
      ...common,
      async collect() {
        const samples = await collect();
        this.reset();
        for (const s of samples) this.inc(s.labels, s.value);
      },
    });
  } else {
    new Gauge({
      ...common,
      async collect() {
        const samples = await collect();
        this.reset();
        for (const s of samples) this.set(s.labels, s.value);
      },
    });
  }
}
