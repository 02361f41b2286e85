/**
 * readPod, the boundary between the API server's JSON and tally's pod
 * records: which objects are refused (and why), and how fields of the wrong
 * shape are read.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { ownerOf, readPod } from '../src/labels/kube/pod-object';

const md = { uid: 'u1', name: 'web-0', namespace: 'shop' };

describe('readPod', () => {
  const refused: Array<[string, unknown, string]> = [
    ['null', null, 'no_object'],
    ['a string', 'pod', 'no_object'],
    ['an array', [md], 'no_object'],
    ['an empty object', {}, 'no_metadata'],
    ['a kind only', { kind: 'Pod' }, 'no_metadata'],
    ['metadata null', { metadata: null }, 'no_metadata'],
    ['metadata a list', { metadata: [md] }, 'no_metadata'],
    ['no uid', { metadata: { name: 'a', namespace: 'b' } }, 'no_metadata'],
    ['an empty name', { metadata: { ...md, name: '' } }, 'no_metadata'],
    ['a numeric namespace', { metadata: { ...md, namespace: 7 } }, 'no_metadata'],
  ];
  for (const [what, obj, reason] of refused) {
    it(`refuses ${what}: ${reason}`, () => assert.equal(readPod(obj), reason));
  }

  it('reads a well-formed pod whole', () => {
    const pod = readPod({
      metadata: { ...md, resourceVersion: '42', labels: { app: 'web' }, annotations: { 'kubernetes.io/config.mirror': 'abc' }, ownerReferences: [{ kind: 'ReplicaSet', name: 'web-1', controller: true }] },
      status: { containerStatuses: [{ name: 'app', containerID: 'containerd://c1' }], initContainerStatuses: [{ name: 'init', containerID: 'cri-o://c2' }], ephemeralContainerStatuses: [{ name: 'dbg', containerID: 'docker://c3' }] },
    });
    assert.deepEqual(pod, {
      ...md,
      resourceVersion: '42',
      labels: { app: 'web' },
      mirrorHash: 'abc',
      owner: { kind: 'ReplicaSet', name: 'web-1' },
      containers: new Map([['c1', 'app'], ['c2', 'init'], ['c3', 'dbg']]),
    });
  });

  it('leaves out details of the wrong shape, keeping the pod', () => {
    const pod = readPod({
      metadata: { ...md, resourceVersion: 5, labels: { a: 'b', n: 1 }, annotations: 'x', ownerReferences: 'x' },
      status: { containerStatuses: [null, 5, 'x', { name: 'no-id' }, { containerID: 'containerd://no-name' }, { name: 'ok', containerID: 'containerd://c9' }], initContainerStatuses: {} },
    });
    assert.deepEqual(pod, { ...md, labels: { a: 'b' }, containers: new Map([['c9', 'ok']]) });
  });
});

describe('ownerOf', () => {
  const table: Array<[string, unknown, unknown]> = [
    ['not a list', { kind: 'ReplicaSet', name: 'x' }, undefined],
    ['an empty list', [], undefined],
    ['the controller, not the first', [{ kind: 'ConfigMap', name: 'c' }, { kind: 'StatefulSet', name: 'db', controller: true }], { kind: 'StatefulSet', name: 'db' }],
    ['the first when none controls', [{ kind: 'ConfigMap', name: 'c' }, { kind: 'Node', name: 'n' }], { kind: 'ConfigMap', name: 'c' }],
    ['entries of the wrong shape skipped', [null, { kind: 1, name: 'x', controller: true }, { kind: 'Job', name: 'j' }], { kind: 'Job', name: 'j' }],
  ];
  for (const [what, refs, want] of table) it(what, () => assert.deepEqual(ownerOf(refs), want));
});
