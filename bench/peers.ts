/**
 * What the peer table costs at cluster scale: the real agent, tcp-peers on,
 * resolving N Service endpoints from EndpointSlices served by the test API
 * server (100 endpoints a slice, 10 slices a Service, two zones). For each N:
 * the kernel's tally_peers LPM trie (entries, and the memory the kernel
 * charges for it, bytes_memlock as bpftool reports it), how long from the
 * agent's start until the table holds every endpoint, and the agent's RSS.
 * The per-send cost of tcp-peers beside tcp-bytes is the "tally + tcp-peers"
 * row of the tcp-bytes table (npm run bench -- tcp-bytes).
 *
 *   npm run bench:peers             print the table
 *   npm run bench:peers -- --write  also update BENCHMARKS.md
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AgentProcess } from '../test/helpers/agent-process';
import { EndpointSliceSpec, FakeKubeApi } from '../test/helpers/fake-kube-api';
import { select } from '../test/helpers/prom-text';
import { writeBenchmarksBlock } from './benchmarks-md';

const SIZES = [0, 1000, 10000];
const NODE = 'bench-peers-node';
const PER_SLICE = 100;
const SLICES_PER_SERVICE = 10;

/** N endpoint addresses in 10.128.0.0/9, 100 to a slice, half of them in this node's zone. */
function slices(n: number): EndpointSliceSpec[] {
  const out: EndpointSliceSpec[] = [];
  for (let i = 0; i < n; i += PER_SLICE) {
    const s = i / PER_SLICE;
    const addresses = Array.from({ length: Math.min(PER_SLICE, n - i) }, (_, k) => {
      const a = i + k;
      return `10.${128 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`;
    });
    out.push({
      namespace: `ns-${Math.floor(s / 50)}`,
      name: `svc-${Math.floor(s / SLICES_PER_SERVICE)}-${s % SLICES_PER_SERVICE}`,
      service: `svc-${Math.floor(s / SLICES_PER_SERVICE)}`,
      endpoints: addresses.map((a, k) => ({ addresses: [a], nodeName: `node-${k % 7}`, zone: k % 2 ? 'zone-a' : 'zone-b' })),
    });
  }
  return out;
}

/** bytes_memlock of the agent's tally_peers map, from bpftool. */
function peerMapMemlock(pid: number): { entries?: number; bytes: number } {
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const id = /^map_id:\s+(\d+)$/m.exec(info)?.[1];
    if (!id) continue;
    const show = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'id', id], { encoding: 'utf8' }));
    if (show.name === 'tally_peers') return { bytes: Number(show.bytes_memlock) };
  }
  throw new Error('the agent holds no tally_peers map');
}

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function measure(n: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-peers-'));
  const api = await new FakeKubeApi().start();
  let agent: AgentProcess | undefined;
  try {
    api.setNode({ name: NODE, labels: { 'topology.kubernetes.io/zone': 'zone-a' } });
    for (const s of slices(n)) api.addEndpointSlice(s);
    const t0 = Date.now();
    agent = await AgentProcess.start(['--kubeconfig', api.writeKubeconfig(dir), '--node-name', NODE, '--builtin-policies', 'tcp-peers']);
    // The table at start holds tally's own entries and the node's; the endpoints come with the first list (and a debounce of 1 s).
    let entries = 0;
    let base = -1;
    for (const deadline = Date.now() + 120_000; ; ) {
      const series = await agent.scrape();
      entries = select(series, 'tally_peer_table_entries')[0]?.value ?? 0;
      const writes = select(series, 'tally_peer_table_writes_total')[0]?.value ?? 0;
      if (base < 0) base = entries;
      if (writes >= 2 || (n === 0 && writes >= 1)) break;
      if (Date.now() > deadline) throw new Error(`the table did not take ${n} endpoints: ${entries} entries`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const tookS = (Date.now() - t0) / 1000;
    const mem = peerMapMemlock(agent.child.pid!);
    const rss = rssMiB(agent.child.pid!);
    process.stderr.write(`${n} endpoints: ${entries} entries, memlock ${mem.bytes}, ${tookS.toFixed(1)} s, RSS ${rss.toFixed(1)} MiB\n`);
    return `| ${n.toLocaleString('en')} | ${entries.toLocaleString('en')} | ${(mem.bytes / 1024).toFixed(0)} | ${entries ? (mem.bytes / entries).toFixed(0) : '—'} | ${n ? tookS.toFixed(1) : '—'} | ${rss.toFixed(0)} |`;
  } finally {
    await agent?.stop();
    await api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const rows: string[] = [];
  for (const n of SIZES) rows.push(await measure(n));
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const text = [
    `The agent with tcp-peers only, resolving N Service endpoints (${PER_SLICE} a slice) from the test API server; kernel ${kernel}.`,
    '',
    '| endpoints | table entries | tally_peers memlock, KiB | bytes per entry | start to table written, s (1 s of it the debounce) | agent RSS, MiB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
  process.stdout.write(text + '\n');
  if (process.argv.includes('--write')) {
    writeBenchmarksBlock('peers', text);
    process.stderr.write('updated BENCHMARKS.md\n');
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
