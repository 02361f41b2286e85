/** The build: vendored, static, position-independent libbpf, and a quiet no-op set-up. */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { PROJECT_ROOT, ADDON_PATH } from '../src/util/paths';
import { native } from '../src/native/addon';

describe('vendored libbpf', () => {
  it('is linked statically: ldd does not list libbpf.so', () => {
    const ldd = execFileSync('ldd', [ADDON_PATH], { encoding: 'utf8' });
    assert.doesNotMatch(ldd, /libbpf/);
    assert.match(ldd, /libelf/); // libbpf's own dependencies are there, so ldd did read the addon
  });

  it('is the pinned Debian source package, 1.1.2', () => {
    const changelog = fs.readFileSync(path.join(PROJECT_ROOT, '.deps', 'libbpf-1.1.2', 'debian', 'changelog'), 'utf8');
    assert.match(changelog.split('\n')[0], /^libbpf \(1\.1\.2-0\+deb12u1\)/);
    assert.equal(native().libbpfVersion, '1.1');
  });

  it('is not committed: git tracks no third-party source', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).split('\n');
    assert.deepEqual(tracked.filter((f) => /^(\.deps|build|dist|node_modules)\//.test(f) || /vmlinux\.h$/.test(f)), []);
  });
});

describe('set-up step', () => {
  it('does nothing, says nothing and is quick when everything is current', () => {
    const started = Date.now();
    const r = spawnSync('bash', [path.join(PROJECT_ROOT, 'scripts', 'setup.sh')], { encoding: 'utf8' });
    const ms = Date.now() - started;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '');
    assert.ok(ms < 5000, `set-up took ${ms} ms`);
  });
});
