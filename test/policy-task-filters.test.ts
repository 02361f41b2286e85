/**
 * Tetragon's matchNamespaces (Linux namespaces) and matchCapabilities,
 * evaluated in the kernel, against calls the test makes itself: close() of
 * an fd number no process has open, from a process in a UTS namespace of
 * its own, from one without CAP_SYS_ADMIN, and from one in the host's, each
 * a known number of times. Only the calls a selector admits are counted.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AgentProcess } from './helpers/agent-process';
import { select } from './helpers/prom-text';

const EVENTS = 'tally_policy_events_total';
/** An fd number nothing has open: close() fails with EBADF, and no other process closes it. */
const FD = 900000 + (process.pid % 90000);

const policy = (name: string, selector: string) => `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: ${name}}
spec:
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_close
    args:
    - {index: 5, type: int}
    selectors:
    - matchArgs:
      - {index: 5, operator: Equal, values: ["${FD}"]}
${selector}
`;

/** Calls close(FD) n times, under a command prefix (unshare, setpriv). */
function closes(n: number, prefix: string[] = []): void {
  const code = `import os\nfor _ in range(${n}):\n    try: os.close(${FD})\n    except OSError: pass`;
  const r = spawnSync(prefix[0] ?? '/usr/bin/python3', [...prefix.slice(1), ...(prefix.length ? ['/usr/bin/python3'] : []), '-c', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${prefix.join(' ')} python3: ${r.stderr}`);
}

describe('Tetragon task filters, in the kernel', () => {
  let dir: string;
  let agent: AgentProcess;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-task-filters-'));
    fs.writeFileSync(path.join(dir, 'own-uts.yaml'), policy('own-uts', `      matchNamespaces:
      - {namespace: Uts, operator: NotIn, values: [host_ns]}`));
    fs.writeFileSync(path.join(dir, 'host-uts.yaml'), policy('host-uts', `      matchNamespaces:
      - {namespace: Uts, operator: In, values: [host_ns]}`));
    fs.writeFileSync(path.join(dir, 'no-sys-admin.yaml'), policy('no-sys-admin', `      matchCapabilities:
      - {type: Effective, operator: NotIn, values: [CAP_SYS_ADMIN]}`));
    agent = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', dir]);
  });

  after(async () => {
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts by mount namespace and by capability, exactly', async () => {
    closes(7, ['unshare', '--uts']);
    closes(5, ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin']);
    closes(3);
    const count = (policy: string) => (s: ReturnType<typeof select>) => s.filter((x) => x.labels.policy === policy).reduce((a, x) => a + x.value, 0);
    const s = await agent.scrapeUntil((x) => count('own-uts')(select(x, EVENTS)) >= 7 && count('host-uts')(select(x, EVENTS)) >= 8
      && count('no-sys-admin')(select(x, EVENTS)) >= 5, 'the closes', 10000);
    const events = select(s, EVENTS);
    // unshare's process is in a UTS namespace of its own; setpriv's and the plain one are in the host's.
    assert.equal(count('own-uts')(events), 7);
    assert.equal(count('host-uts')(events), 5 + 3);
    // Only setpriv's process lacks CAP_SYS_ADMIN.
    assert.equal(count('no-sys-admin')(events), 5);
  });
});
