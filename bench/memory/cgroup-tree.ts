/** Leaf cgroups in bulk and the agent's counter map, for benchmarks against the real agent. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../src/native/addon';
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
