/**
 * Preloaded into the agent by the memory benchmark (`node --require`), never
 * by the agent itself: on SIGUSR2 it runs a full garbage collection and
 * writes process.memoryUsage() as JSON to $TALLY_HEAP_PROBE_OUT. The agent
 * otherwise runs exactly as `npm start` runs it; gc() is reached through
 * V8's flag at run time so that no node flag differs. With
 * $TALLY_HEAP_PROBE_SNAPSHOTS (a directory) each probe also writes a heap
 * snapshot there, numbered, to compare what a phase left behind.
 */
import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

const out = process.env.TALLY_HEAP_PROBE_OUT;
let probes = 0;
if (out) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  process.on('SIGUSR2', () => {
    gc();
    const usage = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
    const dir = process.env.TALLY_HEAP_PROBE_SNAPSHOTS;
    if (dir) v8.writeHeapSnapshot(`${dir}/probe-${String(++probes).padStart(2, '0')}.heapsnapshot`);
    fs.writeFileSync(`${out}.tmp`, JSON.stringify({ ...usage, spaces }));
    fs.renameSync(`${out}.tmp`, out);
  });
}
