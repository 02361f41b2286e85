/**
 * Tetragon's lists (`call: "list:NAME"`) and LSM hooks, read into kprobe
 * hooks: which hooks a policy yields, and what is reported when a list
 * cannot be expanded.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatProblem, loadPolicyText } from '../src/policy';
import { securityFunction } from '../src/policy/hooks';

const tracingPolicy = (spec: string) => `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: t}
spec:
${spec}`;

function hooksOf(spec: string): Array<[string, string, boolean]> {
  const r = loadPolicyText(tracingPolicy(spec), 't.yaml');
  assert.deepEqual(r.problems.map(formatProblem), []);
  return r.policies[0].hooks.map((h) => [h.name, h.kind === 'kprobe' ? h.call : '', h.kind === 'kprobe' && h.syscall]);
}

function problemsOf(spec: string): string[] {
  return loadPolicyText(tracingPolicy(spec), 't.yaml').problems.map(formatProblem);
}

describe('Tetragon lists', () => {
  it('a syscalls list is one syscall hook per member, each counted under its own hook label', () => {
    const spec = `  lists:
  - {name: dups, type: syscalls, values: [sys_dup, sys_dup2]}
  kprobes:
  - {call: "list:dups", syscall: false}`;
    // type syscalls makes them syscalls whatever the hook says, as in Tetragon.
    assert.deepEqual(hooksOf(spec), [['kprobe:sys_dup', 'sys_dup', true], ['kprobe:sys_dup2', 'sys_dup2', true]]);
    const r = loadPolicyText(tracingPolicy(spec), 't.yaml');
    assert.deepEqual(r.policies[0].hooks.map((h) => h.metrics[0].constLabels), [
      { policy: 't', hook: 'kprobe:sys_dup' }, { policy: 't', hook: 'kprobe:sys_dup2' },
    ]);
  });

  it('an untyped list is kernel functions, hooked as the kprobe says', () => {
    assert.deepEqual(hooksOf(`  lists:
  - {name: fns, values: [tcp_connect, tcp_close]}
  kprobes:
  - {call: "list:fns", syscall: false}`), [['kprobe:tcp_connect', 'tcp_connect', false], ['kprobe:tcp_close', 'tcp_close', false]]);
  });

  const cases: Array<[string, string, RegExp]> = [
    ['an unknown list names the lists there are', `  lists:
  - {name: fns, values: [tcp_connect]}
  kprobes:
  - {call: "list:nope"}`, /t\.yaml:8:12: spec\.kprobes\[0\]\.call: expected the name of a list in spec\.lists \(fns\), found "list:nope"/],
    ['a generated syscalls list is reported, with what to do instead', `  lists:
  - {name: all, type: generated_syscalls}
  kprobes:
  - {call: "list:all"}`, /unsupported: .*list all is every syscall of the kernel.*hook tracepoint raw_syscalls\/sys_enter instead/],
    ['a generated ftrace list is reported', `  lists:
  - {name: k, type: generated_ftrace, pattern: "^ksys_*"}
  kprobes:
  - {call: "list:k"}`, /unsupported: .*list k is every kernel function matching a pattern/],
    ['an unknown list type', `  lists:
  - {name: k, type: functions, values: [a]}
  kprobes:
  - {call: tcp_connect}`, /spec\.lists\[0\]\.type: expected one of syscalls, generated_syscalls, generated_ftrace, or no type/],
    ['a member that is not a name', `  lists:
  - {name: k, values: ["a b"]}
  kprobes:
  - {call: "list:k"}`, /list k has "a b"/],
  ];
  for (const [name, spec, want] of cases) {
    it(name, () => {
      const problems = problemsOf(spec);
      assert.ok(problems.some((p) => want.test(p)), problems.join('\n'));
    });
  }
});

describe('LSM hooks', () => {
  it('count at the entry of the security_ function that calls them', () => {
    assert.deepEqual(hooksOf(`  lsmhooks:
  - hook: file_open
    args: [{index: 0, type: file}]
    selectors:
    - matchArgs: [{index: 0, operator: Equal, values: [/etc/passwd]}]`), [['lsm:file_open', 'security_file_open', false]]);
  });

  const table: Array<[string, string]> = [
    ['file_open', 'security_file_open'],
    ['bprm_check_security', 'security_bprm_check'],
    ['inode_alloc_security', 'security_inode_alloc'],
    ['task_kill', 'security_task_kill'],
  ];
  for (const [hook, fn] of table) it(`${hook} is ${fn}`, () => assert.equal(securityFunction(hook), fn));

  it('a hook name that is not one is an error where it is written', () => {
    assert.ok(problemsOf(`  lsmhooks:
  - hook: "File Open"`).some((p) => /t\.yaml:6:11: spec\.lsmhooks\[0\]\.hook: expected an LSM hook name/.test(p)));
  });
});
