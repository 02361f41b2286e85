/**
 * `tally policy check`: the exact lines it prints and its exit codes, called
 * directly and once through the real entry point.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { runPolicyCheck, PolicyLoader } from '../src/cli/policy-check';
import { PROJECT_ROOT } from '../src/util/paths';
import { LIMITS } from '../src/policy/limits';
import { trueExecsPolicy } from './helpers/test-policies';

const F = 'test/fixtures/policies';
const at = (p: string) => path.join(PROJECT_ROOT, p);

async function check(argv: string[], load?: PolicyLoader): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runPolicyCheck(argv, (l) => lines.push(l), load);
  return { code, lines: lines.map((l) => l.split(PROJECT_ROOT + path.sep).join('')) };
}

const SIGKILL = `${F}/tetragon/dns-only-specified-servers.yaml:32:17: spec.kprobes[0].selectors[0].matchActions[0].action: unsupported: expected Post, found "Sigkill"; tally counts and never enforces; it is left out and hook kprobe:ip_output still counts what it matches`;
const BAD_PORT = [
  `${F}/bad/bad-port.yaml:13:51: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: expected a port from 0 to 65535, or a range FIRST:LAST, found "70000"`,
  `${F}/bad/bad-port.yaml:13:60: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: expected a range FIRST:LAST with FIRST not above LAST, found "9000:8000"; write "8000:9000"`,
  `${F}/bad/bad-port.yaml:13:73: spec.kprobes[0].selectors[0].matchArgs[0].values[3]: expected a port from 0 to 65535, or a range FIRST:LAST, found "https"`,
];

describe('tally policy check', () => {
  it('ok and partial files exit 0; partial ones print what is left out', async () => {
    const r = await check([at(`${F}/good/tcp-and-files.yaml`), at(`${F}/tetragon/dns-only-specified-servers.yaml`)]);
    assert.deepEqual(r.lines, [
      `${F}/good/tcp-and-files.yaml: ok (1 policy, 7 hooks)`,
      SIGKILL,
      `${F}/tetragon/dns-only-specified-servers.yaml: partial (1 policy, 1 hook; 1 unsupported)`,
    ]);
    assert.equal(r.code, 0);
  });

  it('a file in error exits 1, and every file is still checked', async () => {
    const r = await check([at(`${F}/bad/bad-port.yaml`), at(`${F}/good/tcp-and-files.yaml`), at(`${F}/bad/yaml-syntax.yaml`)]);
    assert.deepEqual(r.lines, [
      ...BAD_PORT,
      `${F}/bad/bad-port.yaml: error (1 policy, 0 hooks; 3 errors)`,
      `${F}/good/tcp-and-files.yaml: ok (1 policy, 7 hooks)`,
      `${F}/bad/yaml-syntax.yaml:5:8: (file): expected valid YAML, found bad indentation of a mapping entry`,
      `${F}/bad/yaml-syntax.yaml: error (0 policies, 0 hooks; 1 error)`,
    ]);
    assert.equal(r.code, 1);
  });

  it('a directory checks its policy files; one good document keeps a file partial', async () => {
    const r = await check([at(`${F}/mixed`), at(`${F}/bad/second-document.yaml`)]);
    assert.deepEqual(r.lines, [
      `${F}/mixed/bad.yaml:10:14: spec.kprobes[0].metrics[0].name: expected a counter name ending in _total, found "tally_tcp_closes"; write "tally_tcp_closes_total"`,
      `${F}/mixed/bad.yaml: error (1 policy, 0 hooks; 1 error)`,
      `${F}/mixed/good.yaml: ok (1 policy, 1 hook)`,
      `${F}/bad/second-document.yaml:13:7: kind: expected one of TracingPolicy, TracingPolicyNamespaced (the kinds of apiVersion cilium.io/v1alpha1), found "TetragonPolicy"; did you mean "TracingPolicy"?`,
      `${F}/bad/second-document.yaml:16:1: rules: expected one of apiVersion, kind, metadata, spec, found unknown key "rules"`,
      `${F}/bad/second-document.yaml: partial (2 policies, 1 hook; 2 errors)`,
    ]);
    assert.equal(r.code, 1);
  });

  it('--load without a loader says so and exits 1, after checking', async () => {
    const r = await check(['--load', at(`${F}/mixed/good.yaml`)]);
    assert.deepEqual(r.lines, [
      'tally policy check: --load is unavailable: this build of tally cannot load policies into the kernel; run without --load to check the files only',
      `${F}/mixed/good.yaml: ok (1 policy, 1 hook)`,
    ]);
    assert.equal(r.code, 1);
  });

  it('--load hands each loadable policy to the loader and reports what it found', async () => {
    const seen: string[] = [];
    const loader: PolicyLoader = async (p) => {
      seen.push(`${p.name}:${p.state}`);
      if (p.name === 'connects') {
        const o = p.hooks[0].origin;
        return [{ file: p.file, line: o.line, column: o.column, path: o.path, expected: 'a function the kernel has', found: 'no tcp_connect', severity: 'error', message: 'expected a function the kernel has, found no tcp_connect' }];
      }
      throw new Error('verifier: R1 invalid mem access');
    };
    const r = await check(['--load', at(`${F}/mixed/good.yaml`), at(`${F}/tetragon/dns-only-specified-servers.yaml`), at(`${F}/bad/bad-port.yaml`)], loader);
    // The policy in error never reaches the loader.
    assert.deepEqual(seen, ['connects:ok', 'dns-only-specified-servers:partial']);
    assert.deepEqual(r.lines, [
      `${F}/mixed/good.yaml:7:5: spec.kprobes[0]: expected a function the kernel has, found no tcp_connect`,
      `${F}/mixed/good.yaml: error (1 policy, 0 hooks; 1 error)`,
      `${F}/tetragon/dns-only-specified-servers.yaml:11:5: spec.kprobes[0]: expected a policy the kernel accepts, found verifier: R1 invalid mem access`,
      SIGKILL,
      `${F}/tetragon/dns-only-specified-servers.yaml: error (1 policy, 0 hooks; 1 error, 1 unsupported)`,
      ...BAD_PORT,
      `${F}/bad/bad-port.yaml: error (1 policy, 0 hooks; 3 errors)`,
    ]);
    assert.equal(r.code, 1);
  });

  it('--load on a file of many policies says how far it is, on stderr, and the report is unchanged', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-check-progress-'));
    const file = path.join(dir, 'three.yaml');
    fs.writeFileSync(file, ['a', 'b', 'c'].map((n) => trueExecsPolicy(`p-${n}`, `p_${n}_total`)).join('---\n'));
    try {
      const lines: string[] = [];
      const progress: string[] = [];
      const code = await runPolicyCheck(['--load', file], (l) => lines.push(l), async () => [], { report: (l) => progress.push(l), everyMs: 0 });
      assert.equal(code, 0);
      assert.deepEqual(lines, [`${file}: ok (3 policies, 3 hooks)`]);
      assert.deepEqual(progress.map((l) => l.replace(/ \(\d+ s\)$/, '')), [0, 1, 2].map((n) => `tally policy check: ${file}: loaded ${n} of 3 policies`));
      // At the default pace (a line every 5 s), a run this short prints none.
      progress.length = 0;
      await runPolicyCheck(['--load', file], () => undefined, async () => [], { report: (l) => progress.push(l) });
      assert.deepEqual(progress, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('usage errors exit 2', async () => {
    assert.deepEqual(await check([]), { code: 2, lines: ['tally policy check: no policy file given; usage: tally policy check [--load [--verbose]] [--json] FILE|DIR...'] });
    assert.deepEqual(await check(['--frobnicate', 'x.yaml']), {
      code: 2, lines: ["tally policy check: Unknown option '--frobnicate'", 'usage: tally policy check [--load [--verbose]] [--json] FILE|DIR...'],
    });
  });

  it('runs from the real entry point', () => {
    const main = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
    const r = spawnSync(process.execPath, [main, 'policy', 'check', `${F}/tetragon/dns-only-specified-servers.yaml`, `${F}/bad/empty-spec.yaml`],
      { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, [
      SIGKILL,
      `${F}/tetragon/dns-only-specified-servers.yaml: partial (1 policy, 1 hook; 1 unsupported)`,
      `${F}/bad/empty-spec.yaml:5:7: spec: expected at least one hook under kprobes, tracepoints, uprobes, usdts or packets, found none`,
      `${F}/bad/empty-spec.yaml: error (1 policy, 0 hooks; 1 error)`,
      '',
    ].join('\n'));
    assert.equal(r.status, 1);
    const usage = spawnSync(process.execPath, [main, 'policy', 'lint'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(usage.stderr, 'tally: unknown command "policy lint"; usage: tally policy check [--load [--verbose]] [--json] FILE|DIR...\n');
    assert.equal(usage.status, 2);
  });
});

describe('tally policy check on what is not a regular policy file', () => {
  let dir: string;
  const main = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
  const REGULAR = 'expected a regular file';
  const HINT = 'give a regular file, or a symlink to one';

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-check-'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
    fs.mkdirSync(path.join(dir, 'sub.yaml'));
    fs.symlinkSync('/nonexistent/policy.yaml', path.join(dir, 'dangling.yaml'));
    fs.symlinkSync('loop.yaml', path.join(dir, 'loop.yaml'));
    fs.writeFileSync(path.join(dir, 'huge.yaml'), '#'.repeat(LIMITS.fileBytes + 1));
    fs.writeFileSync(path.join(dir, 'at-cap.yaml'), '#'.repeat(LIMITS.fileBytes));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a FIFO is refused at once, not waited on; /dev/zero is refused before a byte is read', () => {
    const fifo = path.join(dir, 'fifo.yaml');
    const r = spawnSync(process.execPath, [main, 'policy', 'check', fifo, '/dev/zero'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.signal, null, 'it finished (before, it hung on the FIFO)');
    assert.deepEqual([r.status, r.stderr], [1, '']);
    assert.equal(r.stdout, [
      `${fifo}:1:1: (file): ${REGULAR}, found a FIFO (named pipe); ${HINT}`,
      `${fifo}: error (0 policies, 0 hooks; 1 error)`,
      `/dev/zero:1:1: (file): ${REGULAR}, found a character device; ${HINT}`,
      '/dev/zero: error (0 policies, 0 hooks; 1 error)',
      '',
    ].join('\n'));
  });

  it('a directory lists every policy-named entry, each refused with its reason; a file past the size cap is refused, one at the cap read', async () => {
    const r = await check([dir]);
    const d = (n: string): string => path.join(dir, n);
    assert.deepEqual(r.lines, [
      `${d('at-cap.yaml')}:1:1: (file): expected at least one policy document, found none; the file is empty or holds only comments`,
      `${d('at-cap.yaml')}: error (0 policies, 0 hooks; 1 error)`,
      `${d('dangling.yaml')}:1:1: (file): expected a readable policy file, found ENOENT (no such file or directory)`,
      `${d('dangling.yaml')}: error (0 policies, 0 hooks; 1 error)`,
      `${d('fifo.yaml')}:1:1: (file): ${REGULAR}, found a FIFO (named pipe); ${HINT}`,
      `${d('fifo.yaml')}: error (0 policies, 0 hooks; 1 error)`,
      `${d('huge.yaml')}:1:1: (file): expected a policy file of at most ${LIMITS.fileBytes} bytes (tally's limit fileBytes), found ${LIMITS.fileBytes + 1} bytes; split the policies over several files`,
      `${d('huge.yaml')}: error (0 policies, 0 hooks; 1 error)`,
      `${d('loop.yaml')}:1:1: (file): expected a readable policy file, found ELOOP (too many symbolic links encountered)`,
      `${d('loop.yaml')}: error (0 policies, 0 hooks; 1 error)`,
      `${d('sub.yaml')}:1:1: (file): ${REGULAR}, found a directory; ${HINT}`,
      `${d('sub.yaml')}: error (0 policies, 0 hooks; 1 error)`,
    ]);
    assert.equal(r.code, 1);
  });
});
