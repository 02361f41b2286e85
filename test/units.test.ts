/** Table-driven tests of the pure pieces: flags, labels, layouts, checks. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseLabelFilter, applyFilter, LabelFilter, LabelFilterError } from '../src/labels/label-filter';
import { parseListenAddress, formatAddress, AddressError } from '../src/cli/address';
import { hostLabels } from '../src/labels/host-labels';
import { parseCgroup2Mounts, findCgroup2Mount } from '../src/labels/cgroup-mount';
import { decodeBinaryEvent, BINARY_EVENT, checkLayout, encodeCounterKey, decodeCounterKey } from '../src/bpf/layout';
import { checkPrivileges, effectiveCapabilities, PreflightError } from '../src/cli/preflight';
import { parseFlags, UsageError } from '../src/cli/args';
import { BinaryPaths } from '../src/labels/binary-paths';
import { parseDuration, DurationError } from '../src/util/duration';
import { CgroupPaths } from '../src/labels/cgroup-paths';
import { checkHookConfigLayout, hookConstants } from '../src/engine/hook-config';

describe('label filter', () => {
  const ok: Array<[string, string[]]> = [
    ['namespace,workload,pod,binary', ['namespace', 'workload', 'pod', 'binary']],
    ['binary,workload', ['workload', 'binary']],
    [' pod , namespace ', ['namespace', 'pod']],
    ['workload', ['workload']],
  ];
  for (const [text, want] of ok) it(`parses "${text}"`, () => assert.deepEqual(parseLabelFilter(text), want));
  const bad: Array<[string, RegExp]> = [
    ['', /is empty; valid labels: namespace, workload, pod, container, binary/],
    ['pod,', /has an empty entry/],
    ['pods', /unknown label "pods"/],
    ['Pod', /unknown label "Pod"/],
    ['pod,pod', /appears twice/],
  ];
  for (const [text, re] of bad) it(`rejects "${text}"`, () => assert.throws(() => parseLabelFilter(text), (e: unknown) => e instanceof LabelFilterError && re.test(e.message)));
  it('drops labels outside the filter and empty values', () => {
    assert.deepEqual(applyFilter(['workload', 'binary'], { namespace: 'ns', workload: 'w', pod: 'p', binary: '' }), { workload: 'w' });
  });
  const compiled: Array<[string, { keyByBinary: boolean; keyByCgroup: boolean; cgroupLabels: string[] }]> = [
    ['namespace,workload,pod,binary', { keyByBinary: true, keyByCgroup: true, cgroupLabels: ['namespace', 'workload', 'pod'] }],
    ['binary', { keyByBinary: true, keyByCgroup: false, cgroupLabels: [] }],
    ['container,pod', { keyByBinary: false, keyByCgroup: true, cgroupLabels: ['pod', 'container'] }],
  ];
  for (const [text, want] of compiled) {
    it(`compiles "${text}" once: what the kernel keys by`, () => {
      const f = LabelFilter.parse(text);
      assert.deepEqual({ keyByBinary: f.keyByBinary, keyByCgroup: f.keyByCgroup, cgroupLabels: [...f.cgroupLabels] }, want);
    });
  }
  it('keeps a cgroup\'s values under the filter, binary never among them', () => {
    assert.deepEqual(LabelFilter.parse('workload,binary').cgroupValues({ namespace: 'ns', workload: 'w', binary: '/bin/sh' }), { workload: 'w' });
  });
});

describe('listen address', () => {
  const ok: Array<[string, { host?: string; port: number }]> = [
    [':2112', { host: undefined, port: 2112 }],
    ['127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ];
  for (const [text, want] of ok) {
    it(`parses ${text}`, () => {
      assert.deepEqual(parseListenAddress(text), want);
      assert.equal(formatAddress(parseListenAddress(text)), text);
    });
  }
  for (const text of ['2112', 'host', ':', ':-1', ':65536', '::1:80', 'a:b']) {
    it(`rejects ${text}`, () => assert.throws(() => parseListenAddress(text), AddressError));
  }
});

describe('host labels', () => {
  const table: Array<[string | null, object]> = [
    ['/system.slice/nginx.service', { workload: 'nginx.service' }],
    ['/kubepods.slice/x/cri-containerd-abc.scope', { workload: 'cri-containerd-abc.scope' }],
    ['/', {}],
    [null, {}],
  ];
  for (const [p, want] of table) it(`${p}`, () => assert.deepEqual(hostLabels(p), want));
});

describe('cgroup2 mount discovery', () => {
  const hybrid = 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';
  const pure = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n';
  const odd = 'none /mnt/my\\040cg cgroup2 rw 0 0\n';
  it('hybrid mode uses /sys/fs/cgroup/unified', () => assert.equal(findCgroup2Mount(hybrid), '/sys/fs/cgroup/unified'));
  it('pure v2 uses /sys/fs/cgroup', () => assert.equal(findCgroup2Mount(pure), '/sys/fs/cgroup'));
  it('an unusual mount point, with an escaped space', () => assert.deepEqual(parseCgroup2Mounts(odd), ['/mnt/my cg']));
  it('no cgroup2 mount is a clear error', () => assert.throws(() => findCgroup2Mount('proc /proc proc rw 0 0\n'), /no cgroup v2 hierarchy is mounted/));
});

describe('kernel layouts', () => {
  it('match what the addon compiled from bpf/tally_types.h', () => checkLayout());
  it('hook configuration: offsets, caps and enum values match what the addon compiled from bpf/policy.h', () => checkHookConfigLayout());
  it('hook configuration: every constant has its C name (a renumbered or renamed value fails at startup)', () => {
    const names = hookConstants().map(([k]) => k);
    for (const n of ['TALLY_POL_ARGS', 'TALLY_SRC_CONST', 'TALLY_SRC_GROUP_DEAD', 'TALLY_F_FS_MAGIC', 'TALLY_OP_NOT_MASK', 'TALLY_LABEL_CONST', 'TALLY_VAL_LATENCY', 'TALLY_WANT_FS_MAGIC']) {
      assert.ok(names.includes(n), n);
    }
  });

  it('a counter key round-trips', () => {
    const k = { cgroupId: 0x1234567890n, binaryId: (1n << 63n) | 5n, metric: 1, flags: 2, label0: 443n, label1: 0xffffffffffffffffn, bucket: 17 };
    assert.deepEqual(decodeCounterKey(encodeCounterKey(k), 0), k);
  });

  function event(id: bigint, components: string[], truncated = false): Buffer {
    const buf = Buffer.alloc(BINARY_EVENT.size);
    buf.writeBigUInt64LE(id, BINARY_EVENT.binary_id);
    const path = Buffer.from(components.map((c) => c + '\0').join(''));
    path.copy(buf, BINARY_EVENT.path);
    buf.writeUInt32LE(path.length, BINARY_EVENT.path_len);
    buf.writeUInt32LE(truncated ? 1 : 0, BINARY_EVENT.truncated);
    return buf;
  }
  it('binary paths are rebuilt from leaf-first components', () => {
    assert.deepEqual(decodeBinaryEvent(event(9n, ['nginx', 'sbin', 'usr'])), { binaryId: 9n, path: '/usr/sbin/nginx', truncated: false });
    assert.equal(decodeBinaryEvent(event(9n, ['x', 'deep'], true)).path, '…/deep/x');
  });
});

describe('binary path table', () => {
  it('answers announced ids, counts misses, never labels "no executable"', () => {
    const t = new BinaryPaths(2);
    t.learn({ binaryId: 10n, path: '/bin/a', truncated: false });
    assert.equal(t.path(10n), '/bin/a');
    assert.equal(t.path(11n), undefined);
    assert.equal(t.path(1n), undefined);
    assert.equal(t.path(0n), undefined);
    t.learn({ binaryId: 11n, path: '/bin/b', truncated: false });
    t.learn({ binaryId: 12n, path: '/bin/c', truncated: true });
    assert.deepEqual({ hits: t.stats.hits, misses: t.stats.misses, evictions: t.stats.evictions, entries: t.stats.entries }, { hits: 1, misses: 1, evictions: 1, entries: 2 });
    assert.equal(t.truncated, 1);
  });
});

describe('cgroup path cache', () => {
  it('looks each id up once, remembers gone cgroups, and evicts at capacity', () => {
    const calls: bigint[] = [];
    const c = new CgroupPaths('/mnt', 2, (_m, id) => {
      calls.push(id);
      return id === 3n ? null : `/cg${id}`;
    });
    assert.equal(c.path(1n), '/cg1');
    assert.equal(c.path(1n), '/cg1');
    assert.equal(c.path(3n), null);
    assert.equal(c.path(3n), null);
    assert.equal(c.path(2n), '/cg2'); // evicts 1
    assert.deepEqual(calls, [1n, 3n, 2n]);
    assert.deepEqual({ hits: c.stats.hits, misses: c.stats.misses, evictions: c.stats.evictions }, { hits: 2, misses: 3, evictions: 1 });
  });
});

describe('privileges', () => {
  const caps = (...bits: number[]): bigint => bits.reduce((a, b) => a | (1n << BigInt(b)), 0n);
  it('root (all capabilities) passes', () => checkPrivileges(caps(...Array.from({ length: 41 }, (_, i) => i))));
  it('CAP_BPF + CAP_PERFMON + CAP_DAC_READ_SEARCH passes', () => checkPrivileges(caps(39, 38, 2)));
  it('CAP_SYS_ADMIN alone passes', () => checkPrivileges(caps(21)));
  it('CAP_BPF alone names what is missing', () =>
    assert.throws(() => checkPrivileges(caps(39)), (e: unknown) => e instanceof PreflightError && /missing: CAP_PERFMON, CAP_DAC_READ_SEARCH$/.test(e.message)));
  it('reads CapEff from /proc/self/status text', () => assert.equal(effectiveCapabilities('Name:\tx\nCapEff:\t000001ffffffffff\n'), (1n << 41n) - 1n));
});

describe('flags', () => {
  it('defaults', () => {
    const p = parseFlags([]);
    assert.equal(p.kind, 'run');
    if (p.kind !== 'run') return;
    assert.deepEqual(p.config.metricsServer, { host: undefined, port: 2112 });
    assert.deepEqual(p.config.labelFilter.labels, ['namespace', 'workload', 'pod', 'binary']);
    assert.equal(p.config.logLevel, 'info');
    assert.equal(p.config.counterMapCapacity, 16384);
  });
  it('a positional argument is refused', () => assert.throws(() => parseFlags(['run']), UsageError));
});

describe('durations', () => {
  const ok: Array<[string, number]> = [['500ms', 500], ['30s', 30_000], ['1m', 60_000], ['2h', 7_200_000], ['1m30s', 90_000], ['1.5s', 1500]];
  for (const [text, ms] of ok) it(`parses ${text}`, () => assert.equal(parseDuration('--x', text), ms));
  for (const text of ['', '1', '1d', 'm', '1m ', '-1s', '1s2']) {
    it(`rejects "${text}"`, () => assert.throws(() => parseDuration('--metrics-series-ttl', text), (e: unknown) => e instanceof DurationError && /--metrics-series-ttl ".*" is not a duration; write it like 30s, 1m or 1m30s/.test((e as Error).message)));
  }
});
