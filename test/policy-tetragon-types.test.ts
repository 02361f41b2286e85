/**
 * Tetragon's pointer arg types tally decodes in the kernel, counted against
 * ground truth the test makes: linux_binprm (the file being executed) on
 * sched_process_exec, and net_device (its name) on net_dev_xmit, whose count
 * must equal the device's own tx_packets over the same window. (socket, the
 * third, takes kprobes: security_socket_connect; the kernel matrix runs it.)
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AgentProcess } from './helpers/agent-process';
import { NetnsPair } from './helpers/netns';
import { select, Series } from './helpers/prom-text';

const EXECS = 'tally_test_binprm_execs_total';
const XMITS = 'tally_test_dev_xmits_total';
const sum = (s: Series[], name: string): number => select(s, name).reduce((a, x) => a + x.value, 0);

describe('Tetragon arg types linux_binprm and net_device', () => {
  let dir: string;
  let agent: AgentProcess;
  let net: NetnsPair;
  let bin: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-types-'));
    net = new NetnsPair();
    bin = path.join(dir, `binprm-${process.pid}-true`);
    fs.copyFileSync('/usr/bin/true', bin);
    fs.chmodSync(bin, 0o755);
    fs.mkdirSync(path.join(dir, 'policies'));
    fs.writeFileSync(path.join(dir, 'policies', 'types.yaml'), `apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: binprm}
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    raw: true
    args:
    - {index: 2, type: linux_binprm}
    selectors:
    - matchArgs:
      - {index: 2, operator: Postfix, values: [/${path.basename(bin)}]}
    metrics:
    - {name: ${EXECS}, help: Execs of the test's binary., type: counter}
---
apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata: {name: netdev}
spec:
  tracepoints:
  - subsystem: net
    event: net_dev_xmit
    raw: true
    args:
    - {index: 2, type: net_device}
    selectors:
    - matchArgs:
      - {index: 2, operator: Equal, values: [${net.devA}]}
    metrics:
    - {name: ${XMITS}, help: Packets sent on the test's veth., type: counter}
`);
    agent = await AgentProcess.start(['--builtin-policies', 'none', '--policy-dir', path.join(dir, 'policies')]);
  });

  after(async () => {
    await agent?.stop();
    net?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('linux_binprm: counts the execs of a binary by its file path', async () => {
    for (let i = 0; i < 6; i++) assert.equal(spawnSync(bin).status, 0);
    assert.equal(spawnSync('/usr/bin/true').status, 0);
    const s = await agent.scrapeUntil((x) => sum(x, EXECS) >= 6, 'the execs', 10000);
    assert.equal(sum(s, EXECS), 6);
  });

  it('net_device: counts exactly the packets the device sent', async () => {
    const txPackets = (): number => Number(net.exec(net.a, 'cat', [`/sys/class/net/${net.devA}/statistics/tx_packets`]).trim());
    // IPv6 sends on a new link by itself (router solicitations, MLD reports), at times that can fall between a
    // scrape and the reading of tx_packets; without it the veth sends only what the test sends (and ARP).
    net.exec(net.a, 'sysctl', ['-qw', `net.ipv6.conf.${net.devA}.disable_ipv6=1`]);
    const before0 = sum(await agent.scrape(), XMITS);
    const tx0 = txPackets();
    // Five datagrams (and the ARP request before them), whatever answers.
    net.exec(net.a, '/usr/bin/python3', ['-c', `import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b"x", ("${net.addrB}", 9)) for _ in range(5)]`]);
    const tx1 = txPackets();
    assert.ok(tx1 - tx0 >= 5, `the device sent ${tx1 - tx0} packets`);
    // Nothing else sends on this veth: whatever the kernel counted since the first read (the
    // datagrams, ARP, and whatever IPv6 sends on its own), tally counts too.
    let sent = 0;
    const s = await agent.scrapeUntil((x) => sum(x, XMITS) - before0 === (sent = txPackets() - tx0), 'the packets the kernel counted', 10000);
    assert.equal(sum(s, XMITS) - before0, sent);
  });
});
