/**
 * Valid policies parse to the expected model, field for field: tally's own
 * format (test/fixtures/policies/good) and real Tetragon policies
 * (test/fixtures/policies/tetragon, from Tetragon's examples), plus the
 * pieces underneath: positions, values, addresses.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPolicyFile, loadPolicyText, formatProblem, Hook, Metric, Policy, TETRAGON_EVENTS_METRIC } from '../src/policy';
import { parseYamlStream } from '../src/policy/yaml-positions';
import { parseCidr, formatCidr } from '../src/policy/ip';
import { parseInteger, parsePort, parseProtocol, parseFamily } from '../src/policy/values';
import { closest } from '../src/policy/problems';
import { PROJECT_ROOT } from '../src/util/paths';
import { namespaceSet } from '../src/engine/compile';
import { namespaceId } from '../src/labels/namespace-id';

const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'policies');
/** A MetricsPolicy document around the given spec.kprobes entries. */
const withKprobes = (name: string, kprobes: string) => `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: ${name}}
spec:
  kprobes:${kprobes}`;
const load = (dir: string, name: string) => loadPolicyText(fs.readFileSync(path.join(FIXTURES, dir, name), 'utf8'), `${dir}/${name}`);

const written: Metric = {
  name: 'tally_file_written_bytes_total', help: 'Bytes written with write(2) and pwrite64(2).', unit: 'bytes',
  type: 'counter', value: { kind: 'arg', index: 2 }, labels: [], constLabels: {},
};
const fdAndSize = [{ index: 0, type: 'fd', returnCopy: false }, { index: 2, type: 'size_t', returnCopy: false }] as const;
const allocated: Metric = {
  name: 'tally_libc_allocated_bytes', help: 'Sizes asked of malloc and valloc.', unit: 'bytes',
  type: 'histogram', value: { kind: 'arg', index: 0 }, labels: [], constLabels: {},
};
const libc = '/usr/lib/x86_64-linux-gnu/libc.so.6';

const EXPECTED_HOOKS: Hook[] = [
  {
    kind: 'kprobe', name: 'kprobe:tcp_sendmsg', origin: { path: 'spec.kprobes[0]', line: 9, column: 5 },
    call: 'tcp_sendmsg', syscall: false, return: true, ignoreCallNotFound: false,
    returnArg: { type: 'int' },
    args: [{ index: 0, type: 'sock', returnCopy: false }, { index: 2, type: 'size_t', returnCopy: false }],
    selectors: [
      {
        matchArgs: [
          { kind: 'port', index: 0, operator: 'DPort', values: [{ min: 443, max: 443 }, { min: 8443, max: 8443 }, { min: 9000, max: 9099 }] },
          {
            kind: 'addr', index: 0, operator: 'NotDAddr', values: [
              { family: 4, bytes: [127, 0, 0, 1], prefixLen: 32 },
              { family: 4, bytes: [10, 0, 0, 0], prefixLen: 8 },
              { family: 6, bytes: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], prefixLen: 8 },
            ],
          },
        ],
        matchBinaries: [{ operator: 'In', values: ['/usr/bin/curl'] }],
        matchNamespaces: [{ operator: 'In', values: ['default'] }],
      },
      { matchArgs: [{ kind: 'int', index: 2, operator: 'GT', values: [0x10000n] }], matchBinaries: [], matchNamespaces: [] },
    ],
    metrics: [
      {
        name: 'tally_tcp_sent_bytes_total', help: 'Bytes sent over TCP.', unit: 'bytes', type: 'counter',
        value: { kind: 'arg', index: 2 }, labels: [{ name: 'port', arg: 0, field: 'dport', maxValues: 32, overflowValue: 'other' }], constLabels: {},
      },
      {
        name: 'tally_tcp_send_seconds', help: 'Time spent in tcp_sendmsg.', unit: 'seconds', type: 'histogram',
        value: { kind: 'latency' }, labels: [], constLabels: {},
      },
      {
        name: 'tally_tcp_send_result_bytes', help: 'What tcp_sendmsg returned.', unit: 'bytes', type: 'histogram',
        value: { kind: 'return' }, labels: [], constLabels: {},
      },
    ],
  },
  {
    kind: 'kprobe', name: 'kprobe:sys_write', origin: { path: 'spec.kprobes[1]', line: 42, column: 5 },
    call: 'sys_write', syscall: true, return: false, ignoreCallNotFound: false,
    args: [...fdAndSize], selectors: [], metrics: [written],
  },
  {
    kind: 'kprobe', name: 'kprobe:sys_pwrite64', origin: { path: 'spec.kprobes[2]', line: 52, column: 5 },
    call: 'sys_pwrite64', syscall: true, return: false, ignoreCallNotFound: false,
    args: [...fdAndSize], selectors: [], metrics: [written],
  },
  {
    kind: 'kprobe', name: 'kprobe:vfs_open', origin: { path: 'spec.kprobes[3]', line: 58, column: 5 },
    call: 'vfs_open', syscall: false, return: false, ignoreCallNotFound: false,
    args: [{ index: 0, type: 'path', returnCopy: false }],
    selectors: [{ matchArgs: [{ kind: 'string', index: 0, operator: 'Prefix', values: ['/var/log/', '/tmp/'] }], matchBinaries: [], matchNamespaces: [] }],
    metrics: [{
      name: 'tally_file_opens_total', help: 'Files opened under /var/log and /tmp.', type: 'counter', value: { kind: 'count' },
      labels: [{ name: 'dir', arg: 0, prefixes: ['/var/log/', '/tmp/'], overflowValue: 'elsewhere' }], constLabels: {},
    }],
  },
  {
    kind: 'tracepoint', name: 'tracepoint:sock/inet_sock_set_state', origin: { path: 'spec.tracepoints[0]', line: 71, column: 5 },
    subsystem: 'sock', event: 'inet_sock_set_state', raw: false,
    args: [{ index: 6, type: 'uint16', returnCopy: false }],
    selectors: [{ matchArgs: [{ kind: 'int', index: 6, operator: 'Equal', values: [443n] }], matchBinaries: [], matchNamespaces: [] }],
    metrics: [{ name: 'tally_sock_state_changes_total', help: 'TCP state changes on port 443.', type: 'counter', value: { kind: 'count' }, labels: [], constLabels: {} }],
  },
  {
    kind: 'uprobe', name: `uprobe:${libc}:malloc`, origin: { path: 'spec.uprobes[0].symbols[0]', line: 82, column: 15 },
    path: libc, symbol: 'malloc', return: false, args: [{ index: 0, type: 'size_t', returnCopy: false }], selectors: [], metrics: [allocated],
  },
  {
    kind: 'uprobe', name: `uprobe:${libc}:valloc`, origin: { path: 'spec.uprobes[0].symbols[1]', line: 82, column: 23 },
    path: libc, symbol: 'valloc', return: false, args: [{ index: 0, type: 'size_t', returnCopy: false }], selectors: [], metrics: [allocated],
  },
];

describe('a MetricsPolicy', () => {
  it('parses to the expected model', () => {
    const r = load('good', 'tcp-and-files.yaml');
    assert.deepEqual(r.problems, []);
    assert.equal(r.state, 'ok');
    const expected: Policy = {
      file: 'good/tcp-and-files.yaml', document: 0, kind: 'MetricsPolicy', name: 'tcp-and-files', state: 'ok', problems: [], hooks: EXPECTED_HOOKS,
    };
    assert.deepEqual(r.policies, [expected]);
  });

  it('several documents in one file are several policies', () => {
    const one = fs.readFileSync(path.join(FIXTURES, 'good', 'tcp-and-files.yaml'), 'utf8');
    // Its own name and metric names: a file's policies may share neither (repeated-names.ts).
    const again = one.replace('name: tcp-and-files', 'name: again').replace(/name: tally_/g, 'name: again_');
    const r = loadPolicyText(`${one}---\n${again}\n---\n`, 'two.yaml');
    assert.deepEqual(r.policies.map((p) => [p.document, p.name, p.state, p.hooks.length]), [[0, 'tcp-and-files', 'ok', 7], [1, 'again', 'ok', 7]]);
    // Positions are the file's, not the document's.
    assert.deepEqual(r.policies[1].hooks[0].origin, { path: 'spec.kprobes[0]', line: 96, column: 5 });
  });

  it('a hook name that repeats gets #2', () => {
    const text = withKprobes('twice', `
  - {call: tcp_connect, syscall: false, metrics: [{name: a_total, help: A.}]}
  - {call: tcp_connect, syscall: false, metrics: [{name: b_total, help: B.}]}
`);
    assert.deepEqual(loadPolicyText(text, 't.yaml').policies[0].hooks.map((h) => h.name), ['kprobe:tcp_connect', 'kprobe:tcp_connect#2']);
  });
});

/** The implicit metric every Tetragon hook feeds. */
const events = (policy: string, hook: string): Metric => ({
  name: TETRAGON_EVENTS_METRIC,
  help: 'Events matched by a hook of a Tetragon tracing policy, counted in the kernel by tally.',
  type: 'counter', value: { kind: 'count' }, labels: [], constLabels: { policy, hook },
});

describe('real Tetragon policies load unchanged', () => {
  it('tcp-connect-with-selectors: ok, host bits of 127.0.0.1/8 masked with a warning', () => {
    const r = load('tetragon', 'tcp-connect-with-selectors.yaml');
    assert.equal(r.state, 'ok');
    const warning = (line: number, hook: number) =>
      `tetragon/tcp-connect-with-selectors.yaml:${line}:11: spec.kprobes[${hook}].selectors[0].matchArgs[0].values[0]: warning: expected a network address with its host bits zero, found "127.0.0.1/8"; it is read as "127.0.0.0/8", as Tetragon reads it`;
    assert.deepEqual(r.problems.map(formatProblem), [warning(20, 0), warning(32, 1), warning(46, 2)]);
    const p = r.policies[0];
    assert.deepEqual([p.kind, p.name, p.namespace], ['TracingPolicy', 'connect', undefined]);
    const daddr = {
      kind: 'addr', index: 0, operator: 'DAddr',
      values: [{ family: 4, bytes: [127, 0, 0, 0], prefixLen: 8 }, { family: 4, bytes: [192, 168, 0, 0], prefixLen: 16 }],
    };
    const sock = { index: 0, type: 'sock', returnCopy: false };
    const hook = (call: string, line: number, i: number, args: object[]): Hook => ({
      kind: 'kprobe', name: `kprobe:${call}`, origin: { path: `spec.kprobes[${i}]`, line, column: 5 }, call, syscall: false, return: false,
      ignoreCallNotFound: false, args, selectors: [{ matchArgs: [daddr], matchBinaries: [], matchNamespaces: [] }],
      metrics: [events('connect', `kprobe:${call}`)],
    } as Hook);
    assert.deepEqual(p.hooks, [
      hook('tcp_connect', 10, 0, [sock]),
      hook('tcp_close', 22, 1, [sock]),
      hook('tcp_sendmsg', 34, 2, [sock, { index: 2, type: 'int', returnCopy: false }]),
    ]);
  });

  it('dns-only-specified-servers: partial, Sigkill left out, the filters kept', () => {
    const r = load('tetragon', 'dns-only-specified-servers.yaml');
    assert.equal(r.state, 'partial');
    assert.deepEqual(r.problems.map(formatProblem), [
      'tetragon/dns-only-specified-servers.yaml:32:17: spec.kprobes[0].selectors[0].matchActions[0].action: unsupported: expected Post, found "Sigkill"; tally counts and never enforces; it is left out and hook kprobe:ip_output still counts what it matches',
    ]);
    assert.deepEqual(r.policies[0].hooks, [{
      kind: 'kprobe', name: 'kprobe:ip_output', origin: { path: 'spec.kprobes[0]', line: 11, column: 5 }, call: 'ip_output', syscall: false,
      return: false, ignoreCallNotFound: false, args: [{ index: 2, type: 'skb', returnCopy: false }],
      selectors: [{
        matchArgs: [
          { kind: 'protocol', index: 2, operator: 'Protocol', values: [6, 17] },
          { kind: 'port', index: 2, operator: 'DPort', values: [{ min: 53, max: 53 }] },
          { kind: 'addr', index: 2, operator: 'NotDAddr', values: [{ family: 4, bytes: [127, 0, 0, 53], prefixLen: 32 }] },
        ],
        matchBinaries: [], matchNamespaces: [],
      }],
      metrics: [events('dns-only-specified-servers', 'kprobe:ip_output')],
    }]);
  });

  it('filename-monitoring-filtered: ok, with Mask, file paths, a nop arg and return values', () => {
    const r = load('tetragon', 'filename-monitoring-filtered.yaml');
    assert.deepEqual(r.problems, []);
    assert.equal(r.state, 'ok');
    const passwd = { kind: 'string', index: 0, operator: 'Equal', values: ['/etc/passwd'] };
    const hooks = r.policies[0].hooks;
    assert.deepEqual(hooks.map((h) => [h.name, h.kind === 'kprobe' && h.returnArg, h.args.map((a) => `${a.index}:${a.type}`)]), [
      ['kprobe:security_file_permission', { type: 'int' }, ['0:file', '1:int']],
      ['kprobe:security_mmap_file', { type: 'int' }, ['0:file', '1:uint32', '2:nop']],
      ['kprobe:security_path_truncate', { type: 'int' }, ['0:path']],
    ]);
    assert.deepEqual(hooks.map((h) => h.selectors[0].matchArgs), [
      [passwd, { kind: 'int', index: 1, operator: 'Equal', values: [2n] }],
      [passwd, { kind: 'int', index: 1, operator: 'Mask', values: [2n] }],
      [passwd],
    ]);
  });

  it('a TracingPolicyNamespaced carries its namespace', () => {
    const text = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: "connect"
  namespace: "shop"
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
`;
    const p = loadPolicyText(text, 'ns.yaml').policies[0];
    assert.deepEqual([p.state, p.kind, p.name, p.namespace, p.hooks.map((h) => h.metrics[0].constLabels)],
      ['ok', 'TracingPolicyNamespaced', 'connect', 'shop', [{ policy: 'connect', hook: 'kprobe:tcp_connect' }]]);
    // Its namespace is a selector the kernel evaluates: one of its own for a hook without selectors.
    assert.deepEqual(p.hooks[0].selectors, [{ matchArgs: [], matchBinaries: [], matchNamespaces: [{ operator: 'In', values: ['shop'] }] }]);
  });

  it('a TracingPolicyNamespaced adds its namespace to every selector', () => {
    const text = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata: {name: writes, namespace: jobs}
spec:
  kprobes:
  - call: sys_write
    syscall: true
    args: [{index: 0, type: int}]
    selectors:
    - matchArgs: [{index: 0, operator: Equal, values: ["1"]}]
    - matchArgs: [{index: 0, operator: Equal, values: ["2"]}]
`;
    const p = loadPolicyText(text, 'ns.yaml').policies[0];
    assert.deepEqual(p.hooks[0].selectors.map((s) => [s.matchArgs[0].values, s.matchNamespaces]), [
      [[1n], [{ operator: 'In', values: ['jobs'] }]],
      [[2n], [{ operator: 'In', values: ['jobs'] }]],
    ]);
  });

  it('matchNamespaces entries of a selector combine into one set for the kernel', () => {
    const set = (...f: Array<['In' | 'NotIn', string[]]>) => namespaceSet(f.map(([operator, values]) => ({ operator, values })));
    const ids = (...names: string[]) => names.map(namespaceId);
    assert.equal(set(), undefined);
    assert.deepEqual(set(['In', ['a', 'b', 'c']], ['In', ['b', 'c', 'd']], ['NotIn', ['c']]), { in: true, ids: ids('b') });
    assert.deepEqual(set(['NotIn', ['a']], ['NotIn', ['b', 'a']]), { in: false, ids: ids('a', 'b') });
    assert.deepEqual(set(['In', ['a']], ['In', ['b']]), { in: true, ids: [] }, 'a selector that can never match');
    const many = Array.from({ length: 9 }, (_, i) => `ns${i}`);
    assert.throws(() => set(['NotIn', many], ['NotIn', many.map((n) => `${n}x`)]), /a selector's entries name 18 namespaces together \(NotIn values add up\); the engine checks at most 16/);
    assert.notEqual(namespaceId('shop'), namespaceId('jobs'));
    assert.equal(namespaceId(undefined), 0n);
  });

  it('a file that cannot be read is a result in error, not an exception', async () => {
    const r = await loadPolicyFile('/nonexistent/policy.yaml');
    assert.deepEqual(r.problems.map(formatProblem), [
      '/nonexistent/policy.yaml:1:1: (file): expected a readable policy file, found ENOENT (no such file or directory)',
    ]);
  });
});

describe('YAML positions', () => {
  it('keys, values, flow and block styles, comments and documents', () => {
    const text = '# c\na: 1\nb:\n  - x\n  - {i: 0, t: sock}   # note\nc:\n---\nd: [1, 2]\n';
    const r = parseYamlStream(text);
    assert.ok(r.ok);
    const [one, two] = r.documents;
    const at = (p: ReturnType<typeof one.positions.valueAt>) => `${p.line}:${p.column}`;
    assert.equal(at(one.positions.valueAt(['a'])), '2:4');
    assert.equal(at(one.positions.keyAt(['b'])), '3:1');
    assert.equal(at(one.positions.valueAt(['b'])), '4:3');
    assert.equal(at(one.positions.valueAt(['b', 0])), '4:5');
    assert.equal(at(one.positions.valueAt(['b', 1, 't'])), '5:15');
    assert.equal(at(one.positions.keyAt(['b', 1, 't'])), '5:12');
    assert.ok(one.positions.isEmpty(['c']));
    // A missing path falls back to the nearest ancestor.
    assert.equal(at(one.positions.valueAt(['b', 1, 'missing'])), '5:5');
    assert.equal(at(two.positions.valueAt(['d', 1])), '8:8');
  });

  it('64-bit integers keep every digit through their source text', () => {
    const text = withKprobes('big', `
  - call: vfs_read
    syscall: false
    args: [{index: 2, type: uint64}]
    selectors: [{matchArgs: [{index: 2, operator: Equal, values: [18446744073709551615, "0xffffffffffffffff", "0755"]}]}]
    metrics: [{name: reads_total, help: Reads.}]
`);
    const f = loadPolicyText(text, 'big.yaml').policies[0].hooks[0].selectors[0].matchArgs[0];
    assert.deepEqual(f.values, [18446744073709551615n, 18446744073709551615n, 0o755n]);
  });

  it('syntax errors carry js-yaml\'s position', () => {
    assert.deepEqual(parseYamlStream('a: [1, 2\n'), { ok: false, line: 2, column: 1, reason: 'unexpected end of the stream within a flow collection' });
  });
});

describe('values', () => {
  it('integers per type, Go base-0 style', () => {
    const ok: Array<[string, Parameters<typeof parseInteger>[1], bigint]> = [
      ['-1', 'int', -1n], ['0x7fffffff', 'int32', 2147483647n], ['0b101', 'uint8', 5n], ['0o17', 'uint8', 15n],
      ['017', 'uint8', 15n], ['18446744073709551615', 'size_t', (1n << 64n) - 1n], ['-9223372036854775808', 'long', -(1n << 63n)],
    ];
    for (const [text, type, want] of ok) assert.deepEqual(parseInteger(text, type), { ok: true, value: want }, text);
    for (const [text, type] of [['256', 'uint8'], ['-1', 'uint64'], ['1.5', 'int'], ['08', 'int'], ['', 'int']] as const) {
      assert.equal(parseInteger(text, type).ok, false, `${text} as ${type}`);
    }
  });

  it('ports, ranges, protocols and families', () => {
    assert.deepEqual(parsePort('0'), { ok: true, value: { min: 0, max: 0 } });
    assert.deepEqual(parsePort('1024:65535'), { ok: true, value: { min: 1024, max: 65535 } });
    for (const bad of ['65536', '-1', '1:2:3', 'http', '']) assert.equal(parsePort(bad).ok, false, bad);
    assert.deepEqual(parseProtocol('IPPROTO_MPTCP'), { ok: true, value: 262 });
    assert.deepEqual(parseProtocol('17'), { ok: true, value: 17 });
    assert.deepEqual(parseFamily('AF_INET6'), { ok: true, value: 10 });
    assert.deepEqual(parseFamily('AF_UNIX'), { ok: true, value: 1 });
    assert.equal(parseFamily('AF_INET7').ok, false);
  });

  it('addresses and CIDRs', () => {
    const table: Array<[string, string, boolean]> = [
      ['10.0.0.0/8', '10.0.0.0/8', false],
      ['192.168.1.7', '192.168.1.7/32', false],
      ['10.1.2.3/8', '10.0.0.0/8', true],
      ['0.0.0.0/0', '0.0.0.0/0', false],
      ['::1', '::1/128', false],
      ['2001:db8::/32', '2001:db8::/32', false],
      ['fd00::1/8', 'fd00::/8', true],
      ['::ffff:10.0.0.1', '::ffff:a00:1/128', false],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8/128', false],
    ];
    for (const [text, canonical, hostBits] of table) {
      const r = parseCidr(text);
      assert.ok(r.ok, text);
      assert.equal(formatCidr(r.cidr), canonical, text);
      assert.equal(r.hostBitsSet, hostBits, text);
    }
    for (const bad of ['10.0.0.0/33', '10.0.0', '010.0.0.1', '::1/129', 'fe80::1%eth0', '1.2.3.4/08', 'example.com']) {
      assert.equal(parseCidr(bad).ok, false, bad);
    }
  });

  it('suggestions only for near misses', () => {
    assert.equal(closest('sycall', ['call', 'syscall', 'return']), 'syscall');
    assert.equal(closest('ARGS', ['args', 'selectors']), 'args');
    assert.equal(closest('frobnicate', ['args', 'selectors']), undefined);
  });
});
