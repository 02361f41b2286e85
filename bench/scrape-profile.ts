/**
 * Where a scrape of N series spends its time in user space, without the
 * kernel: the counting core over an in-memory store (the cardinality tests'
 * World), N cgroups of N workloads counted once each and folded into their
 * label sets, then reads timed phase by phase: the core's read (keys to
 * series, the series limit), the registry's gather, and the text encoding.
 * The kernel's batch read of the same entries is BENCHMARKS.md's "Reading
 * 100,000 map entries". For a profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/scrape-profile.js 100000
 */
import { Registry } from 'prom-client';
import { World, COUNTER } from '../test/cardinality/helpers/world';
import { exposeSeries } from '../src/collectors/series-exposition';
import { gather } from '../src/exporters/exposition/model';
import { encodeTextBuffer } from '../src/exporters/exposition/text-format';
import { encodeProtobuf } from '../src/exporters/exposition/protobuf-format';

const N = Number(process.argv[2] ?? 100_000);
const READS = Number(process.argv[3] ?? 7);

async function main(): Promise<void> {
  const world = new World({ filter: ['namespace', 'workload', 'pod'], seriesLimit: 2 * N, ttlMs: 60_000, store: { capacity: 4 * N } });
  const cgroups = Array.from({ length: N }, (_, i) => world.addCgroup({ namespace: `ns-${i % 100}`, workload: `w-${i}`, pod: `w-${i}-abcde` }));
  for (const c of cgroups) world.count(c, COUNTER, 1000);
  world.read();
  world.sweep(); // folds every cgroup into its label set, as the agent does in its first seconds
  for (const c of cgroups) world.count(c, COUNTER, 1);
  const registry = new Registry();
  let series: ReturnType<World['core']['read']>['series'] = new Map();
  exposeSeries(registry, { name: 'test_events_total', help: 'Events.', type: 'counter' }, async () => ({ series: series.get('test_events_total') ?? [], topBucket: 0 }));

  const phases = { read: [] as number[], gather: [] as number[], encode: [] as number[], protobuf: [] as number[] };
  let bytes = 0;
  for (let r = 0; r < READS; r++) {
    const t0 = performance.now();
    world.store.beginPass();
    series = world.core.read(world.store.dump(), world.store.dumpOverflow(), world.now).series;
    const t1 = performance.now();
    const families = await gather(registry);
    const t2 = performance.now();
    bytes = encodeTextBuffer(families, 'prometheus').length;
    const t3 = performance.now();
    encodeProtobuf(families);
    phases.protobuf.push(performance.now() - t3);
    phases.read.push(t1 - t0);
    phases.gather.push(t2 - t1);
    phases.encode.push(t3 - t2);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const total = median(phases.read.map((x, i) => x + phases.gather[i] + phases.encode[i]));
  process.stdout.write(`${N} series, ${(bytes / 2 ** 20).toFixed(1)} MiB of text; median of ${READS} reads, ms: core read ${median(phases.read).toFixed(1)}, gather ${median(phases.gather).toFixed(1)}, encode ${median(phases.encode).toFixed(1)}, total ${total.toFixed(1)}; protobuf instead of text ${median(phases.protobuf).toFixed(1)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
