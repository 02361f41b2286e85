/**
 * Policy directories: loading every file of one (a bad file never stops a
 * good one), and watching one for real on a temporary directory: add,
 * change, remove, a touch without change, bursts, a Kubernetes ConfigMap
 * update (the ..data symlink swap) and the directory itself being replaced.
 */
import { describe, it, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { loadPolicyDir, formatProblem, PolicyDirectoryWatcher, PolicyDirEvent } from '../src/policy';
import { PolicyDirectoryWatcherOptions } from '../src/policy/directory-watcher';
import { readPolicyFile } from '../src/policy/read-file';
import { PROJECT_ROOT } from '../src/util/paths';

describe('loadPolicyDir', () => {
  it('loads the good file and reports the bad one; other files are not policies', async () => {
    const dir = path.join(PROJECT_ROOT, 'test', 'fixtures', 'policies', 'mixed');
    const results = await loadPolicyDir(dir);
    assert.deepEqual(results.map((r) => [path.basename(r.file), r.state]), [['bad.yaml', 'error'], ['good.yaml', 'ok']]);
    assert.deepEqual(results[0].problems.map(formatProblem), [
      `${dir}/bad.yaml:10:14: spec.kprobes[0].metrics[0].name: expected a counter name ending in _total, found "tally_tcp_closes"; write "tally_tcp_closes_total"`,
    ]);
    assert.deepEqual(results[1].policies[0].hooks.map((h) => h.name), ['kprobe:tcp_connect']);
  });
});

const POLICY = (name: string) => `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: ${name}}
spec:
  kprobes:
  - {call: tcp_connect, syscall: false, metrics: [{name: tally_${name.replace(/-/g, '_')}_total, help: Connects.}]}
`;

/** A watcher on a fresh temporary directory, recording events. Timings are short so the suite is quick. */
class Recorder {
  readonly events: PolicyDirEvent[] = [];
  readonly errors: Error[] = [];
  /** When each error said the scan would be tried again. */
  readonly retries: Array<number | undefined> = [];
  /** "name: why" of each onSkip. */
  readonly skips: string[] = [];
  watcher!: PolicyDirectoryWatcher;

  constructor(readonly dir: string, private readonly opts: PolicyDirectoryWatcherOptions = {}) {}

  async start(): Promise<this> {
    this.watcher = new PolicyDirectoryWatcher(this.dir, (e) => this.events.push(e), {
      debounceMs: 50, maxDelayMs: 500, recheckMs: 100,
      onError: (e, retryMs) => {
        this.errors.push(e);
        this.retries.push(retryMs);
      },
      onSkip: (f, why) => this.skips.push(`${path.basename(f)}: ${why}`),
      ...this.opts,
    });
    await this.watcher.ready;
    return this;
  }

  /** The events so far as "type name[=bytes]" and forgets them. */
  take(): string[] {
    const out = this.events.map((e) => `${e.type} ${path.basename(e.file)}${e.bytes === undefined ? '' : `=${e.bytes.length}`}`);
    this.events.length = 0;
    return out;
  }

  /** Waits until `n` events have arrived (or fails after 5 s), then takes them. */
  async next(n = 1): Promise<string[]> {
    const deadline = Date.now() + 5000;
    while (this.events.length < n) {
      if (Date.now() > deadline) assert.fail(`waited for ${n} events, got ${JSON.stringify(this.take())}`);
      await sleep(10);
    }
    // Anything more that the same scan emits arrives with it; wait out one debounce to see it.
    await sleep(150);
    return this.take();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PolicyDirectoryWatcher', () => {
  let root: string;
  const watchers: PolicyDirectoryWatcher[] = [];
  before(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-policy-watch-'))));
  after(() => {
    for (const w of watchers) w.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const fresh = (name: string): string => {
    const d = path.join(root, name);
    fs.mkdirSync(d);
    return d;
  };
  const watch = async (dir: string, opts: PolicyDirectoryWatcherOptions = {}): Promise<Recorder> => {
    const r = await new Recorder(dir, opts).start();
    watchers.push(r.watcher);
    return r;
  };

  it('reports existing files first, then add, change, touch without change, and remove', async () => {
    const dir = fresh('basic');
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    // None of these is a policy file.
    for (const f of ['.a.yaml.swp', 'a.yaml~', '#a.yaml#', '.hidden.yaml', 'notes.txt']) fs.writeFileSync(path.join(dir, f), 'x');
    fs.mkdirSync(path.join(dir, 'sub.yaml'));
    const r = await watch(dir);
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);

    fs.writeFileSync(path.join(dir, 'b.yml'), POLICY('b'));
    assert.deepEqual(await r.next(), [`add b.yml=${POLICY('b').length}`]);

    fs.writeFileSync(path.join(dir, 'b.yml'), POLICY('b-two'));
    assert.deepEqual(await r.next(), [`change b.yml=${POLICY('b-two').length}`]);

    // A touch and a rewrite with the same bytes are no change; the later real change shows a scan ran.
    const now = new Date();
    fs.utimesSync(path.join(dir, 'a.yaml'), now, now);
    fs.writeFileSync(path.join(dir, 'b.yml'), POLICY('b-two'));
    await sleep(300);
    assert.deepEqual(r.take(), []);
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a-two'));
    assert.deepEqual(await r.next(), [`change a.yaml=${POLICY('a-two').length}`]);

    fs.unlinkSync(path.join(dir, 'b.yml'));
    assert.deepEqual(await r.next(), ['remove b.yml']);
    assert.deepEqual(r.errors, []);
  });

  it('a burst of writes is one event with the final content', async () => {
    const dir = fresh('burst');
    const r = await watch(dir);
    const file = path.join(dir, 'c.yaml');
    for (let i = 0; i < 5; i++) {
      fs.writeFileSync(file, POLICY(`c${i}`.repeat(i + 1)));
      await sleep(5);
    }
    const events = await r.next();
    assert.deepEqual(events, [`add c.yaml=${POLICY('c4'.repeat(5)).length}`]);
  });

  it('follows a ConfigMap update: the ..data symlink swapped to a new timestamped directory', async () => {
    // The layout kubelet gives a ConfigMap volume.
    const dir = fresh('configmap');
    const v1 = path.join(dir, '..2024_01_01_00_00_00.000000001');
    fs.mkdirSync(v1);
    fs.writeFileSync(path.join(v1, 'a.yaml'), POLICY('a'));
    fs.symlinkSync(path.basename(v1), path.join(dir, '..data'));
    fs.symlinkSync('..data/a.yaml', path.join(dir, 'a.yaml'));
    const r = await watch(dir);
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);

    // An update: new directory, new ..data_tmp link renamed over ..data, old directory removed.
    const v2 = path.join(dir, '..2024_01_01_00_01_00.000000002');
    fs.mkdirSync(v2);
    fs.writeFileSync(path.join(v2, 'a.yaml'), POLICY('a-changed'));
    fs.writeFileSync(path.join(v2, 'b.yaml'), POLICY('b'));
    fs.symlinkSync(path.basename(v2), path.join(dir, '..data_tmp'));
    fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    fs.symlinkSync('..data/b.yaml', path.join(dir, 'b.yaml'));
    fs.rmSync(v1, { recursive: true });
    assert.deepEqual((await r.next(2)).sort(), [`add b.yaml=${POLICY('b').length}`, `change a.yaml=${POLICY('a-changed').length}`]);

    // A key removed from the ConfigMap: its symlink goes, and so does the policy.
    fs.unlinkSync(path.join(dir, 'b.yaml'));
    assert.deepEqual(await r.next(), ['remove b.yaml']);
  });

  it('survives the directory being removed and created again', async () => {
    const dir = fresh('replaced');
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    const r = await watch(dir);
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);
    fs.rmSync(dir, { recursive: true });
    assert.deepEqual(await r.next(), ['remove a.yaml']);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a-again'));
    assert.deepEqual(await r.next(), [`add a.yaml=${POLICY('a-again').length}`]);
    // The new directory is watched, not just scanned once.
    fs.writeFileSync(path.join(dir, 'b.yaml'), POLICY('b'));
    assert.deepEqual(await r.next(), [`add b.yaml=${POLICY('b').length}`]);
  });

  it('follows a symlinked directory re-pointed elsewhere', async () => {
    const d1 = fresh('target-1');
    const d2 = fresh('target-2');
    fs.writeFileSync(path.join(d1, 'a.yaml'), POLICY('a'));
    fs.writeFileSync(path.join(d2, 'a.yaml'), POLICY('a-two'));
    fs.writeFileSync(path.join(d2, 'b.yaml'), POLICY('b'));
    const link = path.join(root, 'policies');
    fs.symlinkSync(d1, link);
    const r = await watch(link);
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);
    fs.symlinkSync(d2, `${link}.tmp`);
    fs.renameSync(`${link}.tmp`, link);
    assert.deepEqual((await r.next(2)).sort(), [`add b.yaml=${POLICY('b').length}`, `change a.yaml=${POLICY('a-two').length}`]);
    fs.unlinkSync(path.join(d2, 'b.yaml'));
    assert.deepEqual(await r.next(), ['remove b.yaml']);
  });

  it('a directory that does not exist yet is picked up when it appears', async () => {
    const dir = path.join(root, 'later');
    const r = await watch(dir);
    assert.deepEqual(r.take(), []);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    assert.deepEqual(await r.next(), [`add a.yaml=${POLICY('a').length}`]);
  });

  it('reports each entry it cannot read once (dangling link, loop, FIFO, directory), and again only after it was readable', async () => {
    const dir = fresh('unreadable');
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    fs.symlinkSync('later.txt', path.join(dir, 'dangling.yaml'));
    fs.symlinkSync('loop.yaml', path.join(dir, 'loop.yaml'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
    fs.mkdirSync(path.join(dir, 'sub.yaml'));
    const r = await watch(dir);
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);
    const SKIPS = [
      'dangling.yaml: expected a readable policy file, found a symlink to later.txt, which does not exist',
      'fifo.yaml: expected a regular file, found a FIFO (named pipe); give a regular file, or a symlink to one',
      'loop.yaml: expected a readable policy file, found a symlink loop (ELOOP)',
      'sub.yaml: expected a regular file, found a directory; give a regular file, or a symlink to one',
    ];
    assert.deepEqual(r.skips, SKIPS);

    // Rescans, by SIGHUP and by a change, report nothing again.
    await r.watcher.rescan();
    await r.watcher.rescan();
    fs.writeFileSync(path.join(dir, 'b.yaml'), POLICY('b'));
    assert.deepEqual(await r.next(), [`add b.yaml=${POLICY('b').length}`]);
    assert.deepEqual(r.skips, SKIPS);

    // The link's target appears: a policy; it goes: the link is reported again.
    fs.writeFileSync(path.join(dir, 'later.txt'), POLICY('later'));
    assert.deepEqual(await r.next(), [`add dangling.yaml=${POLICY('later').length}`]);
    fs.unlinkSync(path.join(dir, 'later.txt'));
    assert.deepEqual(await r.next(), ['remove dangling.yaml']);
    assert.deepEqual(r.skips, [...SKIPS, SKIPS[0]]);

    // An entry reported as unreadable that goes away is removed: whoever reported it as a problem forgets it.
    fs.unlinkSync(path.join(dir, 'fifo.yaml'));
    assert.deepEqual(await r.next(), ['remove fifo.yaml']);
    assert.deepEqual(r.skips, [...SKIPS, SKIPS[0]]);
    assert.deepEqual(r.errors, []);
  });

  it('retries a failed scan (EMFILE) with backoff until one succeeds, counts it, and removes nothing it could not read', async () => {
    const dir = fresh('emfile');
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    // Faults to inject: how many of the next readdir calls, and of the next reads of a.yaml, fail as with no fd left.
    const fail = { readdir: 0, readA: 0 };
    const emfile = (syscall: string, p: string): Error => Object.assign(new Error(`EMFILE: too many open files, ${syscall} '${p}'`), { code: 'EMFILE' });
    const r = await watch(dir, {
      retryMs: 40,
      maxRetryMs: 80,
      io: {
        readdir: async (d) => {
          if (fail.readdir > 0 && fail.readdir--) throw emfile('scandir', d);
          return fsp.readdir(d);
        },
        read: async (f) => {
          if (path.basename(f) === 'a.yaml' && fail.readA > 0 && fail.readA--) throw emfile('open', f);
          return readPolicyFile(f);
        },
      },
    });
    assert.deepEqual(r.take(), [`add a.yaml=${POLICY('a').length}`]);

    // Added while scans fail: it arrives with the first scan that succeeds, with no further fs event and no rescan().
    fail.readdir = 3;
    fs.writeFileSync(path.join(dir, 'b.yaml'), POLICY('b'));
    assert.deepEqual(await r.next(), [`add b.yaml=${POLICY('b').length}`]);
    assert.deepEqual(r.errors.map((e) => e.message), Array(3).fill(`EMFILE: too many open files, scandir '${dir}'`));
    assert.deepEqual(r.retries, [40, 80, 80]);
    assert.equal(r.watcher.scanFailures, 3);

    // A file that fails to open is not removed; the scan is retried (from retryMs again) and finds it unchanged.
    fail.readA = 1;
    fs.writeFileSync(path.join(dir, 'c.yaml'), POLICY('c'));
    assert.deepEqual(await r.next(), [`add c.yaml=${POLICY('c').length}`]);
    await sleep(200);
    assert.deepEqual(r.take(), []);
    assert.equal(fail.readA, 0);
    assert.deepEqual(r.errors.slice(3).map((e) => e.message), [`EMFILE: too many open files, open '${path.join(dir, 'a.yaml')}'`]);
    assert.deepEqual(r.retries.slice(3), [40]);
    assert.equal(r.watcher.scanFailures, 4);
    assert.deepEqual(r.skips, []);
  });

  it('close stops events, and closing twice is fine', async () => {
    const dir = fresh('closed');
    const r = await watch(dir);
    r.watcher.close();
    r.watcher.close();
    fs.writeFileSync(path.join(dir, 'a.yaml'), POLICY('a'));
    await sleep(300);
    assert.deepEqual(r.take(), []);
  });
});
