/**
 * Every attach path a kprobe hook can take, chosen by leaving out what the
 * kernel offers (TALLY_KERNEL_WITHOUT), each counting exactly the bytes a
 * process in a cgroup of the test's own writes to a file:
 *
 *   a kernel function (vfs_write):  fentry+fexit, then kprobe+kretprobe;
 *   a syscall (sys_write):          fentry+fexit, kprobe+kretprobe, the
 *                                   syscall's own exit tracepoint, and the
 *                                   raw sys_enter+sys_exit tracepoints.
 *
 * A path this kernel does not have (this development host has neither
 * fentry nor kprobes) is skipped with the reason the startup probe gave; the
 * kernel matrix (npm run test:kernels) runs them on kernels that have them.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select } from './helpers/prom-text';
import { probeKernel, ProbedFeature } from '../src/engine/kernel-features';

// Two policies: a kernel without fentry and kprobes has no way to vfs_write,
// and a policy with a hook that cannot attach does not run at all.
const POLICY = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-paths-vfs
spec:
  kprobes:
  - call: vfs_write
    syscall: false
    return: true
    args:
    - {index: 0, type: file}
    returnArg: {index: 0, type: long}
    selectors:
    - matchArgs:
      - {index: 0, operator: FileType, values: [regular]}
      - {index: 0, operator: NotFileSystem, values: [proc, sysfs, cgroup, cgroup2]}
    metrics:
    - {name: test_vfs_written_bytes_total, help: Bytes vfs_write wrote to regular files., type: counter, value: return}
---
apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-paths-sys
spec:
  kprobes:
  - call: sys_write
    syscall: true
    return: true
    args:
    - {index: 0, type: fd}
    returnArg: {index: 0, type: long}
    selectors:
    - matchArgs:
      - {index: 0, operator: FileType, values: [regular]}
      - {index: 0, operator: NotFileSystem, values: [proc, sysfs, cgroup, cgroup2]}
    metrics:
    - {name: test_sys_written_bytes_total, help: Bytes write(2) wrote to regular files., type: counter, value: return}
`;

/** Writes the sizes given, one write(2) each, to a new file. */
const WRITER = [
  'import os, sys',
  'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)',
  'for n in sys.argv[2:]: assert os.write(fd, b"x" * int(n)) == int(n)',
  'os.close(fd)',
].join('\n');

interface Path {
  name: string;
  /** What to leave out so this path is the best one left. */
  without: ProbedFeature[];
  /** What the kernel must have for it. */
  needs: ProbedFeature;
  /** tally_bpf_hook_attached's attach_type for each hook (vfs_write, sys_write); undefined: refused. */
  vfs?: string;
  sys: string;
}

const PATHS: Path[] = [
  { name: 'fentry+fexit', without: [], needs: 'fentry', vfs: 'fentry', sys: 'fentry' },
  { name: 'kprobe+kretprobe', without: ['fentry'], needs: 'kprobe', vfs: 'kprobe', sys: 'kprobe' },
  { name: 'the syscall\'s exit tracepoint', without: ['fentry', 'kprobe'], needs: 'tracepoint', sys: 'tracepoint' },
  { name: 'raw sys_enter+sys_exit', without: ['fentry', 'kprobe', 'tracepoint'], needs: 'raw_tp', sys: 'raw_tp' },
];

describe('attach paths of a kprobe hook, each exact', () => {
  const features = probeKernel();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-paths-'));
  const policies = path.join(dir, 'policies');
  fs.mkdirSync(policies);
  fs.writeFileSync(path.join(policies, 'paths.yaml'), POLICY);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const p of PATHS) {
    const missing = features.get(p.needs);
    describe(p.name, { skip: missing?.ok ? false : `this kernel has no ${p.needs}: ${missing?.reason}` }, () => {
      let agent: AgentProcess | undefined;
      let cg: TestCgroup | undefined;
      before(async () => {
        cg = TestCgroup.create('paths');
        agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', policies], {
          env: { TALLY_KERNEL_WITHOUT: p.without.join(',') },
        });
      });
      after(async () => {
        cg?.destroy();
        await agent?.stop();
      });

      it('attaches as expected and counts every byte written', async () => {
        const sizes = [1, 100, 4096, 65536 + 7, 3].map((n) => n + Math.floor(Math.random() * 50));
        const child = cg!.spawn('/usr/bin/python3', ['-c', WRITER, path.join(dir, `out-${p.without.length}`), ...sizes.map(String)]);
        let err = '';
        child.stderr!.on('data', (d) => (err += d));
        assert.equal((await waitExit(child, 20000)).code, 0, err);
        const total = sizes.reduce((a, b) => a + b, 0);
        const labels = { workload: cg!.name };
        const s = await agent!.scrapeUntil((x) => select(x, 'test_sys_written_bytes_total', labels).length > 0, 'the written bytes');
        const attached = select(s, 'tally_bpf_hook_attached').filter((x) => x.labels.object.startsWith('policy/test-paths-') && x.value === 1);
        const byHook = Object.fromEntries(attached.map((x) => [x.labels.hook, x.labels.attach_type]));
        assert.deepEqual(byHook, { 'kprobe:sys_write': p.sys, ...(p.vfs ? { 'kprobe:vfs_write': p.vfs } : {}) });
        assert.deepEqual(select(s, 'test_sys_written_bytes_total', { workload: cg!.name }).map((x) => x.value), [total]);
        if (p.vfs) assert.deepEqual(select(s, 'test_vfs_written_bytes_total', { workload: cg!.name }).map((x) => x.value), [total]);
      });
    });
  }
});
