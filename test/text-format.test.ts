/**
 * The text formats written into a Buffer: exact bytes for labels that need
 * escaping and for UTF-8 values, the same bytes again when a label object's
 * rendering comes from the cache, and each format's own rendering of one
 * label object (OpenMetrics' float `le`).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { encodeText, encodeTextBuffer } from '../src/exporters/exposition/text-format';
import { Family } from '../src/exporters/exposition/model';

describe('text exposition', () => {
  const plain = { namespace: 'shop', workload: 'web' };
  const hostile = { path: 'C:\\tmp\\"x"\nnext', name: 'café ☕' };
  const bucket = { workload: 'web', le: '1024' };
  const families: Family[] = [
    { name: 'test_bytes_total', help: 'Bytes.\nSecond line \\ end', type: 'counter', samples: [
      { name: 'test_bytes_total', labels: plain, value: 12345678901 },
      { name: 'test_bytes_total', labels: hostile, value: 1.5 },
      { name: 'test_bytes_total', labels: {}, value: NaN },
    ] },
    { name: 'test_size', help: 'Sizes.', type: 'histogram', samples: [{ name: 'test_size_bucket', labels: bucket, value: 3 }] },
  ];
  const PROMETHEUS = [
    '# HELP test_bytes_total Bytes.\\nSecond line \\\\ end',
    '# TYPE test_bytes_total counter',
    'test_bytes_total{namespace="shop",workload="web"} 12345678901',
    'test_bytes_total{path="C:\\\\tmp\\\\\\"x\\"\\nnext",name="café ☕"} 1.5',
    'test_bytes_total NaN',
    '# HELP test_size Sizes.',
    '# TYPE test_size histogram',
    'test_size_bucket{workload="web",le="1024"} 3',
    '',
  ].join('\n');

  it('writes Prometheus 0.0.4 exactly, escaping what needs it and keeping UTF-8', () => {
    assert.equal(encodeText(families, 'prometheus'), PROMETHEUS);
    assert.equal(encodeTextBuffer(families, 'prometheus').toString('utf8'), PROMETHEUS, 'the same bytes from the cache');
  });

  it('renders the same label object each format\'s way', () => {
    const om = encodeText(families, 'openmetrics');
    assert.match(om, /^test_size_bucket\{workload="web",le="1024.0"\} 3$/m);
    assert.match(om, /^# TYPE test_bytes counter$/m);
    assert.ok(om.endsWith('# EOF\n'));
    assert.match(encodeText(families, 'prometheus'), /^test_size_bucket\{workload="web",le="1024"\} 3$/m, 'and 0.0.4 keeps its own');
  });

  it('grows its buffer for large expositions', () => {
    const many: Family[] = [{ name: 'x_total', help: 'X.', type: 'counter', samples: Array.from({ length: 20000 }, (_, i) => ({ name: 'x_total', labels: { i: String(i) }, value: i })) }];
    const text = encodeText(many, 'prometheus');
    assert.equal(text.split('\n').length, 20000 + 3);
    assert.ok(text.includes('\nx_total{i="19999"} 19999\n'));
  });
});
