/**
 * fexit's return value in the compat build (kernels before 5.17 have no
 * bpf_get_func_ret()): the configuration names the context slot after the
 * function's arguments, as BTF counts them. The default build asks the
 * helper and leaves the slot 0. No kernel: features and arity are given, and
 * the byte is read back at the offset bpf/policy.h gives it.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadPolicyText } from '../../src/policy';
import { compileHook, CompileContext } from '../../src/engine/compile';
import { KernelFeatures } from '../../src/engine/kernel-features';

const CONFIG_FEXIT_RET_SLOT = 13;

const policy = (ret: boolean): string => `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: t}
spec:
  kprobes:
  - call: vfs_write
    syscall: false
    return: ${ret}
    args: [{index: 0, type: file}]
    ${ret ? 'returnArg: {index: 0, type: long}' : ''}
    metrics:
    - {name: t_total, help: t, type: counter}
`;

const DEFAULT: KernelFeatures = new Map([['fentry', { ok: true }], ['kprobe', { ok: true }], ['bpf_loop', { ok: true }], ['bpf_get_current_task_btf', { ok: true }]]);
const COMPAT: KernelFeatures = new Map([['fentry', { ok: true }], ['kprobe', { ok: true }], ['bpf_loop', { ok: false, reason: 'ENOENT' }]]);

function fentrySlot(features: KernelFeatures, ret: boolean, arity: number): { attach: string; slot: number; asked: string[] } {
  const asked: string[] = [];
  const r = loadPolicyText(policy(ret), 'inline.yaml');
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
  const ctx: CompileContext = { features, syscalls: {}, metricId: () => 1, functionArity: (f) => (asked.push(f), arity) };
  const first = compileHook(r.policies[0].hooks[0], ctx).candidates[0];
  return { attach: first.attach, slot: first.config.readUInt8(CONFIG_FEXIT_RET_SLOT), asked };
}

describe('fexit return slot', () => {
  const cases = [
    { name: 'compat build, vfs_write takes 4 args', features: COMPAT, ret: true, arity: 4, want: { attach: 'fentry+fexit', slot: 4, asked: ['vfs_write'] } },
    { name: 'compat build, a 6-arg function', features: COMPAT, ret: true, arity: 6, want: { attach: 'fentry+fexit', slot: 6, asked: ['vfs_write'] } },
    { name: 'compat build, function unknown to BTF: left to the load to refuse', features: COMPAT, ret: true, arity: -1, want: { attach: 'fentry+fexit', slot: 0, asked: ['vfs_write'] } },
    { name: 'compat build, no return hooked: no lookup', features: COMPAT, ret: false, arity: 4, want: { attach: 'fentry', slot: 0, asked: [] } },
    { name: 'default build asks bpf_get_func_ret: no lookup', features: DEFAULT, ret: true, arity: 4, want: { attach: 'fentry+fexit', slot: 0, asked: [] } },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(fentrySlot(c.features, c.ret, c.arity), c.want));
});
