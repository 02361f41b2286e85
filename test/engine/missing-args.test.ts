/**
 * Raw tracepoint args a kernel's prototype does not pass (ifMissing): what
 * the compiled configuration reads for each, at each arity the kernel's BTF
 * may report. No kernel: the arity is given, and the configuration bytes
 * are read back at the offsets bpf/policy.h gives them.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPolicyText, Hook } from '../../src/policy';
import { compileHook, CompileContext } from '../../src/engine/compile';
import { Source } from '../../src/engine/hook-config';
import { KernelFeatures } from '../../src/engine/kernel-features';
import { BUILTIN_POLICY_DIR } from '../../src/util/paths';

const features: KernelFeatures = new Map([['tp_btf', { ok: true }], ['raw_tp', { ok: true }]]);

function hooksOf(text: string): Hook[] {
  const r = loadPolicyText(text, 'inline.yaml');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
  return r.policies.flatMap((p) => p.hooks);
}

const builtin = (name: string, event: string): Hook =>
  hooksOf(fs.readFileSync(path.join(BUILTIN_POLICY_DIR, `${name}.yaml`), 'utf8')).find((h) => h.kind === 'tracepoint' && h.event === event)!;

/** A one-hook policy on sched_process_exit with the args given (YAML flow style). */
const customText = (args: string): string => `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: t}
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exit
    raw: true
    args: ${args}
    metrics:
    - {name: t_total, help: t, type: counter}
`;
const custom = (args: string): Hook => hooksOf(customText(args))[0];

/** Source, index and constant of each arg slot of the first candidate (struct tally_pol_arg: 16 bytes from offset 16). */
function argSlots(hook: Hook, arity: number): Array<[number, number, number]> {
  const ctx: CompileContext = { features, syscalls: {}, metricId: () => 1, tracepointArity: () => arity };
  const config = compileHook(hook, ctx).candidates[0].config;
  const n = config.readUInt8(0);
  return Array.from({ length: n }, (_, i) => [config.readUInt8(16 + 16 * i), config.readUInt16LE(16 + 16 * i + 8), config.readInt32LE(16 + 16 * i + 12)]);
}

describe('ifMissing: raw tracepoint args by the kernel\'s arity', () => {
  const cases: Array<{ name: string; hook: () => Hook; arity: number; want: Array<[number, number, number]> }> = [
    { name: 'process exit, group_dead passed (6.18)', hook: () => builtin('process', 'sched_process_exit'), arity: 2, want: [[Source.ctx, 0, 0], [Source.ctx, 1, 0]] },
    { name: 'process exit, group_dead derived from the task (6.12 and older)', hook: () => builtin('process', 'sched_process_exit'), arity: 1, want: [[Source.ctx, 0, 0], [Source.groupDead, 0, 0]] },
    { name: 'retransmits, err passed', hook: () => builtin('tcp-retransmits', 'tcp_retransmit_skb'), arity: 3, want: [[Source.ctx, 0, 0], [Source.ctx, 2, 0]] },
    { name: 'retransmits, err missing reads as 0', hook: () => builtin('tcp-retransmits', 'tcp_retransmit_skb'), arity: 2, want: [[Source.ctx, 0, 0], [Source.constant, 0, 0]] },
    { name: 'a negative constant keeps its sign', hook: () => custom('[{index: 0, type: task}, {index: 3, type: int, ifMissing: -7}]'), arity: 1, want: [[Source.ctx, 0, 0], [Source.constant, 0, -7]] },
    { name: 'a tracepoint BTF does not know is left to the kernel to refuse', hook: () => custom('[{index: 1, type: int}]'), arity: -1, want: [[Source.ctx, 1, 0]] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(argSlots(c.hook(), c.arity), c.want));
  }

  it('sizes the group-end claims only when an arg is derived as groupDead', () => {
    const hook = builtin('process', 'sched_process_exit');
    const plan = (arity: number) => compileHook(hook, { features, syscalls: {}, metricId: () => 1, tracepointArity: () => arity });
    assert.equal(plan(2).groupEndsCapacity, 1);
    assert.equal(plan(1).groupEndsCapacity, 4096);
  });

  const refusals: Array<{ name: string; args: string; arity: number; message: RegExp }> = [
    { name: 'no ifMissing', args: '[{index: 0, type: task}, {index: 1, type: uint8}]', arity: 1, message: /arg 1: tracepoint sched\/sched_process_exit passes 1 arg \(0\.\.0\) on this kernel; add ifMissing/ },
    { name: 'groupDead of a non-task arg', args: '[{index: 0, type: int}, {index: 1, type: uint8, ifMissing: {arg: 0, field: groupDead}}]', arity: 1, message: /reads arg 0, which must be declared with type task/ },
    { name: 'groupDead of a task arg the kernel lacks too', args: '[{index: 2, type: task}, {index: 1, type: uint8, ifMissing: {arg: 2, field: groupDead}}]', arity: 1, message: /arg 2: tracepoint sched\/sched_process_exit passes 1 arg/ },
  ];
  for (const r of refusals) {
    it(`refuses: ${r.name}`, () => {
      assert.throws(() => argSlots(custom(r.args), r.arity), r.message);
    });
  }

  it('checks ifMissing when the policy is read', () => {
    const r = loadPolicyText(customText('[{index: 0, type: task, ifMissing: 0}, {index: 1, type: int, ifMissing: {arg: 0, field: groupdead}}]'), 'inline.yaml');
    const found = r.problems.map((p) => `${p.line}: ${p.expected}`);
    assert.deepEqual(found, [`9: ifMissing only on an integer arg`, `9: groupDead`]);
  });
});
