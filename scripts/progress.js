#!/usr/bin/env node
// Runs a long command and shows it is alive: its own output passes through
// line by line, and whenever it has been silent for a while, one line says
// what is still running and for how long. The set-up step wraps `npm ci` and
// `make` in it, whose longest steps (npm ci, the policy BPF objects) would
// otherwise print nothing for tens of seconds.
//
//   node scripts/progress.js [--every SECONDS] [--prefix TEXT] LABEL -- CMD [ARGS...]
//
// Exits with the command's status (128 + signal number if a signal ended it).
'use strict';
const { spawn } = require('node:child_process');
const readline = require('node:readline');

function usage(msg) {
  process.stderr.write(`progress.js: ${msg}\nusage: progress.js [--every SECONDS] [--prefix TEXT] LABEL -- CMD [ARGS...]\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
let every = 5;
let prefix = '[setup]';
while (argv[0] && argv[0].startsWith('--') && argv[0] !== '--') {
  const flag = argv.shift();
  const value = argv.shift();
  if (value === undefined) usage(`${flag} needs a value`);
  if (flag === '--every') {
    every = Number(value);
    if (!(every > 0)) usage(`--every must be a positive number of seconds, got "${value}"`);
  } else if (flag === '--prefix') prefix = value;
  else usage(`unknown flag ${flag}`);
}
const sep = argv.indexOf('--');
if (sep !== 1 || argv.length < 3) usage('expected LABEL -- CMD');
const label = argv[0];
const [cmd, ...args] = argv.slice(2);

const started = Date.now();
let lastOutput = started;
let lastLine = '';
const child = spawn(cmd, args, { stdio: ['inherit', 'pipe', 'pipe'] });
for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
  readline.createInterface({ input: stream }).on('line', (line) => {
    lastOutput = Date.now();
    if (line.trim()) lastLine = line.trim();
    out.write(`${line}\n`);
  });
}
// The ticker names the step the command announced last (make's "[build] …"),
// which is the one still running.
const ticker = setInterval(() => {
  const now = Date.now();
  if (now - lastOutput < every * 1000) return;
  const secs = Math.round((now - started) / 1000);
  const step = lastLine ? `: ${lastLine.replace(/^\[\w+\]\s*/, '')}` : '';
  process.stderr.write(`${prefix} ... still ${label}${step} (${secs}s)\n`);
  lastOutput = now;
}, Math.min(every * 1000, 1000));
// SIGINT/SIGTERM to this wrapper reach the command too, then end the wrapper with it.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('error', (e) => {
  clearInterval(ticker);
  process.stderr.write(`${prefix} error: cannot run ${cmd}: ${e.message}\n`);
  process.exit(127);
});
child.on('close', (code, signal) => {
  clearInterval(ticker);
  if (signal) {
    const os = require('node:os');
    process.exit(128 + (os.constants.signals[signal] || 0));
  }
  process.exit(code ?? 1);
});
