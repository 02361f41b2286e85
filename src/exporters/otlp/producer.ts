/**
 * The MetricProducer the OTLP reader collects from: at each collection it
 * reads the kernel (KernelCounters, the same limited read /metrics makes)
 * and the agent's own metrics (the prom-client registry), and hands them
 * over as one instrumentation scope, "tally".
 */
import type { HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { CollectionResult, MetricProducer } from '@opentelemetry/sdk-metrics';
import { emptyResource } from '@opentelemetry/resources';
import type { Registry } from 'prom-client';
import type { CollectedFamily } from '../../collectors/kernel-counters';
import type { WorkloadKindOf } from './attributes';
import { kernelMetrics } from './kernel-metrics';
import { registryMetrics } from './registry-metrics';
import { SeriesMemory } from './series-memory';

/** What the producer reads the kernel through; KernelCounters is one. */
export interface KernelSource {
  /** Drops any cached read, so collect() reads the kernel afresh. */
  invalidate(): void;
  collect(): Promise<CollectedFamily[]>;
}

export interface TallyProducerOptions {
  kernel: KernelSource;
  registry: Registry;
  /** When the agent started: the start of every cumulative value in the first collection. */
  startTime: HrTime;
  scope: { name: string; version: string };
  /** Built at each collection from the pods known then; undefined outside Kubernetes. */
  workloadKinds?: () => WorkloadKindOf;
  /** Attributes of labels that are not tally's own (the pod labels): series label name -> attribute name. */
  labelAttributes?: Readonly<Record<string, string>>;
}

export class TallyMetricProducer implements MetricProducer {
  private readonly memory: SeriesMemory;

  constructor(private readonly opts: TallyProducerOptions) {
    this.memory = new SeriesMemory(opts.startTime);
  }

  async collect(): Promise<CollectionResult> {
    this.opts.kernel.invalidate();
    const families = await this.opts.kernel.collect();
    const now = hrTime();
    let kernel;
    try {
      kernel = kernelMetrics(families, this.memory, now, this.opts.workloadKinds?.(), this.opts.labelAttributes);
    } catch (e) {
      this.memory.abandon();
      throw e;
    }
    this.memory.commit(now);
    const skip = new Set(families.map((f) => f.metric.name));
    const own = await registryMetrics(this.opts.registry, skip, this.opts.startTime, now);
    return {
      // The reader replaces the resource with the MeterProvider's.
      resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope: this.opts.scope, metrics: [...kernel, ...own] }] },
      errors: [],
    };
  }
}
