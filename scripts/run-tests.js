#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test
// runner. Files run in parallel; each test cleans up after itself.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.test.js')) files.push(p);
  }
})(root);
files.sort();
const only = process.argv.slice(2);
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
// The runner applies --test-timeout to each file as a whole, too. The image
// tests build the container image first: minutes the first time (debootstrap),
// seconds once it is cached. They run on their own afterwards, with a budget
// for that first build.
const LONG = [/[/\\]image(-layout)?\.test\.js$/];
const isLong = (f) => LONG.some((re) => re.test(f));
// A hung test fails after two minutes instead of hanging CI; its after() hooks still run.
// TALLY_TEST_TIME_SCALE stretches it, as every wait of the suite (test/helpers/agent-process.ts).
const scale = Math.max(1, Number(process.env.TALLY_TEST_TIME_SCALE || 1) || 1);
// A file starts its agent once per describe; where each start takes minutes
// (the kernel matrix's emulated guests), TALLY_TEST_FILE_SCALE stretches the
// per-file budget further than the waits inside it.
const fileScale = Math.max(scale, Number(process.env.TALLY_TEST_FILE_SCALE || 0) || 0);
const groups = [
  { files: selected.filter((f) => !isLong(f)), timeoutMs: 120000 * fileScale },
  { files: selected.filter(isLong), timeoutMs: 25 * 60000 * fileScale },
];
// TALLY_TEST_CONCURRENCY: how many files run at once (default 2). The kernel
// matrix sets 1 on kernels whose TCP sends are counted at fexit (guest-suite.sh).
const concurrency = Math.max(1, Number(process.env.TALLY_TEST_CONCURRENCY || 2) || 2);
let status = 0;
for (const g of groups.filter((x) => x.files.length > 0)) {
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${g.timeoutMs}`, ...g.files], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status === null ? 1 : r.status;
}
process.exit(status);
