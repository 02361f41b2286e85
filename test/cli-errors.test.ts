/**
 * Bad input and a missing prerequisite each end in one clear line on stderr,
 * never a stack trace, with exit 2 for a wrong flag and 1 for the machine.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { MAIN, waitExit } from './helpers/agent-process';

interface Run {
  code: number | null;
  stderr: string;
  stdout: string;
}

async function run(cmd: string, args: string[]): Promise<Run> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => (stdout += d));
  const exit = await waitExit(child, 20000);
  return { code: exit.code, stderr, stdout };
}

const tally = (...args: string[]): Promise<Run> => run(process.execPath, [MAIN, '--metrics-server', '127.0.0.1:0', ...args]);

function assertOneLine(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^tally: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('flag errors exit 2 with one line', () => {
  it('an unknown label in the filter lists the valid names', async () => {
    const r = await tally('--metrics-label-filter', 'workload,container_image');
    assertOneLine(r, 2, /unknown label "container_image" in --metrics-label-filter; valid labels: namespace, workload, pod, container, binary$/);
  });
  it('an empty entry in the filter', async () => {
    assertOneLine(await tally('--metrics-label-filter', 'pod,,workload'), 2, /has an empty entry/);
  });
  it('a repeated label in the filter', async () => {
    assertOneLine(await tally('--metrics-label-filter', 'pod,pod'), 2, /label "pod" appears twice/);
  });
  it('a malformed metrics address', async () => {
    assertOneLine(await tally('--metrics-server', 'localhost'), 2, /--metrics-server "localhost" is not HOST:PORT/);
  });
  it('a port out of range', async () => {
    assertOneLine(await tally('--metrics-server', ':70000'), 2, /port 70000 is out of range 0-65535/);
  });
  it('an unknown log level', async () => {
    assertOneLine(await tally('--log-level', 'chatty'), 2, /--log-level "chatty" is not one of debug, info, warn, error/);
  });
  it('an unknown flag', async () => {
    assertOneLine(await tally('--metrics-labels', 'pod'), 2, /Unknown option '--metrics-labels'.*tally --help/);
  });
  it('a bad map capacity', async () => {
    assertOneLine(await tally('--bpf-map-capacity', '0'), 2, /--bpf-map-capacity "0" must be a whole number/);
  });
});

describe('environment errors exit 1 with one line', () => {
  it('an address already in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await run(process.execPath, [MAIN, '--metrics-server', `127.0.0.1:${port}`]);
      assertOneLine(r, 1, new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    } finally {
      blocker.close();
    }
  });

  it('missing privileges name what is needed', async () => {
    // Still uid 0 (so the checkout stays readable wherever it is), but with
    // no capabilities at all: securebits stop root from regaining them at exec.
    const r = await run('setpriv', ['--securebits', '+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked',
      '--inh-caps=-all', '--bounding-set=-all', process.execPath, MAIN, '--metrics-server', '127.0.0.1:0']);
    assertOneLine(r, 1, /insufficient privileges: tally needs root, or CAP_BPF \+ CAP_PERFMON .*missing: CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH$/);
  });

  it('a kernel without BTF', async () => {
    // A private mount namespace in which /sys/kernel/btf is empty: to the
    // agent, exactly a kernel built without CONFIG_DEBUG_INFO_BTF.
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      `mount -t tmpfs none /sys/kernel/btf && exec "${process.execPath}" "${MAIN}" --metrics-server 127.0.0.1:0`]);
    assertOneLine(r, 1, /this kernel has no BTF at \/sys\/kernel\/btf\/vmlinux: tally needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, or --kernel-btf FILE/);
  });

  it('a --kernel-btf file that does not exist', async () => {
    assertOneLine(await tally('--kernel-btf', '/nonexistent/vmlinux'), 1, /--kernel-btf \/nonexistent\/vmlinux: no readable BTF file there/);
  });
});

describe('help and version', () => {
  it('--help prints the flags and exits 0', async () => {
    const r = await tally('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--metrics-label-filter LIST/);
    assert.equal(r.stderr, '');
  });
});

describe('series flags', () => {
  it('a bad --metrics-series-ttl', async () => {
    assertOneLine(await tally('--metrics-series-ttl', '5 minutes'), 2, /--metrics-series-ttl "5 minutes" is not a duration/);
  });
  it('a negative --metrics-series-limit, given as its own word', async () => {
    // parseArgs alone calls "-3" ambiguous, in three lines.
    assertOneLine(await tally('--metrics-series-limit', '-3'), 2, /^tally: --metrics-series-limit "-3" must be a whole number from 1 to 10000000$/);
  });
  it('a flag whose value is missing before another flag', async () => {
    assertOneLine(await tally('--node-name', '--log-level', 'debug'), 2, /^tally: --node-name needs a value; write --node-name=VALUE for a value that starts with "-"; run tally --help for the flags$/);
  });
  it('a bad --metrics-series-limit', async () => {
    assertOneLine(await tally('--metrics-series-limit', 'many'), 2, /--metrics-series-limit "many" must be a whole number/);
  });
});
