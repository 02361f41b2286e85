/**
 * Built-in policy tcp-retransmits against the kernel's own count: in a pair
 * of private network namespaces, nftables drops a share of the packets a
 * receiver gets, the sender retransmits, and tally's count for the sender's
 * cgroup must equal the sender namespace's TcpRetransSegs. Retransmits fire
 * from timers and softirq, so the count is right only if tally attributes
 * them to the socket's cgroup rather than to whatever ran on the CPU.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { useScenario } from './helpers/scenario';
import { waitExit } from './helpers/agent-process';
import { NetnsPair } from './helpers/netns';
import { select } from './helpers/prom-text';

const RETRANSMITS = 'tally_tcp_retransmits_total';
const PORT = 5555;

const SINK_AT = [
  'import socket, sys',
  'ls = socket.socket(); ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(8)',
  'print("listening", flush=True)',
  'c, _ = ls.accept()',
  'while c.recv(65536): pass',
  'c.close()',
].join('\n');

const SENDER = [
  'import socket, sys',
  's = socket.create_connection((sys.argv[1], int(sys.argv[2])))',
  's.sendall(b"r" * int(sys.argv[3]))',
  's.shutdown(socket.SHUT_WR)',
  // The receiver closes once it has read everything: every byte was delivered and acknowledged.
  'while s.recv(65536): pass',
  'print("done", flush=True)',
].join('\n');

describe('built-in policy tcp-retransmits', () => {
  const sc = useScenario(['--metrics-label-filter', 'workload'], ['sender', 'receiver']);
  let net: NetnsPair;

  before(() => {
    net = new NetnsPair();
    const rules = `table inet tally_loss {
      chain input {
        type filter hook input priority 0; policy accept;
        tcp dport ${PORT} numgen random mod 100 < 15 drop
      }
    }`;
    net.exec(net.b, 'nft', ['-f', '-'], rules);
  });
  after(() => net?.destroy());

  it('equals the namespace\'s TcpRetransSegs, attributed to the sender\'s cgroup', async () => {
    const sink = net.spawn(net.b, sc.cg.receiver, '/usr/bin/python3', ['-c', SINK_AT, net.addrB, String(PORT)]);
    await new Promise<void>((resolve, reject) => {
      sink.stdout!.once('data', () => resolve());
      sink.once('exit', (code) => reject(new Error(`the sink exited with ${code}`)));
    });
    const sender = net.spawn(net.a, sc.cg.sender, '/usr/bin/python3', ['-c', SENDER, net.addrB, String(PORT), String(2_000_000)]);
    let err = '';
    sender.stderr!.on('data', (d) => (err += d));
    assert.equal((await waitExit(sender, 60000)).code, 0, err);
    await waitExit(sink, 10000);

    const truth = net.snmp(net.a, 'Tcp', 'RetransSegs');
    assert.ok(truth > 0, 'the lossy path made the sender retransmit');
    const series = await sc.agent.scrape();
    // A retransmit the kernel skipped the program for (it was already running on that CPU, and a
    // softirq fired the tracepoint again) is not counted, but it is reported: tally plus what the
    // kernel says it skipped is the truth.
    const missed = select(series, 'tally_bpf_program_recursion_misses_total', { object: 'policy/tcp-retransmits' }).reduce((a, s) => a + s.value, 0);
    assert.deepEqual(select(series, RETRANSMITS, { workload: sc.cg.sender.name }).map((s) => s.value + missed), [truth]);
    // The receiver mostly only acknowledges, but the sender's packets are the
    // lossy ones: when its last ACK is dropped, the receiver sends its FIN
    // again, maybe after this point. Its count must equal its namespace's
    // too, once the two agree (a later retransmit moves both).
    const receiver = (s: typeof series): number[] => select(s, RETRANSMITS, { workload: sc.cg.receiver.name }).map((x) => x.value);
    let want = 0;
    await sc.agent.scrapeUntil((s) => {
      want = net.snmp(net.b, 'Tcp', 'RetransSegs');
      return JSON.stringify(receiver(s)) === JSON.stringify(want ? [want] : []);
    }, `the receiver's retransmits to equal its namespace's RetransSegs (${want})`);
  });
});
