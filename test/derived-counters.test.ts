/**
 * Which counters are read from a histogram's sum instead of being counted
 * in the kernel: only those that would always equal it. (That such a
 * counter reads exactly the bytes sent is tcp-bytes.test.ts's to show:
 * tally_tcp_sent_bytes_total is one.)
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPolicyText } from '../src/policy';
import { derivedCounters } from '../src/engine/derived-counters';
import { PROJECT_ROOT } from '../src/util/paths';

/** A policy of uprobe hooks on two functions, each with the metrics given (YAML flow mappings). */
function policy(first: string[], second: string[] = []): Parameters<typeof derivedCounters>[0] {
  const hook = (symbol: string, metrics: string[]) => `
  - path: /bin/true
    symbols: [${symbol}]
    return: true
    args: [{index: 0, type: int}, {index: 1, type: int}]
    returnArg: {index: 0, type: int}
    metrics:${metrics.map((m) => `\n    - ${m}`).join('')}`;
  const text = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: derive}
spec:
  uprobes:${hook('f', first)}${second.length ? hook('g', second) : ''}
`;
  const r = loadPolicyText(text, 'derive.yaml');
  assert.deepEqual(r.problems, []);
  return r.policies[0];
}

const counter = (value: string, extra = '') => `{name: c_total, help: C., type: counter, value: ${value}${extra}}`;
const histogram = (value: string, extra = '') => `{name: h_bytes, help: H., unit: bytes, type: histogram, value: ${value}${extra}}`;
const label = (arg: number) => `, labels: [{name: x, arg: ${arg}, maxValues: 4, overflowValue: other}]`;

describe('counters read from a histogram sum', () => {
  it('a counter of the same arg or return value, in the same hooks, with the same labels', () => {
    assert.deepEqual([...derivedCounters(policy([counter('{arg: 1}'), histogram('{arg: 1}')]))], [['c_total', 'h_bytes']]);
    assert.deepEqual([...derivedCounters(policy([counter('return'), histogram('return')]))], [['c_total', 'h_bytes']]);
    assert.deepEqual([...derivedCounters(policy([counter('{arg: 1}', label(0)), histogram('{arg: 1}', label(0))]))], [['c_total', 'h_bytes']]);
    assert.deepEqual(
      [...derivedCounters(policy([counter('return'), histogram('return')], [counter('return'), histogram('return')]))],
      [['c_total', 'h_bytes']],
    );
  });

  it('not when the sums could differ', () => {
    const none = (p: Parameters<typeof derivedCounters>[0], why: string) => assert.deepEqual([...derivedCounters(p)], [], why);
    none(policy([counter('{arg: 1}'), histogram('{arg: 0}')]), 'another arg');
    none(policy([counter('return'), histogram('{arg: 0}')]), 'the return value against an arg');
    none(policy([counter('{arg: 1}', label(0)), histogram('{arg: 1}')]), 'labels on one only');
    none(policy([counter('{arg: 1}', label(0)), histogram('{arg: 1}', label(1))]), 'labels from other args');
    none(policy([counter('return'), histogram('return')], [counter('return')]), 'a hook counting the counter alone');
    none(policy([counter('return'), histogram('return')], [histogram('return')]), 'a hook observing the histogram alone');
    none(policy([counter('return'), histogram('return')], [counter('{arg: 0}'), histogram('return')]), 'a hook counting another value');
    none(policy([`{name: c_total, help: C., type: counter}`, `{name: h_seconds, help: H., unit: seconds, type: histogram, value: latency}`]), 'counts and latencies');
  });

  it('tcp-bytes sends: the sent-bytes counter is the send-size histogram\'s sum; file-writes has no histogram', () => {
    const builtin = (name: string) => loadPolicyText(fs.readFileSync(path.join(PROJECT_ROOT, 'policies', `${name}.yaml`), 'utf8'), name).policies[0];
    assert.deepEqual([...derivedCounters(builtin('tcp-bytes'))], [['tally_tcp_sent_bytes_total', 'tally_tcp_send_size_bytes']]);
    assert.deepEqual([...derivedCounters(builtin('file-writes'))], []);
  });
});
