/**
 * --metrics-peer-cidrs-file with real BPF: the agent applies a new version of
 * the file while it runs (a ConfigMap update, swapped in by rename), in
 * place, so bytes before and after the change are counted exactly under the
 * old and the new class. A version with a mistake is refused, counted and
 * logged with its FILE:LINE; counting goes on under the classes in use.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentProcess } from './helpers/agent-process';
import { TestCgroup } from './helpers/cgroup';
import { NetnsPair } from './helpers/netns';
import { select, Series, sum } from './helpers/prom-text';
import { byClass, Place, sendTo } from './helpers/peer-traffic';

const PEER_SENT = 'tally_tcp_peer_sent_bytes_total';
const PEER_RECEIVED = 'tally_tcp_peer_received_bytes_total';

const one = (series: Series[], name: string): number => sum(select(series, name, {}));

describe('tcp-peers: the peer classes file changed while the agent runs', () => {
  let agent: AgentProcess | undefined;
  let pair: NetnsPair | undefined;
  const cg: Record<string, TestCgroup> = {};
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-peer-file-'));
  const file = path.join(dir, 'peer-cidrs');
  /** As the kubelet updates a ConfigMap volume: a new file renamed over the old, never a partial write. */
  const publish = (text: string): void => {
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
  };

  before(async () => {
    pair = new NetnsPair();
    for (const r of ['sender', 'receiver']) cg[r] = TestCgroup.create(r);
    publish('# the veth pair of the test\nold=10.0.0.0/8\n');
    agent = await AgentProcess.start(['--metrics-label-filter', 'workload', '--builtin-policies', 'tcp-bytes,tcp-peers', '--metrics-peer-cidrs-file', file]);
  });
  after(async () => {
    for (const c of Object.values(cg)) c.destroy();
    pair?.destroy();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts bytes before a new version under the old class and after it under the new, and refuses a bad version', async () => {
    const p = pair!;
    const from: Place = { cg: cg.sender, ns: p.a };
    const to: Place = { cg: cg.receiver, ns: p.b };
    const send = async (bytes: number): Promise<void> => assert.deepEqual(await sendTo(p, from, to, p.addrB, bytes), { sent: bytes, received: bytes });
    const writes = one(await agent!.scrape(), 'tally_peer_table_writes_total');

    await send(100_003);
    publish('# the veth pair of the test\nnew=10.0.0.0/8\ninternet=0.0.0.0/0\n');
    await agent!.scrapeUntil((s) => one(s, 'tally_peer_table_writes_total') === writes + 1, 'the new version written to the table');
    await send(200_005);
    publish('new=10.0.0.0/8\ninternet=0.0.0.0/0\nbroken=10.0.0.0/33\n');
    const refused = await agent!.scrapeUntil((s) => one(s, 'tally_peer_cidrs_file_refusals_total') === 1, 'the bad version refused');
    assert.equal(one(refused, 'tally_peer_table_writes_total'), writes + 1, 'a refused version writes nothing');
    await send(300_007);

    const series = await agent!.scrape();
    const want = { old: 100_003, new: 200_005 + 300_007 };
    assert.deepEqual(byClass(series, PEER_SENT, cg.sender.name), want, 'sent, by class');
    assert.deepEqual(byClass(series, PEER_RECEIVED, cg.receiver.name), want, 'received, by class');
    assert.match(agent!.stderr, new RegExp(`msg="peer classes file refused.*${file.replace(/[.]/g, '\\.')}:3: \\\\"broken=10\\.0\\.0\\.0/33\\\\"`));
  });
});
