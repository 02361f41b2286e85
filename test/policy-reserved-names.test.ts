/**
 * The metric names a policy may not use are exactly those of tally's own
 * registry: the catalog and the process metrics registerProcessMetrics adds.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerProcessMetrics } from '../src/health/process-metrics';
import { CATALOG } from '../src/metrics/catalog';
import { PROCESS_METRIC_NAMES, reservedMetricName } from '../src/metrics/reserved-names';

describe('reserved metric names', () => {
  it('the written-out process metrics are what registerProcessMetrics registers', () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    assert.deepEqual(registry.getMetricsAsArray().map((m) => m.name).sort(), [...PROCESS_METRIC_NAMES].sort());
  });

  it('every catalogued and process metric name is reserved, and so is its base name', () => {
    for (const name of [...CATALOG.map((m) => m.name), ...PROCESS_METRIC_NAMES]) {
      assert.match(reservedMetricName(name) ?? '', new RegExp(`^${name} is one of `), name);
      const other = name.endsWith('_total') ? name.replace(/_total$/, '') : `${name}_total`;
      assert.match(reservedMetricName(other) ?? '', new RegExp(`^${name}, with the same base name, is one of `), other);
    }
  });

  it('names of policies are free, the built-ins\' included', () => {
    for (const name of ['myapp_scrapes_total', 'tally_tcp_bytes_total', 'tally_policy_events_total', 'process_cpu_seconds_sum_total']) {
      assert.equal(reservedMetricName(name), undefined, name);
    }
  });
});
