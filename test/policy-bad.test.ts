/**
 * Malformed policies, one fixture each (test/fixtures/policies/bad/), and the
 * exact lines `tally policy check` prints for them: position, field path,
 * what was expected, what was found, how to fix. Tetragon policies with
 * features tally does not implement are here too, with the state they load in.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPolicyBytes, loadPolicyText, formatProblem, PolicyState } from '../src/policy';
import { PROJECT_ROOT } from '../src/util/paths';

const BAD = path.join(PROJECT_ROOT, 'test', 'fixtures', 'policies', 'bad');

/** [fixture name, file state, lines]. */
const TABLE: Array<[string, PolicyState, string[]]> = [
  ["arg-index-range", "error", [
    `arg-index-range.yaml:10:15: spec.kprobes[0].args[0].index: expected an arg index from 0 to 5, found the number 6`,
  ]],
  ["bad-cidr", "error", [
    `bad-cidr.yaml:16:11: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: expected an IPv4 prefix length from 0 to 32 after the /, found "10.0.0.0/33"`,
    `bad-cidr.yaml:17:11: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: expected a network address with its host bits zero, found "10.1.2.3/8"; write "10.0.0.0/8"`,
    `bad-cidr.yaml:18:11: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: expected an IPv4 or IPv6 address, optionally with /PREFIX (e.g. 10.0.0.0/8 or fd00::/8), found "300.1.1.1"`,
    `bad-cidr.yaml:19:11: spec.kprobes[0].selectors[0].matchArgs[0].values[3]: expected a network address with its host bits zero, found "fd00::1/8"; write "fd00::/8"`,
  ]],
  ["bad-metric-name", "error", [
    `bad-metric-name.yaml:10:14: spec.kprobes[0].metrics[0].name: expected a Prometheus metric name (letters, digits and _, not starting with a digit or __, at most 128 characters), found "tally-tcp-connects-total"; write "tally_tcp_connects_total"`,
  ]],
  ["bad-name", "error", [
    `bad-name.yaml:4:9: metadata.name: expected a Kubernetes name (lowercase letters, digits and -, starting and ending with a letter or digit, at most 63 characters), found "TCP_Send"; write "tcp-send"`,
    `bad-name.yaml:5:3: metadata.namespace: expected no namespace, found "default"; a MetricsPolicy is cluster-wide; to count one namespace, use matchNamespaces in its selectors`,
  ]],
  ["bad-port", "error", [
    `bad-port.yaml:13:51: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: expected a port from 0 to 65535, or a range FIRST:LAST, found "70000"`,
    `bad-port.yaml:13:60: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: expected a range FIRST:LAST with FIRST not above LAST, found "9000:8000"; write "8000:9000"`,
    `bad-port.yaml:13:73: spec.kprobes[0].selectors[0].matchArgs[0].values[3]: expected a port from 0 to 65535, or a range FIRST:LAST, found "https"`,
  ]],
  ["bad-protocol-family", "error", [
    `bad-protocol-family.yaml:13:49: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: expected an IP protocol name (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, …) or a number from 0 to 65535, found "tcp"; did you mean "IPPROTO_TCP"?`,
    `bad-protocol-family.yaml:13:69: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: expected an IP protocol name (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, …) or a number from 0 to 65535, found "70000"`,
    `bad-protocol-family.yaml:14:57: spec.kprobes[0].selectors[0].matchArgs[1].values[1]: expected an address family name (AF_INET, AF_INET6, AF_UNIX, …) or a number from 0 to 65535, found "af_inet"; did you mean "AF_INET"?`,
  ]],
  ["counter-without-total", "error", [
    `counter-without-total.yaml:10:13: spec.kprobes[0].metrics[0].name: expected a counter name ending in _total, found "tally_tcp_connects"; write "tally_tcp_connects_total"`,
  ]],
  ["duplicate-metric", "error", [
    `duplicate-metric.yaml:21:13: spec.kprobes[1].metrics[0].type: expected "counter", as declared at spec.kprobes[0].metrics[0] (line 11), found "histogram"; a metric fed by several hooks is declared identically in each`,
  ]],
  ["empty-file", "error", [
    `empty-file.yaml:1:1: (file): expected at least one policy document, found none; the file is empty or holds only comments`,
  ]],
  ["empty-spec", "error", [
    `empty-spec.yaml:5:7: spec: expected at least one hook under kprobes, tracepoints, uprobes, usdts or packets, found none`,
  ]],
  ["histogram-of-count", "error", [
    `histogram-of-count.yaml:10:7: spec.kprobes[0].metrics[0]: expected a value for a histogram to observe: {arg: INDEX}, return or latency, found no value (count); a histogram of count would only ever observe 1`,
    `histogram-of-count.yaml:11:14: spec.kprobes[0].metrics[1].name: expected a histogram name not ending in _total, _bucket, _sum or _count, found "tally_tcp_connect_size_total"; Prometheus adds _bucket, _sum and _count to it`,
    `histogram-of-count.yaml:11:82: spec.kprobes[0].metrics[1].value: expected count or {arg: INDEX} (the hook has no return: true), found "return"; return needs return: true on the hook`,
  ]],
  ["invalid-utf8", "error", [
    `invalid-utf8.yaml:11:33: (file): expected UTF-8 text, found the byte 0xE9, which is not valid UTF-8 there; save the file as UTF-8`,
  ]],
  ["kind-mismatch", "error", [
    `kind-mismatch.yaml:2:7: kind: expected MetricsPolicy (the kind of apiVersion tally.dev/v1alpha1), found "TracingPolicy"; TracingPolicy has apiVersion cilium.io/v1alpha1`,
  ]],
  ["label-clash", "error", [
    `label-clash.yaml:15:16: spec.kprobes[0].metrics[0].labels[0].name: expected a label name other than namespace, workload, pod, container, binary, node, overflow, le, found "pod"; tally puts pod on series through --metrics-label-filter; pick another name`,
    `label-clash.yaml:16:16: spec.kprobes[0].metrics[0].labels[1].name: expected a label name other than namespace, workload, pod, container, binary, node, overflow, le, found "le"; Prometheus names histogram buckets with it; pick another name`,
  ]],
  ["label-sources", "error", [
    `label-sources.yaml:18:29: spec.kprobes[0].metrics[0].labels[0].field: expected no field on a file arg, found field "dport"; fields apply to sock, skb, socket, packet, sockaddr and task args`,
    `label-sources.yaml:19:30: spec.kprobes[0].metrics[0].labels[1].prefixes: expected prefixes only on a string, char_buf, file or path arg, found prefixes on a size_t arg; use maxValues to cap other values`,
  ]],
  ["latency-without-return", "error", [
    `latency-without-return.yaml:13:14: spec.kprobes[0].metrics[0].value: expected count or {arg: INDEX} (the hook has no return: true), found "latency"; latency needs return: true on the hook`,
  ]],
  ["matchargs-undeclared", "error", [
    `matchargs-undeclared.yaml:14:17: spec.kprobes[0].selectors[0].matchArgs[0].index: expected the index of a declared arg (0, 2), found 1; declare it under args with its type`,
  ]],
  ["maxvalues-range", "error", [
    `maxvalues-range.yaml:15:55: spec.kprobes[0].metrics[0].labels[0].maxValues: expected a number of values from 1 to 1024, found the number 5000`,
  ]],
  ["missing-call", "error", [
    `missing-call.yaml:7:5: spec.kprobes[0].call: expected a kernel function or syscall name, found no such field`,
  ]],
  ["not-a-policy", "error", [
    `not-a-policy.yaml:1:1: (document): expected a policy: a mapping with apiVersion, kind, metadata and spec, found a list of 1`,
  ]],
  ["operator-for-type", "error", [
    `operator-for-type.yaml:13:30: spec.kprobes[0].selectors[0].matchArgs[0].operator: expected an operator for a size_t arg (Equal, NotEqual, GT, LT, Mask, NotMask), found "DPort"; DPort applies to sock, skb and packet args`,
  ]],
  ["reserved-metric-name", "error", [
    `reserved-metric-name.yaml:11:13: spec.kprobes[0].metrics[0].name: expected a name of your own, found "process_cpu_seconds_total"; process_cpu_seconds_total is one of the Node.js process metrics tally exports (docs/metrics.md); rename yours, e.g. with your own prefix`,
    `reserved-metric-name.yaml:13:13: spec.kprobes[0].metrics[1].name: expected a name of your own, found "tally_scrapes_total"; tally_scrapes_total is one of tally's own metrics (docs/metrics.md); rename yours, e.g. with your own prefix`,
    `reserved-metric-name.yaml:15:13: spec.kprobes[0].metrics[2].name: expected a name of your own, found "nodejs_gc_duration_seconds"; nodejs_gc_duration_seconds is one of the Node.js process metrics tally exports (docs/metrics.md); rename yours, e.g. with your own prefix`,
    `reserved-metric-name.yaml:19:13: spec.kprobes[0].metrics[3].name: expected a name of your own, found "tally_scrapes"; tally_scrapes_total, with the same base name, is one of tally's own metrics (docs/metrics.md); rename yours, e.g. with your own prefix`,
  ]],
  ["second-document", "partial", [
    `second-document.yaml:13:7: kind: expected one of TracingPolicy, TracingPolicyNamespaced (the kinds of apiVersion cilium.io/v1alpha1), found "TetragonPolicy"; did you mean "TracingPolicy"?`,
    `second-document.yaml:16:1: rules: expected one of apiVersion, kind, metadata, spec, found unknown key "rules"`,
  ]],
  ["shared-metric-labels", "error", [
    `shared-metric-labels.yaml:24:13: spec.kprobes[1].metrics[0].help: expected "Bytes written.", as declared at spec.kprobes[0].metrics[0] (line 12), found "Bytes written by pwrite64."; a metric fed by several hooks is declared identically in each`,
    `shared-metric-labels.yaml:28:7: spec.kprobes[1].metrics[0].labels: expected labels fd (maxValues 8, overflowValue "other"), as declared at spec.kprobes[0].metrics[0] (line 12), found labels fd (maxValues 16, overflowValue "other"); a metric fed by several hooks is declared identically in each`,
  ]],
  ["spec-null", "error", [
    `spec-null.yaml:5:6: spec: expected a mapping with kprobes, tracepoints, uprobes, usdts or packets, found nothing`,
  ]],
  ["string-too-long", "error", [
    `string-too-long.yaml:17:11: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: expected a non-empty string of at most 128 bytes (tally's limit per string value), found "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" (131 characters)`,
  ]],
  ["tetragon-actions", "partial", [
    `tetragon-actions.yaml:15:17: spec.kprobes[0].selectors[0].matchActions[0].action: unsupported: expected Post, found "NoPost"; NoPost keeps this selector's matches from being reported, and tally's selectors cannot express that exclusion; so hook kprobe:sys_mount is not loaded`,
    `tetragon-actions.yaml:27:22: spec.kprobes[1].returnArgAction: unsupported: expected no returnArgAction, found "TrackSock"; tally does not track sockets for later events; it is left out and hook kprobe:sys_openat still counts what it matches`,
    `tetragon-actions.yaml:35:17: spec.kprobes[1].selectors[0].matchActions[0].action: unsupported: expected Post, found "Override"; tally counts and never enforces; it is left out and hook kprobe:sys_openat still counts what it matches`,
    `tetragon-actions.yaml:38:9: spec.kprobes[1].selectors[0].matchActions[1].rateLimit: warning: expected fields that affect counting, found rateLimit; it limits the events Tetragon sends, and tally counts every match, so it is ignored`,
    `tetragon-actions.yaml:39:9: spec.kprobes[1].selectors[0].matchActions[1].kernelStackTrace: warning: expected fields that affect counting, found kernelStackTrace; it adds to the events Tetragon sends, and tally exports no events, so it is ignored`,
  ]],
  ["tetragon-no-hooks", "error", [
    `tetragon-no-hooks.yaml:6:3: spec.loader: warning: expected fields that affect counting, found loader; loader events are Tetragon events, and tally exports no events, so it is ignored`,
    `tetragon-no-hooks.yaml:6:3: spec: expected at least one hook tally can load, found none`,
  ]],
  ["tetragon-nothing-left", "error", [
    `tetragon-nothing-left.yaml:6:3: spec: expected at least one hook tally can load, found none; the other problems say why each hook was left out`,
    `tetragon-nothing-left.yaml:20:7: spec.kprobes[0].selectors[0].matchPIDs: unsupported: expected a filter tally evaluates (matchArgs, matchBinaries, matchNamespaces, matchCapabilities), found matchPIDs; tally does not filter on process IDs, and without this filter the hook would count calls the policy does not select; so hook kprobe:fd_install is not loaded`,
  ]],
  ["tetragon-other-hooks", "partial", [
    `tetragon-other-hooks.yaml:5:3: metadata.namespace: warning: expected no namespace, found "ignored"; a TracingPolicy is cluster-wide and Kubernetes ignores its namespace; to count one namespace, use TracingPolicyNamespaced`,
    `tetragon-other-hooks.yaml:8:5: spec.options[0]: warning: expected fields that affect counting, found option disable-kprobe-multi; Tetragon's options tune how it attaches hooks, and tally chooses its own way, so it is ignored`,
    `tetragon-other-hooks.yaml:10:3: spec.enforcers: unsupported: expected no enforcers, found enforcers; tally counts and never enforces; they are left out and every hook still counts what it matches`,
    `tetragon-other-hooks.yaml:16:5: spec.fentries[0]: unsupported: expected a hook kind tally implements (kprobes, tracepoints, uprobes, usdts, lsmhooks), found an entry of fentries; tally attaches kernel functions through kprobes; write this hook under kprobes; so hook fentry:sys_dup is not loaded`,
    `tetragon-other-hooks.yaml:22:5: spec.kprobes[0].tags: warning: expected fields that affect counting, found tags; Tetragon puts the tags in events, and tally exports no events, so it is ignored`,
    `tetragon-other-hooks.yaml:25:13: spec.kprobes[0].args[0].type: warning: expected an arg tally can read, found "auto"; tally does not decode type auto; no selector filters on arg 0, so it is not read and counting is unaffected`,
    `tetragon-other-hooks.yaml:28:7: spec.kprobes[0].args[1].label: warning: expected fields that affect counting, found label; it names the arg in events, and tally exports no events, so it is ignored`,
  ]],
  ["tetragon-pod-selector", "error", [
    `tetragon-pod-selector.yaml:7:3: spec.podSelector: unsupported: expected no podSelector, found podSelector; tally does not select pods by label, and without it every hook would count more than the policy selects; so no hook of this policy is loaded`,
  ]],
  ["tetragon-return-without-returnarg", "error", [
    `tetragon-return-without-returnarg.yaml:7:5: spec.kprobes[0].returnArg: expected a returnArg, as Tetragon requires with return: true, found no such field`,
  ]],
  ["tetragon-sigkill", "partial", [
    `tetragon-sigkill.yaml:9:5: spec.kprobes[0].message: warning: expected fields that affect counting, found message; Tetragon puts the message in events, and tally exports no events, so it is ignored`,
    `tetragon-sigkill.yaml:19:11: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: warning: expected a network address with its host bits zero, found "127.0.0.1/8"; it is read as "127.0.0.0/8", as Tetragon reads it`,
    `tetragon-sigkill.yaml:21:17: spec.kprobes[0].selectors[0].matchActions[0].action: unsupported: expected Post, found "Sigkill"; tally counts and never enforces; it is left out and hook kprobe:tcp_connect still counts what it matches`,
  ]],
  ["tetragon-unfaithful-filters", "error", [
    `tetragon-unfaithful-filters.yaml:6:3: spec: expected at least one hook tally can load, found none; the other problems say why each hook was left out`,
    `tetragon-unfaithful-filters.yaml:14:16: spec.kprobes[0].selectors[0].matchArgs[0].index: unsupported: expected a filter tally can evaluate, found a filter on fd arg 0; Tetragon matches the path of the file an fd arg refers to, and tally reads only the number; so hook kprobe:sys_write is not loaded`,
    `tetragon-unfaithful-filters.yaml:25:25: spec.kprobes[1].selectors[0].matchBinaries[0].followChildren: unsupported: expected followChildren: false, found the boolean true; tally matches the binary of the calling process only and does not follow its children; so hook kprobe:sys_read is not loaded`,
    `tetragon-unfaithful-filters.yaml:26:11: spec.kprobes[2].call: unsupported: expected a function name, or a list tally expands, found "list:dups"; list dups is every kernel function matching a pattern, which tally does not expand (it can be past tally's limit of 64 hooks per policy); write the functions out in a list without a type; so hook kprobe:list:dups is not loaded`,
    `tetragon-unfaithful-filters.yaml:36:16: spec.kprobes[3].selectors[0].matchArgs[0].index: unsupported: expected the index of an arg tally can read, found 0; the filter needs arg 0, and tally does not read struct fields through resolve; so hook kprobe:security_file_open is not loaded`,
  ]],
  ["tetragon-unsupported-operator", "partial", [
    `tetragon-unsupported-operator.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: unsupported: expected an operator tally implements (Equal, NotEqual, GT, LT, Mask, NotMask, Prefix, NotPrefix, Postfix, NotPostfix, SAddr, DAddr, NotSAddr, NotDAddr, SPort, DPort, NotSPort, NotDPort, Protocol, Family, FileType, NotFileType, FileSystem, NotFileSystem), found "InRange"; without this filter the hook would count calls the policy does not select; so hook kprobe:sys_dup is not loaded`,
    `tetragon-unsupported-operator.yaml:37:19: spec.kprobes[2].selectors[0].matchArgs[0].operator: unsupported: expected an operator tally implements (Equal, NotEqual, GT, LT, Mask, NotMask, Prefix, NotPrefix, Postfix, NotPostfix, SAddr, DAddr, NotSAddr, NotDAddr, SPort, DPort, NotSPort, NotDPort, Protocol, Family, FileType, NotFileType, FileSystem, NotFileSystem), found "SPortPriv"; without this filter the hook would count calls the policy does not select; so hook kprobe:tcp_connect is not loaded`,
  ]],
  ["too-many-selectors", "error", [
    `too-many-selectors.yaml:12:5: spec.kprobes[0].selectors: expected at most 5 selectors (tally's limit per kprobe), found 6 selectors`,
  ]],
  ["too-many-values", "error", [
    `too-many-values.yaml:15:17: spec.kprobes[0].selectors[0].matchArgs[0].values: expected at most 16 values (tally's limit per matchArgs entry), found 17 values; split them across several selectors, which OR`,
  ]],
  ["unit-suffix", "error", [
    `unit-suffix.yaml:12:14: spec.kprobes[0].metrics[0].name: expected a name ending in _bytes_total (its unit is bytes), found "tally_tcp_sent_total"; write "tally_tcp_sent_bytes_total"`,
  ]],
  ["unknown-arg-type", "error", [
    `unknown-arg-type.yaml:11:24: spec.kprobes[0].args[1].type: expected one of int, int8, int16, int32, int64, long, uint8, uint16, uint32, uint64, size_t, fd, string, char_buf, file, path, linux_binprm, net_device, sock, skb, sockaddr, socket, task, packet, found "u128"`,
  ]],
  ["unknown-hook-kind", "error", [
    `unknown-hook-kind.yaml:6:3: spec.lsmhooks: expected one of kprobes, tracepoints, uprobes, usdts, packets, found unknown key "lsmhooks"`,
    `unknown-hook-kind.yaml:6:3: spec: expected at least one hook under kprobes, tracepoints, uprobes, usdts or packets, found none`,
  ]],
  ["unknown-key", "error", [
    `unknown-key.yaml:8:5: spec.kprobes[0].sycall: expected one of call, syscall, return, args, selectors, metrics, taskContext, fallbackFor, returnArg, ignore, found unknown key "sycall"; did you mean "syscall"?`,
  ]],
  ["unknown-operator", "error", [
    `unknown-operator.yaml:12:30: spec.kprobes[0].selectors[0].matchArgs[0].operator: expected one of Equal, NotEqual, GT, LT, Mask, NotMask, Prefix, NotPrefix, Postfix, NotPostfix, SAddr, DAddr, NotSAddr, NotDAddr, SPort, DPort, NotSPort, NotDPort, Protocol, Family, FileType, NotFileType, FileSystem, NotFileSystem, found "Equals"; did you mean "Equal"?`,
    `unknown-operator.yaml:13:30: spec.kprobes[0].selectors[0].matchArgs[1].operator: expected one of Equal, NotEqual, GT, LT, Mask, NotMask, Prefix, NotPrefix, Postfix, NotPostfix, SAddr, DAddr, NotSAddr, NotDAddr, SPort, DPort, NotSPort, NotDPort, Protocol, Family, FileType, NotFileType, FileSystem, NotFileSystem, found "InMap"; InMap is a Tetragon operator that tally does not implement`,
  ]],
  ["packet-args", "error", [
    `packet-args.yaml:7:16: spec.packets[0].direction: expected one of egress, ingress, found "sideways"`,
    `packet-args.yaml:11:5: spec.packets[1].taskContext: expected one of direction, args, selectors, metrics, fallbackFor, found unknown key "taskContext"`,
    `packet-args.yaml:12:12: spec.packets[1].args[0]: expected {index: 0, type: packet} or {index: 1, type: int} (the payload's bytes), found index 0, type sock; a packet hook has these two args`,
    `packet-args.yaml:12:36: spec.packets[1].args[1]: expected {index: 0, type: packet} or {index: 1, type: int} (the payload's bytes), found index 1, type string; a packet hook has these two args`,
    `packet-args.yaml:17:12: spec.kprobes[0].args[0]: expected a type other than packet, found type packet; packet is the arg of hooks under spec.packets`,
  ]],
  ["value-not-integer", "error", [
    `value-not-integer.yaml:12:74: spec.tracepoints[0].metrics[0].value.arg: expected the index of a declared integer arg (this hook declares no integer arg), found 5; arg 5 has type skb`,
    `value-not-integer.yaml:13:80: spec.tracepoints[0].metrics[1].value: expected count or {arg: INDEX} (a tracepoint hook has no return), found "latency"`,
  ]],
  ["wrong-type", "error", [
    `wrong-type.yaml:8:14: spec.kprobes[0].syscall: expected true or false, found "no"`,
    `wrong-type.yaml:9:11: spec.kprobes[0].args: expected a list of args, found a mapping`,
  ]],
  ["yaml-syntax", "error", [
    `yaml-syntax.yaml:5:8: (file): expected valid YAML, found bad indentation of a mapping entry`,
  ]],
];

describe('malformed policies', () => {
  it('every fixture has a row and every row a fixture', () => {
    const files = fs.readdirSync(BAD).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).sort();
    assert.deepEqual(TABLE.map(([name]) => name).sort(), files);
    assert.ok(TABLE.length >= 25, `${TABLE.length} malformed policies`);
  });

  for (const [name, state, lines] of TABLE) {
    it(name, () => {
      const file = `${name}.yaml`;
      // As bytes, as the agent and tally policy check read them: the encoding is checked too.
      const r = loadPolicyBytes(fs.readFileSync(path.join(BAD, file)), file);
      assert.deepEqual(r.problems.map(formatProblem), lines);
      assert.equal(r.state, state);
    });
  }
});

describe('a problem carries its parts', () => {
  it('expected, found, severity and position are separate fields', () => {
    const r = loadPolicyText(fs.readFileSync(path.join(BAD, 'unknown-arg-type.yaml'), 'utf8'), 'x.yaml');
    assert.deepEqual(r.problems, [{
      file: 'x.yaml',
      line: 11,
      column: 24,
      path: 'spec.kprobes[0].args[1].type',
      expected: 'one of int, int8, int16, int32, int64, long, uint8, uint16, uint32, uint64, size_t, fd, string, char_buf, file, path, linux_binprm, net_device, sock, skb, sockaddr, socket, task, packet',
      found: '"u128"',
      severity: 'error',
      message: 'expected one of int, int8, int16, int32, int64, long, uint8, uint16, uint32, uint64, size_t, fd, string, char_buf, file, path, linux_binprm, net_device, sock, skb, sockaddr, socket, task, packet, found "u128"',
    }]);
  });

  it('a policy in error loads no hooks; a partial one loads the rest', () => {
    const read = (f: string) => loadPolicyText(fs.readFileSync(path.join(BAD, f), 'utf8'), f).policies[0];
    assert.deepEqual(read('bad-port.yaml').hooks, []);
    const partial = read('tetragon-unsupported-operator.yaml');
    assert.equal(partial.state, 'partial');
    assert.deepEqual(partial.hooks.map((h) => h.name), ['kprobe:sys_close']);
  });
});
