/**
 * The chart runs the agent as root with a few capabilities and no
 * CAP_SYS_ADMIN (helm/tally/README.md, "Privileges"). With exactly those,
 * on the real kernel: every built-in policy loads and attaches, and
 * udp-peers once CAP_NET_ADMIN is added, as the chart adds it. (On 6.1 an
 * object that named a kfunc the kernel lacks failed whole without
 * CAP_SYS_ADMIN: docs/kernels.md. The kernel matrix runs this file.)
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from '../src/util/paths';
import { BUILTIN_POLICIES } from '../src/cli/args';

const CHART_CAPS = ['bpf', 'perfmon', 'sys_resource', 'dac_read_search'];

/** `tally policy check --load` on the built-ins, as root bounded to `caps`. */
function checkWith(caps: string[], policies: readonly string[]): { status: number | null; out: string } {
  const main = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
  const files = policies.map((p) => path.join(PROJECT_ROOT, 'policies', `${p}.yaml`));
  const r = spawnSync('setpriv', ['--bounding-set', `-all,${caps.map((c) => `+${c}`).join(',')}`, process.execPath, main, 'policy', 'check', '--load', '--verbose', ...files], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the chart\'s capabilities are enough', () => {
  it('every built-in but udp-peers loads and attaches with them', () => {
    const r = checkWith(CHART_CAPS, BUILTIN_POLICIES.filter((p) => p !== 'udp-peers'));
    assert.equal(r.status, 0, r.out);
    for (const p of BUILTIN_POLICIES.filter((x) => x !== 'udp-peers')) assert.match(r.out, new RegExp(`${p}\\.yaml: ok \\(`), r.out);
  });

  it('udp-peers loads and attaches with CAP_NET_ADMIN added, as the chart adds it', () => {
    const r = checkWith([...CHART_CAPS, 'net_admin'], ['udp-peers']);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /udp-peers\.yaml: ok \(1 policy, 2 hooks\)/, r.out);
  });
});
