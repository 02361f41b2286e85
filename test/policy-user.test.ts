/**
 * A user's policies, from --policy-dir, evaluated in the kernel: selectors
 * (DPort with NotDAddr 127.0.0.1 on a socket, a path Prefix on a syscall's
 * string, matchBinaries by id and by path) count exactly what matches, capped labels and prefix
 * labels take exactly the values they should, and a hook this kernel cannot
 * attach puts only its own policy in error.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select, Series } from './helpers/prom-text';
import { probeKernel } from '../src/engine/kernel-features';
import { spawnSync } from 'node:child_process';
import { MAIN } from './helpers/agent-process';
import { freePortPair } from './helpers/ports';

const PYTHON = fs.realpathSync('/usr/bin/python3');

function connectsPolicy(port: number): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-connects
spec:
  tracepoints:
  - subsystem: sock
    event: inet_sock_set_state
    raw: true
    args:
    - {index: 0, type: sock}
    - {index: 2, type: int}
    selectors:
    - matchArgs:
      - {index: 2, operator: Equal, values: ["2"]}     # TCP_SYN_SENT: a connect
      - {index: 0, operator: DPort, values: ["${port}"]}
      - {index: 0, operator: NotDAddr, values: ["127.0.0.1"]}
    metrics:
    - name: test_connects_total
      help: Connects to the test port, not to 127.0.0.1.
      type: counter
      labels:
      - {name: dport, arg: 0, field: dport, maxValues: 4}
`;
}

function opensPolicy(dir: string): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-opens
spec:
  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - {index: 1, type: string}
    selectors:
    - matchArgs:
      - {index: 1, operator: Prefix, values: ["${dir}/in/"]}
      matchBinaries:
      - {operator: In, values: ["${PYTHON}"]}
    metrics:
    - name: test_opens_total
      help: Files opened under the test directory's in/ by python.
      type: counter
      labels:
      - {name: dir, arg: 1, prefixes: ["${dir}/in/a/", "${dir}/in/b/"], overflowValue: elsewhere}
  - call: sys_openat
    args:
    - {index: 1, type: string}
    selectors:
    - matchArgs:
      - {index: 1, operator: Prefix, values: ["${dir}/"]}
      - {index: 1, operator: Postfix, values: ["/f1", "/f3"]}
    metrics:
    - {name: test_opens_ending_total, help: Files f1 and f3 opened under the test directory., type: counter}
  - call: sys_openat
    args:
    - {index: 1, type: string}
    selectors:
    - matchArgs:
      - {index: 1, operator: Prefix, values: ["${dir}/"]}
      - {index: 1, operator: NotPostfix, values: ["/f0"]}
    metrics:
    - {name: test_opens_not_ending_total, help: Files other than f0 opened under the test directory., type: counter}
`;
}

/* matchBinaries by path: Prefix, NotPrefix and Postfix, judged in the kernel from the path of each binary. */
function execsPolicy(bin: string): string {
  const hook = (selector: string, metric: string, help: string): string => `  - subsystem: sched
    event: sched_process_exec
    raw: true
    selectors:
    - matchBinaries:
      - ${selector}
    metrics:
    - {name: ${metric}, help: ${help}, type: counter}
`;
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-execs
spec:
  tracepoints:
${hook(`{operator: Prefix, values: ["${bin}/x/"]}`, 'test_execs_under_x_total', 'Programs started from under x/.')}${hook(
    `{operator: NotPrefix, values: ["${bin}/x/"]}`,
    'test_execs_not_under_x_total',
    'Programs started from elsewhere than x/.',
  )}${hook('{operator: Postfix, values: ["/run-y"]}', 'test_execs_run_y_total', 'Programs named run-y started.')}`;
}

const KPROBE_POLICY = `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-kprobe
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - {index: 0, type: sock}
    metrics:
    - name: test_tcp_connect_calls_total
      help: tcp_connect calls.
      type: counter
`;

const CONNECTOR = [
  'import socket, sys',
  'port, other = int(sys.argv[1]), int(sys.argv[2])',
  'ls = [socket.socket() for _ in range(2)]',
  'ls[0].bind(("0.0.0.0", port)); ls[1].bind(("0.0.0.0", other))',
  'for l in ls: l.listen(64)',
  'def connect(addr, p, n):',
  '    for _ in range(n): socket.create_connection((addr, p)).close()',
  'connect("127.0.0.2", port, 5)',   // counted
  'connect("127.0.0.1", port, 3)',   // NotDAddr 127.0.0.1
  'connect("127.0.0.2", other, 4)',  // another port
  'print("done", flush=True)',
].join('\n');

const OPENER = [
  'import os, sys',
  'd = sys.argv[1]',
  'for sub, n in (("in/a", 3), ("in/b", 2), ("in/c", 4), ("out", 6)):',
  '    os.makedirs(f"{d}/{sub}", exist_ok=True)',
  '    for i in range(n): open(f"{d}/{sub}/f{i}", "w").close()',
  'print("done", flush=True)',
].join('\n');

const stateOf = (s: Series[], policy: string): string | undefined => select(s, 'tally_policy_state', { policy }).find((x) => x.value === 1)?.labels.state;

describe('user policies with selectors', () => {
  let dir: string;
  let data: string;
  let agent: AgentProcess;
  let cg: TestCgroup;
  let port: number;

  before(async () => {
    port = await freePortPair();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-policies-'));
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-opens-'));
    fs.writeFileSync(path.join(dir, 'connects.yaml'), connectsPolicy(port));
    fs.writeFileSync(path.join(dir, 'opens.yaml'), opensPolicy(data));
    fs.writeFileSync(path.join(dir, 'kprobe.yaml'), KPROBE_POLICY);
    fs.writeFileSync(path.join(dir, 'execs.yaml'), execsPolicy(path.join(data, 'bin')));
    for (const [sub, name] of [['x', 'true'], ['y', 'run-y']]) {
      fs.mkdirSync(path.join(data, 'bin', sub), { recursive: true });
      fs.copyFileSync('/usr/bin/true', path.join(data, 'bin', sub, name));
      fs.chmodSync(path.join(data, 'bin', sub, name), 0o755);
    }
    cg = TestCgroup.create('user');
    agent = await AgentProcess.start(['--policy-dir', dir, '--metrics-label-filter', 'workload']);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(data, { recursive: true, force: true });
  });

  it('DPort and NotDAddr on a socket count exactly the connects that match', async () => {
    await cg.run('/usr/bin/python3', ['-c', CONNECTOR, String(port), String(port + 1)]);
    const s = await agent.scrape();
    assert.equal(stateOf(s, 'test-connects'), 'ok');
    assert.deepEqual(select(s, 'test_connects_total', { workload: cg.name }).map((x) => [x.labels, x.value]), [[{ workload: cg.name, dport: String(port) }, 5]]);
  });

  it('a path Prefix, Postfix, NotPostfix and matchBinaries on a syscall count exactly the opens that match, with prefix labels', async () => {
    await cg.run('/usr/bin/python3', ['-c', OPENER, data]);
    const s = await agent.scrape();
    assert.equal(stateOf(s, 'test-opens'), 'ok');
    const got = select(s, 'test_opens_total', { workload: cg.name }).map((x) => [x.labels.dir, x.value]).sort();
    assert.deepEqual(got, [[`${data}/in/a/`, 3], [`${data}/in/b/`, 2], ['elsewhere', 4]]);
    // Postfix: f1 in all four directories, f3 in in/c and out. NotPostfix /f0: all 15 files but the four f0s.
    // (The directories themselves are made with mkdir, not opened.)
    assert.deepEqual(select(s, 'test_opens_ending_total', { workload: cg.name }).map((x) => x.value), [6]);
    assert.deepEqual(select(s, 'test_opens_not_ending_total', { workload: cg.name }).map((x) => x.value), [11]);
  });

  it('matchBinaries Prefix, NotPrefix and Postfix count exactly the programs whose path matches', async () => {
    const x = path.join(data, 'bin', 'x', 'true');
    const y = path.join(data, 'bin', 'y', 'run-y');
    // In a cgroup of its own: the shell (exec'd into it), then x three times and y twice.
    const own = TestCgroup.create('execs');
    try {
      await own.run('/bin/sh', ['-c', `${x}; ${x}; ${x}; ${y}; ${y}`]);
      const s = await agent.scrape();
      assert.equal(stateOf(s, 'test-execs'), 'ok');
      const count = (metric: string): number[] => select(s, metric, { workload: own.name }).map((v) => v.value);
      assert.deepEqual(count('test_execs_under_x_total'), [3]);
      assert.deepEqual(count('test_execs_not_under_x_total'), [3], 'the shell and y twice');
      assert.deepEqual(count('test_execs_run_y_total'), [2]);
    } finally {
      own.destroy();
    }
  });

  it('a kprobe hook the kernel cannot attach puts its own policy in error, naming why', async () => {
    const features = probeKernel();
    const s = await agent.scrape();
    if (features.get('fentry')!.ok || features.get('kprobe')!.ok) {
      assert.equal(stateOf(s, 'test-kprobe'), 'ok');
      return;
    }
    assert.equal(stateOf(s, 'test-kprobe'), 'error');
    assert.match(agent.stderr, /msg="policy failed" policy=test-kprobe .*reason="kprobe:tcp_connect: not attached; fentry, kprobe not offered by this kernel/);
    // The whole chain, at debug level only.
    assert.doesNotMatch(agent.stderr, /probed at startup/);
    assert.deepEqual(select(s, 'test_tcp_connect_calls_total'), [], 'a policy in error exposes nothing');
    // The others run.
    assert.equal(stateOf(s, 'test-connects'), 'ok');
  });

  it('tally policy check --load loads and unloads each hook, and names the file, line and column of one that fails', () => {
    const ok = spawnSync(process.execPath, [MAIN, 'policy', 'check', '--load', path.join(dir, 'connects.yaml'), path.join(dir, 'opens.yaml')], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.deepEqual(ok.stdout.trim().split('\n'), [`${path.join(dir, 'connects.yaml')}: ok (1 policy, 1 hook)`, `${path.join(dir, 'opens.yaml')}: ok (1 policy, 3 hooks)`]);
    const features = probeKernel();
    if (features.get('fentry')!.ok || features.get('kprobe')!.ok) return;
    const bad = spawnSync(process.execPath, [MAIN, 'policy', 'check', '--load', path.join(dir, 'kprobe.yaml')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    const lines = bad.stdout.trim().split('\n');
    assert.equal(lines[0], `${path.join(dir, 'kprobe.yaml')}:7:5: spec.kprobes[0]: expected a hook this kernel can attach, found kprobe:tcp_connect: not attached; fentry, kprobe not offered by this kernel`);
    assert.equal(lines[1], `${path.join(dir, 'kprobe.yaml')}: error (1 policy, 0 hooks; 1 error)`);
    // --verbose: each attach type tried, with the kernel's answer.
    const verbose = spawnSync(process.execPath, [MAIN, 'policy', 'check', '--load', '--verbose', path.join(dir, 'kprobe.yaml')], { encoding: 'utf8' });
    assert.match(verbose.stdout, /found kprobe:tcp_connect: not attached; fentry probe refused at load: EOPNOTSUPP probed at startup: EPERM.*; kprobe probe refused at load: EOPNOTSUPP probed at startup: ENOENT/);
  });
});
