/**
 * The peer table without a kernel: --metrics-peer-cidrs parsing and its
 * errors, longest-prefix semantics over IPv4, IPv6 and IPv4-mapped IPv6, and
 * the classes tally names itself (loopback, node, unknown). resolvePeer()
 * answers as bpf/peers.bpf.h's lookup does; tcp-peers.test.ts checks the
 * kernel against the same entries.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parsePeerCidrs } from '../src/peers/peer-cidrs';
import { PeerTable, peerOfName, resolvePeer } from '../src/peers/peer-table';
import { clusterPeers, EndpointSliceRecord } from '../src/peers/cluster-peers';
import { kernelLabels } from '../src/policy/kernel-labels';
import { counterMetric } from '../src/engine/policy-metrics';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../src/util/paths';
import { parseFlags, UsageError } from '../src/cli/args';
import { loadPolicyBytes } from '../src/policy';

const LIST = 'vpc=10.0.0.0/8,office=10.20.0.0/16,internet=0.0.0.0/0,v6net=fd00::/8,internet=::/0';
const NODE = ['192.0.2.10', '2001:db8::10'];

function classOf(list: string, address: string, node: readonly string[] = NODE): string {
  const table = new PeerTable();
  const entries = table.entries(parsePeerCidrs(list), node);
  return table.className(BigInt(resolvePeer(entries, address)));
}

describe('peer classes by longest prefix', () => {
  const cases: Array<[address: string, expected: string, list?: string]> = [
    ['10.1.2.3', 'vpc'],
    ['10.20.5.6', 'office'], // /16 inside the /8: the longer one
    ['10.21.0.1', 'vpc'],
    ['8.8.8.8', 'internet'],
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['::1', 'loopback'],
    ['192.0.2.10', 'node'], // the node's own address, though 0.0.0.0/0 covers it
    ['2001:db8::10', 'node'],
    ['2001:db8::11', 'internet'],
    ['fd12::1', 'v6net'],
    ['::ffff:10.20.0.9', 'office'], // IPv4-mapped: as the IPv4 address
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:192.0.2.10', 'node'],
    // Nothing matches: unknown.
    ['8.8.8.8', 'unknown', 'vpc=10.0.0.0/8'],
    ['2001:4860::8888', 'unknown', 'vpc=10.0.0.0/8'],
    // An IPv6 /0 does not take IPv4 addresses (they sit in ::ffff:0:0/96)...
    ['8.8.8.8', 'unknown', 'internet=::/0'],
    ['::ffff:8.8.8.8', 'unknown', 'internet=::/0'],
    ['2001:4860::8888', 'internet', 'internet=::/0'],
    // ... and an IPv4 /0 does not take IPv6 ones.
    ['2001:4860::8888', 'unknown', 'internet=0.0.0.0/0'],
    // A network written as IPv4-mapped IPv6 is the IPv4 network.
    ['10.9.9.9', 'mapped', 'mapped=::ffff:10.0.0.0/104'],
    // A /32 of the list that is also the node's address: node.
    ['192.0.2.10', 'node', 'one=192.0.2.10/32'],
    ['192.0.2.11', 'unknown', 'one=192.0.2.10/32'],
  ];
  for (const [address, expected, list] of cases) {
    it(`${address} is ${expected} under ${list ?? 'the default list'}`, () => {
      assert.equal(classOf(list ?? LIST, address), expected);
    });
  }

  it('no list: loopback, node, and unknown for the rest', () => {
    assert.deepEqual(['127.0.0.1', '192.0.2.10', '10.0.0.1', '::1'].map((a) => classOf('', a)), ['loopback', 'node', 'unknown', 'loopback']);
  });

  it('a node address on loopback stays loopback', () => {
    assert.equal(classOf('', '127.0.0.2', ['127.0.0.2']), 'loopback');
  });
});

describe('peer ids', () => {
  it('tally\'s own classes have fixed ids, the list\'s follow in order of first use, and are never reused', () => {
    const t = new PeerTable();
    t.entries(parsePeerCidrs('b=10.0.0.0/8,a=11.0.0.0/8,b=12.0.0.0/8'), []);
    assert.deepEqual(t.peerNames, ['unknown', 'loopback', 'node', 'b', 'a']);
    // A replacement without b keeps b's id for what was counted under it.
    t.entries(parsePeerCidrs('c=10.0.0.0/8'), []);
    assert.deepEqual(t.peerNames, ['unknown', 'loopback', 'node', 'b', 'a', 'c']);
    assert.equal(t.className(3n), 'b');
    assert.equal(t.className(999n), 'unknown', 'an id this agent never gave');
  });

  it('one entry per key: the later class of the same network wins, the node over the list', () => {
    const t = new PeerTable();
    const entries = t.entries(parsePeerCidrs('x=192.0.2.10/32'), ['192.0.2.10']);
    // ::ffff:0:0/96, 127/8, ::1, and the node's /32 (which replaced x's).
    assert.equal(entries.length, 4);
  });
});

describe('--metrics-peer-cidrs errors', () => {
  const cases: Array<[value: string, message: RegExp]> = [
    ['vpc', /--metrics-peer-cidrs: "vpc" is not NAME=CIDR; write e.g. vpc=10.0.0.0\/8/],
    ['vpc=10.0.0.0/33', /"vpc=10.0.0.0\/33": expected an IPv4 prefix length from 0 to 32 after the \/, found "10.0.0.0\/33"/],
    ['vpc=10.0.0.300/8', /expected an IPv4 or IPv6 address/],
    ['vpc=10.0.0.1/8', /"vpc=10.0.0.1\/8" has host bits set; write the network, 10.0.0.0\/8/],
    ['VPC=10.0.0.0/8', /class name "VPC"; use lowercase letters/],
    ['=10.0.0.0/8', /class name ""/],
    ['loopback=10.0.0.0/8', /"loopback", which tally gives itself \(loopback, node, unknown, same-node, same-zone, cross-zone, cluster\); pick another name/],
    ['cross-zone=10.0.0.0/8', /which tally gives itself/],
    ['unknown=10.0.0.0/8', /which tally gives itself/],
    ['lo=127.0.0.0/16', /is a loopback network, which is always peer_class="loopback"; leave it out/],
    ['lo=::1/128', /is a loopback network/],
    ['lo=::ffff:127.0.0.1/128', /is a loopback network/],
    ['a=10.0.0.0/8,b=10.0.0.0/8', /"b=10.0.0.0\/8" gives 10.0.0.0\/8 to "b", but it is "a" already; give each network one class/],
    ['a=10.0.0.0/8,a=10.0.0.0/8', /repeats 10.0.0.0\/8; give each network once/],
    ['a=10.0.0.0/8,,b=11.0.0.0/8', /"" is empty; separate items with single commas/],
  ];
  for (const [value, message] of cases) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      assert.throws(() => parsePeerCidrs(value), message);
    });
  }

  it('reaches the command line as a usage error naming the flag', () => {
    assert.throws(() => parseFlags(['--metrics-peer-cidrs', 'vpc=10.0.0.1/8']), (e: Error) => e instanceof UsageError && /^--metrics-peer-cidrs: "vpc=10.0.0.1\/8" has host bits set/.test(e.message));
  });

  it('is parsed into the config; tcp-peers is off by default', () => {
    const p = parseFlags(['--metrics-peer-cidrs', 'vpc=10.0.0.0/8, internet=::/0']);
    assert.equal(p.kind, 'run');
    if (p.kind !== 'run') return;
    assert.deepEqual(p.config.peerCidrs.map((c) => c.name), ['vpc', 'internet']);
    assert.ok(!p.config.builtinPolicies.includes('tcp-peers'));
  });
});

describe('the peer label in a policy', () => {
  const policy = (label: string, argType = 'sock'): string[] => {
    const yaml = [
      'apiVersion: tally.dev/v1alpha1',
      'kind: MetricsPolicy',
      'metadata: {name: p}',
      'spec:',
      '  tracepoints:',
      '  - {subsystem: sock, event: sock_send_length, raw: true, args: [{index: 0, type: ' + argType + '}, {index: 1, type: int}],',
      '     metrics: [{name: x_bytes_total, help: h, value: {arg: 1}, labels: [' + label + ']}]}',
    ].join('\n');
    return loadPolicyBytes(Buffer.from(yaml), 'p.yaml').problems.map((p) => p.message);
  };

  it('reads {peer: class} on a sock arg\'s daddr', () => {
    assert.deepEqual(policy('{name: peer_class, arg: 0, field: daddr, peer: class}'), []);
  });

  it('reads class, namespace and service of one arg, and a fourth label beside them: they share one value of the key', () => {
    const peer = (name: string, part: string): string => `{name: ${name}, arg: 0, field: daddr, peer: ${part}}`;
    assert.deepEqual(policy([peer('peer_class', 'class'), peer('peer_namespace', 'namespace'), peer('peer_service', 'service'), '{name: n, arg: 1, maxValues: 4}'].join(', ')), []);
  });

  const cases: Array<[label: string, argType: string, message: RegExp]> = [
    ['{name: peer_class, arg: 0, field: saddr, peer: class}', 'sock', /expected field daddr with peer, found field saddr; the peer is the remote address \(daddr\)/],
    ['{name: peer_class, arg: 0, field: daddr, peer: class, maxValues: 4}', 'sock', /expected no maxValues or prefixes on a peer label/],
    ['{name: peer_class, arg: 0, field: daddr, peer: zone}', 'sock', /expected one of class, namespace, service, found "zone"|expected class, namespace or service, found "zone"/],
    ['{name: a, arg: 0, field: daddr, peer: class}, {name: b, arg: 0, field: daddr, peer: class}', 'sock', /expected each part of a peer once per arg, found class again; "a" is the peer's class already/],
    ['{name: a, arg: 0, field: daddr, peer: class}, {name: b, arg: 1, maxValues: 4}, {name: c, arg: 1, maxValues: 4}', 'sock', /expected at most 2 label values per metric \(peer labels of one arg count once\)/],
    ['{name: peer_class, arg: 1, peer: class}', 'sock', /peer on a sock, skb, socket or packet arg/],
  ];
  for (const [label, argType, message] of cases) {
    it(`refuses ${label}`, () => {
      const problems = policy(label, argType);
      assert.ok(problems.some((m) => message.test(m)), problems.join('\n'));
    });
  }
});

describe('cluster peers from EndpointSlices', () => {
  const slice = (namespace: string, service: string, name: string, endpoints: EndpointSliceRecord['endpoints'], addressType: 'IPv4' | 'IPv6' = 'IPv4'): EndpointSliceRecord =>
    ({ uid: `${namespace}/${name}`, namespace, name, service, addressType, endpoints });
  const slices = [
    slice('shop', 'web', 'web-a', [{ addresses: ['10.1.0.5'], nodeName: 'n1', zone: 'z1' }, { addresses: ['10.1.0.6'], nodeName: 'n2', zone: 'z1' }]),
    slice('shop', 'web', 'web-b', [{ addresses: ['10.1.0.7'], nodeName: 'n3', zone: 'z2' }, { addresses: ['fd00::7'], nodeName: 'n3', zone: 'z2' }], 'IPv6'),
    slice('shop', 'db', 'db-a', [{ addresses: ['10.1.0.8'], nodeName: 'n4' }]),
    // A pod behind two Services: the first by namespace and name (shop/api before shop/web) wins.
    slice('shop', 'api', 'api-a', [{ addresses: ['10.1.0.6'], nodeName: 'n2', zone: 'z1' }]),
  ];
  const peerOf = (address: string, node = { name: 'n1', zone: 'z1' } as { name: string; zone?: string }): string => {
    const t = new PeerTable();
    const entries = t.entries(parsePeerCidrs('pods=10.0.0.0/8'), ['192.0.2.10', '10.1.0.9'], clusterPeers(slices, node));
    const p = t.peerOf(BigInt(resolvePeer(entries, address)));
    return [p.class, p.namespace, p.service].join('/');
  };
  const cases: Array<[address: string, expected: string, node?: { name: string; zone?: string }]> = [
    ['10.1.0.5', 'same-node/shop/web'],
    ['10.1.0.6', 'same-zone/shop/api'],
    ['10.1.0.7', 'cross-zone/shop/web'],
    ['fd00::7', 'cross-zone/shop/web'],
    ['::ffff:10.1.0.7', 'cross-zone/shop/web'],
    ['10.1.0.8', 'cluster/shop/db'], // the endpoint has no zone
    ['10.1.0.7', 'cluster/shop/web', { name: 'n1' }], // this node has no zone label
    ['10.1.0.99', 'pods//'], // no endpoint: the list's class
    ['10.1.0.9', 'node//'], // the node's own address
  ];
  for (const [address, expected, node] of cases) {
    it(`${address} is ${expected}${node ? ` from a node without a zone` : ''}`, () => assert.equal(peerOf(address, node), expected));
  }

  it('one id per distinct peer, however many addresses share it', () => {
    const t = new PeerTable();
    t.entries([], [], clusterPeers(slices, { name: 'n1', zone: 'z1' }));
    // In the order addresses come: slices by namespace and Service (api, db, web), each endpoint's addresses in turn.
    assert.deepEqual(t.peerNames, ['unknown', 'loopback', 'node', 'same-zone/shop/api', 'cluster/shop/db', 'same-node/shop/web', 'cross-zone/shop/web']);
  });

  it('peer labels of one arg share one value of the key; others take their own', () => {
    const l = (name: string, arg: number, peer?: 'class' | 'namespace' | 'service') => ({ name, arg, overflowValue: 'other', ...(peer ? { peer } : { maxValues: 4 }) });
    const r = kernelLabels([l('peer_class', 0, 'class'), l('n', 1), l('peer_namespace', 0, 'namespace'), l('peer_service', 0, 'service')]);
    assert.deepEqual(r.kernel.map((k) => k.name), ['peer_class', 'n']);
    assert.deepEqual(r.index, [0, 1, 0, 0]);
  });
});

describe('a metric by peer across a restart (--bpf-pin-dir)', () => {
  it('its signature does not depend on the peers met so far (a restart translates peer ids by name), and says which key values are peer ids', () => {
    const file = path.join(PROJECT_ROOT, 'policies', 'tcp-peers.yaml');
    const policy = loadPolicyBytes(fs.readFileSync(file), file).policies[0];
    const hook = policy.hooks[0];
    const byPeer = hook.metrics[0];
    const a = new PeerTable();
    const b = new PeerTable();
    a.idOf({ class: 'cross-zone', namespace: 'shop', service: 'db' });
    const ma = counterMetric(byPeer, 1, hook, policy, a);
    const mb = counterMetric(byPeer, 1, hook, policy, b);
    assert.equal(ma.signature, mb.signature);
    // peer_class, peer_namespace and peer_service share the key's first value.
    assert.deepEqual(ma.peerSlots, [0]);
    assert.equal(counterMetric(hook.metrics[0], 1, hook, { ...policy, name: 'other' }, a).signature === ma.signature, false, 'another policy, another meaning');
  });

  it('a peer name reads back as the peer it was made from', () => {
    const t = new PeerTable();
    const peers = [{ class: 'cross-zone', namespace: 'shop', service: 'db' }, 'vpc', 'same-node'];
    for (const p of peers) t.idOf(p);
    assert.deepEqual(t.peerNames.map((n) => peerOfName(n)), [
      { class: 'unknown', namespace: '', service: '' },
      { class: 'loopback', namespace: '', service: '' },
      { class: 'node', namespace: '', service: '' },
      { class: 'cross-zone', namespace: 'shop', service: 'db' },
      { class: 'vpc', namespace: '', service: '' },
      { class: 'same-node', namespace: '', service: '' },
    ]);
    assert.equal(peerOfName('a/b'), undefined);
    assert.equal(peerOfName(''), undefined);
  });
});
