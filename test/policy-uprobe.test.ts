/**
 * A uprobe policy on a function of a program the test builds: entry and
 * return, an int selector, a sum of an arg, a sum of the return value (an
 * int, negative now and then) and a latency histogram, each checked against
 * calls whose arguments the test chose.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AgentProcess, scaled, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select } from './helpers/prom-text';

const PROGRAM = `#include <stdio.h>
#include <stdlib.h>
/* noinline and used: the call must stay a call for the uprobe to see it. */
__attribute__((noinline, used)) int tally_probe_me(int x, long y)
{
	__asm__ volatile("" ::: "memory");
	/* An error now and then: an int's -11 leaves the register's upper half 0, and must still read as negative. */
	return x % 7 == 3 ? -11 : x * 2 + (int)(y - y);
}
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	long s = 0;
	for (int i = 0; i < n; i++)
		s += tally_probe_me(i, i * 3L);
	printf("%ld\\n", s);
	return 0;
}
`;

function policy(binary: string): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-uprobe
spec:
  uprobes:
  - path: ${binary}
    symbols: [tally_probe_me]
    return: true
    args:
    - {index: 0, type: int}
    returnArg: {index: 0, type: int}
    selectors:
    - matchArgs:
      - {index: 0, operator: GT, values: ["9"]}
    metrics:
    - {name: test_probe_calls_total, help: Calls with x > 9., type: counter}
    - {name: test_probe_x_total, help: Sum of x over those calls., type: counter, value: {arg: 0}}
    - {name: test_probe_returned_total, help: Sum of what they returned., type: counter, value: return}
    - {name: test_probe_seconds, help: Time in the function., unit: seconds, type: histogram, value: latency}
`;
}

describe('a uprobe policy', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-uprobe-'));
  const binary = path.join(dir, 'probe-me');
  const policies = path.join(dir, 'policies');
  let agent: AgentProcess | undefined;
  let cg: TestCgroup | undefined;

  before(async () => {
    fs.writeFileSync(path.join(dir, 'probe-me.c'), PROGRAM);
    execFileSync('cc', ['-O2', '-o', binary, path.join(dir, 'probe-me.c')]);
    fs.mkdirSync(policies);
    fs.writeFileSync(path.join(policies, 'uprobe.yaml'), policy(binary));
    cg = TestCgroup.create('uprobe');
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload,binary', '--builtin-policies', 'none', '--policy-dir', policies, '--bpf-stats', 'on']);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts, sums an arg, sums the return value and times the calls that match, exactly', async () => {
    const N = 100 + Math.floor(Math.random() * 50);
    const child = cg!.spawn(binary, [String(N)]);
    assert.equal((await waitExit(child, 20000)).code, 0);
    const matching = Array.from({ length: N }, (_, i) => i).filter((x) => x > 9);
    const labels = { workload: cg!.name, binary };
    // The series waits for the binary's path, announced from the kernel at exec.
    const s = await agent!.scrapeUntil((x) => select(x, 'test_probe_calls_total', labels).length > 0, 'the probe series');
    const value = (name: string): number[] => select(s, name, labels).map((x) => x.value);
    assert.deepEqual(value('test_probe_calls_total'), [matching.length]);
    assert.deepEqual(value('test_probe_x_total'), [matching.reduce((a, b) => a + b, 0)]);
    // A negative return (an error) adds nothing: read as an int, not as the 64-bit register it came in.
    assert.deepEqual(value('test_probe_returned_total'), [matching.reduce((a, b) => a + (b % 7 === 3 ? 0 : 2 * b), 0)]);
    assert.deepEqual(value('test_probe_seconds_count'), [matching.length]);
    // A function that returns at once: every call within a second by the
    // highest bucket at or under that bound. (A millisecond failed on a loaded
    // 2-CPU machine: a thread preempted between entry and return.)
    const buckets = select(s, 'test_probe_seconds_bucket', labels).filter((b) => b.labels.le !== '+Inf' && Number(b.labels.le) <= 1);
    assert.ok(buckets.length > 0);
    assert.equal(Math.max(...buckets.map((b) => b.value)), matching.length);
    const hooks = select(s, 'tally_bpf_hook_attached', { object: 'policy/test-uprobe' });
    assert.deepEqual(hooks.map((h) => [h.labels.hook, h.labels.attach_type, h.value]), [[`uprobe:${binary}:tally_probe_me`, 'uprobe', 1]]);
    // Only this program calls the function, so the kernel's statistics (--bpf-stats on) saw every call, selected or not.
    const hook = { object: 'policy/test-uprobe', hook: `uprobe:${binary}:tally_probe_me` };
    assert.deepEqual(select(s, 'tally_bpf_program_runs_total', hook).map((x) => x.value), [N]);
    const seconds = select(s, 'tally_bpf_program_run_seconds_total', hook).map((x) => x.value);
    assert.equal(seconds.length, 1);
    // At most 100 µs a run (stretched by TALLY_TEST_TIME_SCALE for the kernel matrix's emulated CPUs).
    assert.ok(seconds[0] > 0 && seconds[0] < scaled(N * 0.1) / 1000, `${seconds[0]} s for ${N} runs of entry and return`);
  });

  it('leaves the kernel\'s BPF statistics alone by default, and has no run-time metrics then', async () => {
    const other = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', policies]);
    try {
      const s = await other.scrape();
      assert.deepEqual(select(s, 'tally_bpf_program_runs_total'), []);
      assert.deepEqual(select(s, 'tally_bpf_program_run_seconds_total'), []);
    } finally {
      await other.stop();
    }
  });
});
