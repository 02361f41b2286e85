/**
 * The Dockerfile and `npm run image` make the same runtime image: the
 * offline build runs the Dockerfile's own runtime stage (only its base and
 * the source of its files swapped), fed with what scripts/image/stage.sh laid
 * out on the host, and the Dockerfile's build stage runs that same script.
 * This checks both halves of that claim, and that the built image holds
 * exactly the staged files, with what the agent needs and nothing of the
 * development tree.
 */
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { BUILTIN_POLICIES } from '../src/cli/args';
import { buildImage, IMAGE, IMAGE_OUT, PODMAN, podmanCannotRun, runInImage, STAGE_DIR } from './helpers/image';

const DOCKERFILE = fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
const BUILD_SH = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'image', 'build.sh'), 'utf8');
const PKG = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'));

/** The Dockerfile's instructions (continuation lines joined, comments dropped), grouped by stage name. */
function stages(text: string): Map<string, string[]> {
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const l of lines) {
    const from = /^FROM\s+(\S+)\s+AS\s+(\S+)$/i.exec(l);
    if (from) out.set(from[2], (current = [l]));
    else current?.push(l);
  }
  return out;
}

/** Every file and directory under dir, as "type mode path" lines relative to it, sorted. */
function tree(dir: string): string[] {
  const out = execFileSync('find', ['.', '-printf', '%y %m %p\\n'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 });
  return out.split('\n').filter(Boolean).sort();
}

describe('the Dockerfile and npm run image', () => {
  it('the Dockerfile\'s build stage lays out /stage with stage.sh, and its runtime stage copies exactly that', () => {
    const s = stages(DOCKERFILE);
    assert.deepEqual([...s.keys()], ['build', 'runtime']);
    // build: setup's build mode, then stage.sh into /stage.
    assert.ok(s.get('build')!.some((l) => /^RUN .*TALLY_SETUP=build bash scripts\/setup\.sh .*&& bash scripts\/image\/stage\.sh \/stage$/.test(l)), s.get('build')!.join('\n'));
    // Its toolchain layer installs what setup.sh's build mode would.
    const setup = fs.readFileSync(path.join(PROJECT_ROOT, 'scripts', 'setup.sh'), 'utf8');
    const buildPackages = /^APT_PACKAGES=\(([^)]*)\)$/m.exec(setup)![1].split(/\s+/).filter(Boolean);
    const installLine = s.get('build')!.find((l) => l.startsWith('RUN apt-get update'))!;
    const installed = /--no-install-recommends (.*?) &&/.exec(installLine)![1].split(/\s+/).filter(Boolean);
    assert.deepEqual(installed, buildPackages);
    // runtime: the base, libelf1, the staged tree, the entrypoint; nothing else.
    const runtime = s.get('runtime')!;
    assert.equal(runtime[0], 'FROM ${RUNTIME_BASE} AS runtime');
    assert.deepEqual(runtime.filter((l) => /^(COPY|ADD|ENTRYPOINT|CMD|WORKDIR|USER|ENV|VOLUME)\b/.test(l)), [
      'COPY --from=build /stage/ /',
      'ENTRYPOINT ["/opt/tally/bin/tally"]',
    ]);
    // npm run image lays out its files with the same script.
    assert.match(BUILD_SH, /bash "\$ROOT\/scripts\/image\/stage\.sh" "\$OUT\/stage-context\/stage"/);
    assert.match(BUILD_SH, /printf 'FROM scratch\\nCOPY stage\/ \/stage\/\\n'/);
  });

  describe('the image npm run image built', () => {
    let skip: string | undefined;
    before(async () => {
      skip = await podmanCannotRun();
      if (!skip) await buildImage();
    }, { timeout: 20 * 60_000 });

    it('was built from the Dockerfile\'s runtime stage, only its FROM and COPY --from pointed at the offline base and files', { timeout: 120_000 }, (t) => {
      if (skip) return t.skip(skip);
      const used = fs.readFileSync(path.join(IMAGE_OUT, 'runtime.Containerfile'), 'utf8').split('\n');
      const dockerfile = DOCKERFILE.split('\n');
      const from = dockerfile.findIndex((l) => /^FROM \S+ AS runtime$/.test(l));
      assert.ok(from > 0, 'the Dockerfile has a runtime stage');
      const expected = dockerfile.slice(from).map((l) =>
        l === 'FROM ${RUNTIME_BASE} AS runtime' ? 'FROM localhost/tally-base:<base> AS runtime' : l === 'COPY --from=build /stage/ /' ? `COPY --from=localhost/tally-stage:${PKG.version} /stage/ /` : l,
      );
      assert.deepEqual(used.map((l) => l.replace(/^FROM localhost\/tally-base:\S+ AS runtime$/, 'FROM localhost/tally-base:<base> AS runtime')), expected);
    });

    it('has the Dockerfile\'s entrypoint and exactly the staged files under /opt/tally', { timeout: 120_000 }, (t) => {
      if (skip) return t.skip(skip);
      const entrypoint = execFileSync(PODMAN[0], [...PODMAN.slice(1), 'image', 'inspect', '--format', '{{json .Config.Entrypoint}}', IMAGE], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(entrypoint), ['/opt/tally/bin/tally']);
      const inImage = runInImage('/usr/bin/find', ['/opt/tally', '-printf', '%y %m ./%P\\n']).split('\n').filter(Boolean).sort();
      const staged = tree(path.join(STAGE_DIR, 'opt', 'tally')).map((l) => l.replace(/ \.$/, ' ./'));
      assert.equal(inImage.length, staged.length, 'as many entries in the image as staged');
      assert.deepEqual(inImage, staged);
    });

    it('holds what the agent runs with, and nothing of the development tree', { timeout: 120_000 }, (t) => {
      if (skip) return t.skip(skip);
      const files = new Set(tree(path.join(STAGE_DIR, 'opt', 'tally')).map((l) => l.split(' ')[2].replace(/^\.\//, '')));
      for (const f of ['bin/tally', 'package.json', 'dist/src/cli/main.js', 'native/build/Release/tally_native.node', 'build/syscalls.json']) {
        assert.ok(files.has(f), `${f} is in the image`);
      }
      for (const p of BUILTIN_POLICIES) assert.ok(files.has(`policies/${p}.yaml`), `built-in policy ${p}`);
      // Every BPF object make's runtime target produces.
      const objects = fs.readdirSync(path.join(PROJECT_ROOT, 'bpf')).filter((f) => f.endsWith('.bpf.c')).map((f) => f.replace(/\.c$/, '.o'));
      const flavours = ['policy-compat.bpf.o', 'policy-usdt.bpf.o', 'policy-nokfunc.bpf.o']; // bpf/policy.bpf.c built again (Makefile)
      for (const o of [...objects, ...flavours]) assert.ok(files.has(`build/bpf/${o}`), `build/bpf/${o}`);
      assert.deepEqual([...files].filter((f) => /^build\/bpf\/.*\.o$/.test(f)).sort(), [...objects, ...flavours].map((o) => `build/bpf/${o}`).sort());
      // Production dependencies only, as the lock file marks them: every
      // package it does not mark dev (or optional) is there, none it marks dev is.
      const lock = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), 'utf8')).packages as Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
      const pkgs = Object.entries(lock).filter(([k]) => k.startsWith('node_modules/'));
      const missing = pkgs.filter(([k, v]) => !v.dev && !v.optional && !v.devOptional && !files.has(`${k}/package.json`)).map(([k]) => k);
      assert.deepEqual(missing, [], 'production packages missing from the image');
      const dev = pkgs.filter(([k, v]) => v.dev && files.has(`${k}/package.json`)).map(([k]) => k);
      assert.deepEqual(dev, [], 'development packages in the image');
      assert.ok(pkgs.filter(([, v]) => v.dev).length > 10, 'the lock file marks development packages');
      for (const d of Object.keys(PKG.dependencies)) assert.ok(files.has(`node_modules/${d}/package.json`), `dependency ${d}`);
      // No tests, benches, TypeScript sources or source maps.
      assert.deepEqual([...files].filter((f) => /^(dist\/(test|bench)|src|test|bench)\/|\.(ts|map)$/.test(f) && !f.startsWith('node_modules/')), []);
    });

    it('runs the node it was built with and answers --version', { timeout: 120_000 }, (t) => {
      if (skip) return t.skip(skip);
      assert.equal(runInImage('/usr/local/bin/node', ['--version']).trim(), process.version);
      assert.equal(runInImage('/opt/tally/bin/tally', ['--version']).trim(), `tally ${PKG.version}`);
    });
  });
});
