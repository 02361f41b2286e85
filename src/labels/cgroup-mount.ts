/**
 * Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a pure v2
 * system, /sys/fs/cgroup/unified in hybrid mode, or wherever /proc/self/mounts
 * says. BPF reports cgroup v2 ids, so only the v2 mount matters.
 */
import * as fs from 'node:fs';

export function parseCgroup2Mounts(mounts: string): string[] {
  return mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 3 && f[2] === 'cgroup2')
    .map((f) => f[1].replace(/\\040/g, ' '));
}

export function findCgroup2Mount(mountsText = fs.readFileSync('/proc/self/mounts', 'utf8')): string {
  const mounts = parseCgroup2Mounts(mountsText);
  // Prefer the conventional places, in this order, when several are mounted.
  for (const p of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) if (mounts.includes(p)) return p;
  if (mounts.length > 0) return mounts[0];
  throw new Error('no cgroup v2 hierarchy is mounted (looked in /proc/self/mounts); mount one with: mount -t cgroup2 none /sys/fs/cgroup/unified');
}
