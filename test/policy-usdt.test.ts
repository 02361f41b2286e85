/**
 * A USDT policy on CPython's own probes (Debian's python3 is built with
 * them: readelf -n shows its .note.stapsdt). gc__start fires at each
 * collection with the generation as its argument, which the note places on
 * the stack (-4@112(%rsp)), so libbpf's argument spec and the probe's
 * semaphore (CPython checks it before firing) are both exercised. A python
 * process of the test, automatic collection off, runs collections of chosen
 * generations between two scrapes, which must differ by exactly those, by
 * generation and in sum.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { execFileSync } from 'node:child_process';
import { AgentProcess, waitExit } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { select } from './helpers/prom-text';
import { restartState, usePinDir } from './helpers/pin-dir';

/** The python binary behind python3, whose notes name the probes. */
const PYTHON = fs.realpathSync('/usr/bin/python3');

function policy(): string {
  return `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: test-usdt
spec:
  usdts:
  - path: ${PYTHON}
    provider: python
    name: gc__start
    args:
    - {index: 0, type: int}
    metrics:
    - name: test_python_gc_total
      help: CPython garbage collections started, by generation.
      type: counter
      labels:
      - {name: generation, arg: 0, maxValues: 4, overflowValue: other}
    - {name: test_python_gc_generations_total, help: Sum of the generations collected., type: counter, value: {arg: 0}}
`;
}

/**
 * Turns automatic collection off, says "ready", then at each line of stdin
 * collects generation g counts[g] times and says "done". It stays up in
 * between, so the interpreter's own collections (at start, and at exit) fall
 * outside what the test compares: the difference between two scrapes.
 */
const COLLECT = [
  'import gc, sys',
  'gc.disable()',
  'print("ready", flush=True)',
  'for line in sys.stdin:',
  '    for g, n in enumerate(map(int, line.split())):',
  '        for _ in range(n): gc.collect(g)',
  '    print("done", flush=True)',
].join('\n');

/** Why the describes below cannot run here, or false. */
const NO_PROBE = fs.existsSync(PYTHON) && execFileSync('readelf', ['-n', PYTHON]).includes('gc__start') ? false : `${PYTHON} has no gc__start probe`;

/** Reads before and after a python process of cg runs the collections `counts` ("G0 G1 G2") asks for. */
async function aroundCollections<T>(cg: TestCgroup, counts: string, read: () => Promise<T>): Promise<{ before: T; after: T }> {
  const child = cg.spawn(PYTHON, ['-c', COLLECT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  try {
    assert.equal((await lines.next()).value, 'ready');
    const before = await read(); // what the interpreter collected while starting
    child.stdin!.write(`${counts}\n`);
    assert.equal((await lines.next()).value, 'done');
    return { before, after: await read() };
  } finally {
    child.stdin!.end();
    await waitExit(child, 20000);
  }
}

describe('a USDT policy', { skip: NO_PROBE }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-usdt-'));
  let agent: AgentProcess | undefined;
  let cg: TestCgroup | undefined;

  before(async () => {
    fs.writeFileSync(path.join(dir, 'usdt.yaml'), policy());
    cg = TestCgroup.create('usdt');
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', dir]);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('attaches as usdt and the policy is ok', async () => {
    const s = await agent!.scrape();
    assert.deepEqual(select(s, 'tally_policy_state', { policy: 'test-usdt', state: 'ok' }).map((x) => x.value), [1]);
    const attached = select(s, 'tally_bpf_hook_attached').filter((x) => x.labels.object.startsWith('policy/test-usdt') && x.value === 1);
    assert.deepEqual(attached.map((x) => [x.labels.hook, x.labels.attach_type]), [[`usdt:${PYTHON}:python:gc__start`, 'usdt']]);
    assert.deepEqual(select(s, 'tally_bpf_hook_attachments', { hook: `usdt:${PYTHON}:python:gc__start` }).map((x) => x.value), [1]);
  });

  it('counts each collection by its generation, read from the probe\'s argument', async () => {
    const labels = { workload: cg!.name };
    const read = async (): Promise<Record<string, number>> => {
      const s = await agent!.scrape();
      const out: Record<string, number> = { sum: select(s, 'test_python_gc_generations_total', labels).reduce((a, x) => a + x.value, 0) };
      for (const x of select(s, 'test_python_gc_total', labels)) out[x.labels.generation] = x.value;
      return out;
    };
    const { before, after } = await aroundCollections(cg!, '7 3 2', read);
    const gained = Object.fromEntries(['0', '1', '2', 'sum'].map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
    assert.deepEqual(gained, { 0: 7, 1: 3, 2: 2, sum: 0 * 7 + 1 * 3 + 2 * 2 }, `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
  });
});

describe('a Tetragon TracingPolicy with usdts', { skip: NO_PROBE }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-usdt-tetragon-'));
  let agent: AgentProcess | undefined;
  let cg: TestCgroup | undefined;
  before(async () => {
    // Tetragon's own shape (its examples/tracingpolicy/usdt.yaml), with a selector on the generation.
    fs.writeFileSync(path.join(dir, 'usdt.yaml'), `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "usdt-gc"
spec:
  usdts:
  - path: "${PYTHON}"
    provider: "python"
    name: "gc__start"
    args:
    - index: 0
      type: "int32"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values: ["2"]
`);
    cg = TestCgroup.create('usdt-tetragon');
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'none', '--policy-dir', dir]);
  });
  after(async () => {
    cg?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts the probe\'s matching events in tally_policy_events_total', async () => {
    const hook = `usdt:${PYTHON}:python:gc__start`;
    const events = async (): Promise<number> =>
      select(await agent!.scrape(), 'tally_policy_events_total', { policy: 'usdt-gc', hook, workload: cg!.name }).reduce((a, x) => a + x.value, 0);
    const { before, after } = await aroundCollections(cg!, '4 5 6', events); // only generation 2 matches the selector
    assert.equal(after - before, 6);
  });
});

describe('a USDT policy across a restart (--bpf-pin-dir)', { skip: NO_PROBE }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-usdt-pin-'));
  const agents: AgentProcess[] = [];
  after(async () => {
    for (const a of agents) await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hands over: a USDT link has no fd to pin, and is left to detach with its agent', async (tc) => {
    // libbpf's USDT link is a bundle of uprobe links whose fd reads 0: pinning it failed the whole handover.
    fs.writeFileSync(path.join(dir, 'usdt.yaml'), policy());
    const pins = usePinDir(tc);
    const flags = ['--bpf-pin-dir', pins, '--builtin-policies', 'tcp-bytes', '--policy-dir', dir];
    const a = await AgentProcess.start(flags);
    agents.push(a);
    assert.equal((await a.stop()).code, 0);
    assert.doesNotMatch(a.stderr, /pinning the counters for the next agent failed/, a.stderr);
    assert.ok(fs.existsSync(path.join(pins, 'state')), 'the state is pinned');
    const b = await AgentProcess.start(flags);
    agents.push(b);
    const s = await b.scrape();
    assert.deepEqual(restartState(s), { adopted: 1 });
    assert.deepEqual(select(s, 'tally_policy_state', { policy: 'test-usdt', state: 'ok' }).map((x) => x.value), [1], 'the new agent attached the probe anew');
  });
});
