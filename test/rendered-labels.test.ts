/**
 * An encoding kept on its labels object (src/exporters/exposition/rendered-labels.ts):
 * found again for the same object only, invisible to whatever reads the
 * labels, and kept for frozen objects too.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { RenderedLabels } from '../src/exporters/exposition/rendered-labels';

describe('RenderedLabels', () => {
  it('keeps an encoding per object and per kind, unseen by readers of the labels', () => {
    const text = new RenderedLabels('text');
    const proto = new RenderedLabels('proto');
    const labels = { namespace: 'shop', workload: 'web' };
    const twin = { namespace: 'shop', workload: 'web' };
    text.set(labels, Buffer.from('{namespace="shop",workload="web"}'));
    assert.equal(text.get(labels)?.toString(), '{namespace="shop",workload="web"}');
    assert.equal(text.get(twin), undefined, 'an equal object is another object');
    assert.equal(proto.get(labels), undefined, 'each kind its own');
    assert.deepEqual(Object.keys(labels), ['namespace', 'workload']);
    assert.deepEqual(Object.entries({ ...labels }), [['namespace', 'shop'], ['workload', 'web']]);
    assert.deepEqual(Object.getOwnPropertySymbols({ ...labels }), [], 'a spread copies no encoding');
    assert.equal(JSON.stringify(labels), '{"namespace":"shop","workload":"web"}');
    const keys: string[] = [];
    for (const k in labels) keys.push(k);
    assert.deepEqual(keys, ['namespace', 'workload']);
    text.set(labels, Buffer.from('again'));
    assert.equal(text.get(labels)?.toString(), 'again', 'replaced');
  });

  it('a frozen object keeps its encoding too', () => {
    const r = new RenderedLabels('text');
    const frozen = Object.freeze({ overflow: 'true' });
    r.set(frozen, Buffer.from('{overflow="true"}'));
    assert.equal(r.get(frozen)?.toString(), '{overflow="true"}');
    assert.equal(Object.getOwnPropertySymbols(frozen).length, 0);
  });
});
