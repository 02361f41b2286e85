/**
 * Packet hooks (spec.packets) compiled, without the kernel: each direction
 * becomes its cgroup_skb program on the cgroup v2 root, its args sit in the
 * slots the kernel fills whatever order the policy declares them in, and
 * what reads a task (matchBinaries) is refused by name. And with the real
 * kernel: a process without CAP_NET_ADMIN is told that is what it lacks.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { loadPolicyText } from '../src/policy';
import { compileHook, CompileContext, CompileError } from '../src/engine/compile';
import { PacketHook } from '../src/policy/model';

const ctx: CompileContext = {
  features: new Map(),
  cgroupRoot: '/sys/fs/cgroup/test-root',
  syscalls: {},
  metricId: () => 1,
};

function packetHooks(body: string): PacketHook[] {
  const text = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: p}
spec:
  packets:
${body}`;
  const r = loadPolicyText(text, 'p.yaml');
  assert.deepEqual(r.problems, [], 'the policy is valid');
  return r.policies[0].hooks as PacketHook[];
}

describe('packet hooks compile to cgroup_skb programs', () => {
  it('each direction its program, on the cgroup v2 root, args in the kernel\'s slots', () => {
    const hooks = packetHooks(`  - direction: ingress
    args: [{index: 1, type: uint16}, {index: 0, type: packet}]
    metrics: [{name: in_bytes_total, help: In., value: {arg: 1}, labels: [{name: peer_class, arg: 0, field: daddr, peer: class}]}]
  - direction: egress
    metrics: [{name: out_packets_total, help: Out.}]
`);
    assert.deepEqual(hooks.map((h) => [h.name, h.direction]), [['packet:ingress', 'ingress'], ['packet:egress', 'egress']]);
    const [ingress, egress] = hooks.map((h) => compileHook(h, ctx));
    assert.deepEqual(ingress.candidates.map((c) => [c.attach, c.programs]), [
      ['cgroup_skb/ingress', [{ name: 'pol_skb_ingress', target: { kind: 'cgroup', path: '/sys/fs/cgroup/test-root' } }]],
    ]);
    assert.deepEqual(egress.candidates.map((c) => c.programs[0].name), ['pol_skb_egress']);
  });

  it('a kernel whose probe refused cgroup_skb says so, and has no candidate', () => {
    const [h] = packetHooks(`  - direction: egress
    metrics: [{name: out_packets_total, help: Out.}]
`);
    const plan = compileHook(h, { ...ctx, features: new Map([['cgroup_skb', { ok: false, reason: 'EPERM: no' }]]) });
    assert.deepEqual(plan.candidates, []);
    assert.deepEqual(plan.unavailable, [{ attach: 'cgroup_skb/egress', reason: 'probed at startup: EPERM: no' }]);
  });

  for (const [what, selector, message] of [
    ['matchBinaries', '{matchBinaries: [{operator: In, values: [/usr/bin/curl]}]}', 'matchBinaries on a packet hook: a packet has no binary'],
  ] as const) {
    it(`${what} is refused: a packet runs in no task's name`, () => {
      const [h] = packetHooks(`  - direction: egress
    selectors: [${selector}]
    metrics: [{name: out_packets_total, help: Out.}]
`);
      assert.throws(() => compileHook(h, ctx), (e: unknown) => e instanceof CompileError && e.message === message);
    });
  }
});

describe('packet hooks need CAP_NET_ADMIN', () => {
  it('tally policy check --load without it names the capability, not a kernel without cgroup_skb', () => {
    const main = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
    // The chart's capabilities without NET_ADMIN: as root, the bounding set is what the process has.
    const check = (...flags: string[]) => spawnSync('setpriv', ['--bounding-set', '-all,+bpf,+perfmon,+sys_resource,+dac_read_search', process.execPath, main, 'policy', 'check', '--load', ...flags, path.join(PROJECT_ROOT, 'policies', 'udp-peers.yaml')], { encoding: 'utf8', timeout: 60000 });
    const r = check();
    assert.equal(r.status, 1, r.stderr);
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('not attached'));
    const want = [
      'packet:egress: not attached; cgroup_skb refused to this process at startup (EPERM: it needs CAP_NET_ADMIN)',
      'packet:ingress: not attached; cgroup_skb refused to this process at startup (EPERM: it needs CAP_NET_ADMIN)',
    ];
    const got = lines.map((l) => l.replace(/^.*found /, ''));
    // On a mismatch, what each attach type's probe answered (--verbose).
    if (JSON.stringify(got) !== JSON.stringify(want)) assert.deepEqual(got, want, (({ stdout, stderr }) => `${stdout}${stderr}`)(check('--verbose')));
  });
});
