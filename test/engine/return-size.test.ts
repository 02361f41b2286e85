/**
 * The width of a hook's return value, which the kernel side extends from the
 * register's low bytes (bpf/policy.h, ret_size): an int's -EAGAIN from
 * tcp_recvmsg() (once tcp-bytes' receive fallback; now tcp_sendmsg's) must not read as 4294967285 bytes. No kernel: the byte is
 * read back from the compiled configuration.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPolicyText, Hook } from '../../src/policy';
import { compileHook } from '../../src/engine/compile';
import { KernelFeatures } from '../../src/engine/kernel-features';
import { BUILTIN_POLICY_DIR } from '../../src/util/paths';

const CONFIG_RET_SIGNED = 5;
const CONFIG_RET_SIZE = 14;
const features: KernelFeatures = new Map([['fentry', { ok: true }], ['kprobe', { ok: true }], ['tp_btf', { ok: true }]]);

function hooks(text: string, file = 'inline.yaml'): Hook[] {
  const r = loadPolicyText(text, file);
  assert.deepEqual(r.problems.filter((p) => p.severity === 'error'), []);
  return r.policies.flatMap((p) => p.hooks);
}

const kprobe = (returnArg: string, syscall = false): Hook => hooks(`apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: t}
spec:
  kprobes:
  - call: ${syscall ? 'sys_read' : 'vfs_read'}
    syscall: ${syscall}
    return: true
    ${returnArg}
    metrics:
    - {name: t_total, help: t, type: counter, value: return}
`)[0];

function retWidth(hook: Hook): [signed: number, size: number] {
  const config = compileHook(hook, { features, syscalls: { read: 0 }, metricId: () => 1 }).candidates[0].config;
  return [config.readUInt8(CONFIG_RET_SIGNED), config.readUInt8(CONFIG_RET_SIZE)];
}

describe('return value width', () => {
  const tcpBytes = fs.readFileSync(path.join(BUILTIN_POLICY_DIR, 'tcp-bytes.yaml'), 'utf8');
  const cases: Array<{ name: string; hook: () => Hook; want: [number, number] }> = [
    { name: 'tcp-bytes\' tcp_sendmsg returns an int', hook: () => hooks(tcpBytes, 'tcp-bytes.yaml').find((h) => h.kind === 'kprobe' && h.call === 'tcp_sendmsg')!, want: [1, 4] },
    { name: 'long', hook: () => kprobe('returnArg: {index: 0, type: long}'), want: [1, 8] },
    { name: 'uint16', hook: () => kprobe('returnArg: {index: 0, type: uint16}'), want: [0, 2] },
    { name: 'int8', hook: () => kprobe('returnArg: {index: 0, type: int8}'), want: [1, 1] },
    { name: 'a syscall returns a long', hook: () => kprobe('returnArg: {index: 0, type: int}', true), want: [1, 8] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(retWidth(c.hook()), c.want));
});
