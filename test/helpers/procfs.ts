/** Which BPF objects a process holds, from /proc/PID/fdinfo (prog_id:, map_id:). */
import * as fs from 'node:fs';

function idsIn(pid: number, field: 'prog_id' | 'map_id'): number[] {
  const ids = new Set<number>();
  const re = new RegExp(`^${field}:\\s*(\\d+)$`, 'm');
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = re.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* fd closed meanwhile */
    }
  }
  return [...ids];
}

export const programIdsOf = (pid: number): number[] => idsIn(pid, 'prog_id');
export const mapIdsOf = (pid: number): number[] => idsIn(pid, 'map_id');

/** Pids of every process in a process group. */
export function processGroup(pgid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // Field 5 of /proc/PID/stat, after the parenthesised command name.
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
