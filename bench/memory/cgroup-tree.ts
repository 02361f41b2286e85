/** Leaf cgroups in bulk and the agent's counter map, for benchmarks against the real agent. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native, BPF_NOEXIST } from '../../src/native/addon';
import { encodeCounterKey } from '../../src/bpf/layout';
import { AgentProcess } from '../../test/helpers/agent-process';
import { kernelIdOf, select } from '../../test/helpers/prom-text';
import { findCgroup2Mount } from '../../src/labels/cgroup-mount';
import { mapIdsOf } from '../../test/helpers/procfs';
import { onExit } from '../../test/helpers/cleanup';

export interface CgroupTree {
  root: string;
  ids: bigint[];
  names: string[];
  /** Removes every leaf and the parent; idempotent, and also run at exit. */
  remove(): void;
}

/** n leaf cgroups w0..w{n-1} under one parent named after tag and this pid. */
export function makeCgroups(n: number, tag: string): CgroupTree {
  const root = path.join(findCgroup2Mount(), `tally-bench-${tag}-${process.pid}`);
  fs.mkdirSync(root);
  const names: string[] = [];
  const ids: bigint[] = [];
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    for (const dir of [...names.map((n) => path.join(root, n)), root]) {
      try {
        fs.rmdirSync(dir); // a cgroup is removed with rmdir, never by deleting its files
      } catch {
        /* already gone */
      }
    }
  };
  onExit(remove); // also when the benchmark fails or is interrupted
  for (let i = 0; i < n; i++) {
    const name = `w${i}`;
    fs.mkdirSync(path.join(root, name));
    names.push(name);
    ids.push(fs.statSync(path.join(root, name), { bigint: true }).ino);
  }
  return { root, ids, names, remove };
}

/** A new fd of the agent's tally_counters map; the caller closes it. */
export function counterMapFd(pid: number): number {
  for (const id of mapIdsOf(pid)) {
    const fd = native().mapFdById(id);
    if (native().mapInfo(fd).name === 'tally_counters') return fd;
    native().closeFd(fd);
  }
  throw new Error('no tally_counters map in the agent');
}

/** Writes one counter entry of `value` per cgroup into the agent's kernel map, for the metric named (as raw-cgroup keys). */
export async function seedCounterEntries(agent: AgentProcess, ids: readonly bigint[], metricName: string, value: bigint): Promise<void> {
  const fd = counterMapFd(agent.child.pid!);
  try {
    const v = Buffer.alloc(8 * native().numPossibleCpus());
    v.writeBigUInt64LE(value);
    const metric = kernelIdOf(await agent.scrape(), metricName);
    for (const id of ids) native().mapUpdate(fd, encodeCounterKey({ cgroupId: id, binaryId: 0n, metric, flags: 0 }), v, BPF_NOEXIST);
  } finally {
    native().closeFd(fd);
  }
}

/** Scrapes once a second until the agent has folded n cgroups into label sets; throws after timeoutMs. */
export async function waitFoldedIn(agent: AgentProcess, n: number, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((select(await agent.scrape(), 'tally_bpf_map_entries', { map: 'tally_cgroup_label_sets' })[0]?.value ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`fold-in did not finish in ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
