/** The handover state and the adoption decision (docs/restart.md): pure, table-driven, no root. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { decide } from '../../src/persist/compat';
import { decodeState, encodeState, HandoverState, STATE_FORMAT } from '../../src/persist/state';
import { translate } from '../../src/persist/translate';
import { KEY_LABEL_SET, KEY_NS_PENDING, KEY_OVERFLOW, KEY_RAW_CGROUP } from '../../src/bpf/layout';

const STATE: HandoverState = {
  format: STATE_FORMAT,
  layout: 'aaaa',
  version: '0.1.0',
  epoch: 3,
  stoppedAt: 1_700_000_000_000,
  labelFilter: 'workload,binary',
  metrics: [
    { id: 7, name: 'tally_tcp_sent_bytes_total', type: 'counter', signature: 's1' },
    { id: 8, name: 'gone_total', type: 'counter', signature: 's2' },
  ],
  labelSets: [{ id: 1, key: '{"workload":"web"}', labels: { workload: 'web' } }],
  cgroups: [['4242', 1, '0']],
  binaries: [['9223372036854775809', '/usr/bin/python3']],
  carry: [{ name: 'tally_tcp_sent_bytes_total', type: 'counter', series: [{ key: 'k', labels: { workload: 'web' }, value: 10 }] }],
  entryBase: [['1:0:7:2:0:0:0', 60]],
  overflowBase: [{ metric: 7, bucket: 0, value: 5 }],
};

describe('handover state', () => {
  it('round-trips', () => {
    assert.deepEqual(decodeState(encodeState(STATE), 'DIR/state'), STATE);
  });

  const bad: [string, Buffer, RegExp][] = [
    ['not gzip', Buffer.from('hello'), /DIR\/state: not a tally handover state .*tally state clear/],
    ['another format', gzipSync(JSON.stringify({ ...STATE, format: STATE_FORMAT + 1 })), /state format 2, this tally reads format 1/],
    ['a negative epoch', gzipSync(JSON.stringify({ ...STATE, epoch: -1 })), /field epoch should be a non-negative integer/],
    ['label set 0', gzipSync(JSON.stringify({ ...STATE, labelSets: [{ id: 0, key: 'k', labels: {} }] })), /field labelSets\[0\] should be \{id > 0, key, labels\}/],
    ['a carried value that is not a count', gzipSync(JSON.stringify({ ...STATE, carry: [{ name: 'x', type: 'counter', series: [{ key: 'k', labels: {}, value: 1.5 }] }] })), /field carry\[0\]\.series\[0\]/],
    ['a cgroup mapped to label set 0', gzipSync(JSON.stringify({ ...STATE, cgroups: [['4242', 0, '0']] })), /field cgroups\[0\] should be \[decimal cgroup id, label-set id > 0, decimal namespace id\]/],
    ['a binary id that is not decimal', gzipSync(JSON.stringify({ ...STATE, binaries: [['0x1', '/bin/sh']] })), /field binaries\[0\] should be \[decimal id, path\]/],
  ];
  for (const [what, bytes, error] of bad) {
    it(`refuses ${what}, naming the field`, () => assert.throws(() => decodeState(bytes, 'DIR/state'), error));
  }
});

describe('adopt or replace', () => {
  const current = { layout: 'aaaa', labelFilter: 'workload,binary' };
  const table: [string, Parameters<typeof decide>[0], string][] = [
    ['nothing pinned', { kind: 'empty' }, 'fresh'],
    ['the same layout and filter', { kind: 'state', state: STATE }, 'adopt'],
    ['another layout', { kind: 'state', state: { ...STATE, layout: 'bbbb' } }, 'replace: the pinned maps have layout bbbb (tally 0.1.0), this tally reads layout aaaa'],
    ['another label filter', { kind: 'state', state: { ...STATE, labelFilter: 'workload' } }, 'replace: the pinned label sets were made under --metrics-label-filter workload, this agent runs with workload,binary'],
    ['an unreadable state', { kind: 'unreadable', reason: 'no state' }, 'replace: no state'],
  ];
  for (const [what, found, want] of table) {
    it(`${what}: ${want}`, () => {
      const d = decide(found, current);
      assert.equal(d.action === 'replace' ? `replace: ${d.reason}` : d.action, want);
    });
  }
});

describe('translating the previous agent\'s keys', () => {
  const key = (cgroupId: bigint, metric: number, flags: number) => ({ cgroupId, binaryId: 0n, metric, flags, bucket: 0 });
  it('maps metric ids by name and signature and label sets by labels; drops what it cannot read; counts entries and overflow past their bases', () => {
    const t = translate(
      STATE,
      [
        { key: key(1n, 7, KEY_LABEL_SET), value: 160 }, // label set 1 -> this agent's 41; 60 of it shown already (entryBase)
        { key: key(5555n, 7, KEY_RAW_CGROUP), value: 20 }, // a raw cgroup keeps its id
        { key: key(4242n, 7, KEY_RAW_CGROUP), value: 9 }, // a raw cgroup the previous agent had labelled: its label set
        { key: key(2n, 7, KEY_LABEL_SET), value: 3 }, // a label set the state does not know
        { key: key(1n, 8, KEY_LABEL_SET), value: 4 }, // a metric this agent does not define alike
        { key: key(5555n, 7, KEY_NS_PENDING), value: 6 }, // waiting for a namespace
      ],
      [{ key: { ...key(0n, 7, KEY_OVERFLOW) }, value: 12 }],
      {
        metricId: (name, type, signature) => (name === 'tally_tcp_sent_bytes_total' && type === 'counter' && signature === 's1' ? 2 : undefined),
        labelSetId: (k) => (k === '{"workload":"web"}' ? 41 : -1),
        peerSlots: () => [],
        peerId: () => undefined,
      },
    );
    assert.deepEqual(t.entries, [
      { key: key(41n, 2, KEY_LABEL_SET), value: 100 },
      { key: key(5555n, 2, KEY_RAW_CGROUP), value: 20 },
      { key: key(41n, 2, KEY_LABEL_SET), value: 9 },
    ]);
    assert.deepEqual(t.overflow, [[2, 0, 7]]);
    assert.equal(t.dropped, 3 + 4 + 6);
  });
});

describe('translating peer ids (a metric by peer, tcp-peers)', () => {
  const PEERS: HandoverState = {
    ...STATE,
    metrics: [{ id: 7, name: 'tally_tcp_peer_sent_bytes_total', type: 'counter', signature: 'p' }],
    entryBase: [],
    overflowBase: [],
    // The writer's ids: 0 unknown, 1 loopback, 2 node, 3 and 4 as it met them.
    peers: ['unknown', 'loopback', 'node', 'cross-zone/shop/db', 'vpc'],
  };
  const key = (label0: bigint, label1?: bigint) => ({ cgroupId: 1n, binaryId: 0n, metric: 7, flags: KEY_LABEL_SET, bucket: 0, label0, ...(label1 === undefined ? {} : { label1 }) });
  // This agent met the same peers in another order, and one the writer never named.
  const mine = ['unknown', 'loopback', 'node', 'vpc', 'same-zone/shop/web', 'cross-zone/shop/db'];
  const target = (slots: number[]) => ({
    metricId: () => 2,
    labelSetId: () => 41,
    peerSlots: () => slots,
    peerId: (name: string) => {
      if (!mine.includes(name)) mine.push(name); // named at first use, as PeerTable.idOf does
      return mine.indexOf(name);
    },
  });
  const cases: Array<[what: string, state: HandoverState, slots: number[], entry: ReturnType<typeof key>, want: ReturnType<typeof key> | 'dropped']> = [
    ['a Service peer moves to this agent\'s id for it', PEERS, [0], key(3n), { ...key(5n), cgroupId: 41n, metric: 2 }],
    ['a class of the list too', PEERS, [0], key(4n), { ...key(3n), cgroupId: 41n, metric: 2 }],
    ['tally\'s own classes keep their fixed ids', PEERS, [0], key(2n), { ...key(2n), cgroupId: 41n, metric: 2 }],
    ['a peer in the second slot, the first slot another label', PEERS, [1], key(77n, 3n), { ...key(77n, 5n), cgroupId: 41n, metric: 2 }],
    ['an id the writer never gave is dropped', PEERS, [0], key(9n), 'dropped'],
    ['a writer that kept no peer table: dropped, as before', { ...PEERS, peers: undefined }, [0], key(3n), 'dropped'],
  ];
  for (const [what, state, slots, entry, want] of cases) {
    it(what, () => {
      const t = translate(state, [{ key: entry, value: 10 }], [], target(slots));
      if (want === 'dropped') {
        assert.deepEqual(t.entries, []);
        assert.equal(t.dropped, 10);
      } else {
        assert.deepEqual(t.entries, [{ key: want, value: 10 }]);
        assert.equal(t.dropped, 0);
      }
    });
  }

  it('a state with peers round-trips, and one with a peer that is not a name is refused', () => {
    assert.deepEqual(decodeState(encodeState(PEERS), 'DIR/state'), PEERS);
    assert.throws(() => decodeState(gzipSync(JSON.stringify({ ...PEERS, peers: ['vpc', 3] })), 'DIR/state'), /field peers should be a list of peer names/);
  });
});
