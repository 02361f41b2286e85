/**
 * A pair of network namespaces joined by a veth pair, for tests that need a
 * real network path: packet loss with nftables, per-namespace TCP counters.
 * Removed on destroy() and, whatever happens, when the test process exits.
 */
import { execFileSync, spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { onExit } from './cleanup';
import { TestCgroup } from './cgroup';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

export class NetnsPair {
  readonly a: string;
  readonly b: string;
  /** 10.x.y.1 in a, 10.x.y.2 in b. */
  readonly addrA: string;
  readonly addrB: string;
  /** The veth ends: devA in a, devB in b. */
  readonly devA: string;
  readonly devB: string;
  private destroyed = false;

  constructor() {
    const id = randomBytes(3).toString('hex');
    this.a = `tally-${id}-a`;
    this.b = `tally-${id}-b`;
    const net = `10.${100 + (parseInt(id.slice(0, 2), 16) % 100)}.${parseInt(id.slice(2, 4), 16)}`;
    this.addrA = `${net}.1`;
    this.addrB = `${net}.2`;
    onExit(() => this.destroy());
    ip('netns', 'add', this.a);
    ip('netns', 'add', this.b);
    const va = `tv${id}a`;
    const vb = `tv${id}b`;
    this.devA = va;
    this.devB = vb;
    ip('link', 'add', va, 'netns', this.a, 'type', 'veth', 'peer', 'name', vb, 'netns', this.b);
    for (const [ns, dev, addr] of [[this.a, va, this.addrA], [this.b, vb, this.addrB]]) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev);
      // One segment per packet, so a retransmitted packet is one retransmitted segment.
      ip('-n', ns, 'link', 'set', dev, 'gso_max_segs', '1', 'up');
    }
  }

  /** Runs a command in a namespace. */
  exec(ns: string, cmd: string, args: string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', input });
  }

  /**
   * Starts cmd in namespace ns and in cgroup cg: the cgroup first, because
   * `ip netns exec` mounts a fresh /sys without the cgroup hierarchy.
   */
  spawn(ns: string, cg: TestCgroup, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const script = `echo $$ > "${cg.dir}/cgroup.procs" && exec ip netns exec "$0" "$@"`;
    return spawn('/bin/sh', ['-c', script, ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  /** A counter of /proc/net/snmp or /proc/net/netstat in a namespace, e.g. ('Tcp', 'RetransSegs'). */
  snmp(ns: string, group: string, field: string): number {
    for (const file of ['/proc/net/snmp', '/proc/net/netstat']) {
      const lines = this.exec(ns, 'cat', [file]).split('\n').filter((l) => l.startsWith(`${group}: `));
      for (let i = 0; i + 1 < lines.length; i += 2) {
        const names = lines[i].split(/\s+/).slice(1);
        const values = lines[i + 1].split(/\s+/).slice(1);
        const at = names.indexOf(field);
        if (at >= 0) return Number(values[at]);
      }
    }
    throw new Error(`no ${group} ${field} in namespace ${ns}`);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of [this.a, this.b]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  }
}
