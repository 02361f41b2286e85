/**
 * The metrics server under connection pressure: how many connections it
 * holds at once, for how long, and what it leaves for the rest of the agent.
 *
 * Every connection holds a file descriptor, and so does everything else the
 * agent does: the sweep opens cgroups by handle, the policy watcher reads
 * files, a BPF load opens objects, maps, programs and links. Without a cap,
 * idle sockets held by anyone who can reach the port used up the fd limit
 * and those failed with EMFILE; counting went blind to protect a scrape. So
 * scrapes give way: the server holds at most `cap` connections (a further
 * one is accepted and closed at once, and counted as rejected), and the cap
 * leaves a reserve of fds free beyond what the agent holds.
 *
 * The cap is the smaller of --web.max-connections and what the fd limit
 * allows: limit − fds the agent holds (its connections aside) − reserve,
 * with reserve = max(64, limit / 4). It is sized when the agent has started
 * and checked again every second, since the agent's own fds grow and shrink
 * with its policies; it changes only when the fds left free beyond the
 * connections have moved by more than half a reserve from the reserve
 * itself. So a policy added under pressure is loaded out of the reserve,
 * the connections held stay welcome, and the cap does not flutter with the
 * fds a sweep or a scan holds for a moment.
 *
 * Node raises its soft RLIMIT_NOFILE to the hard limit at startup (as far as
 * the hard limit allows), so the limit read here is already the highest this
 * process can have.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';

export interface HttpLimits {
  /** --web.max-connections: connections held at once, at most. */
  maxConnections: number;
  /** --web.read-header-timeout: from the connection (or its TLS handshake) to the end of a request's headers. */
  headerTimeoutMs: number;
  /** --web.idle-timeout: how long a kept-alive connection waits for its next request. */
  idleTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = { maxConnections: 64, headerTimeoutMs: 5000, idleTimeoutMs: 10000 };

/** The reserve never drops below this many fds: a sweep, a scan and a small policy load at once. */
export const MIN_FD_RESERVE = 64;

/** How often timeouts are checked (Node's default is 30 s, too coarse for timeouts of seconds) and the cap resized. */
export const CHECK_INTERVAL_MS = 1000;

/** fds kept free for the agent's own work under a limit of `fdLimit`. */
export function fdReserve(fdLimit: number): number {
  return Math.max(MIN_FD_RESERVE, Math.floor(fdLimit / 4));
}

export interface CapInputs {
  configured: number;
  /** The soft RLIMIT_NOFILE; undefined when unlimited or unknown. */
  fdLimit: number | undefined;
  /** fds held now, the server's connections not counted. */
  agentFds: number;
  /** The cap in force; undefined at the first sizing. */
  current: number | undefined;
}

/** The cap to hold from now on (see the module comment). At least 1: a scrape must stay possible. */
export function nextConnectionCap({ configured, fdLimit, agentFds, current }: CapInputs): number {
  if (fdLimit === undefined) return configured;
  const reserve = fdReserve(fdLimit);
  const target = Math.max(1, Math.min(configured, fdLimit - agentFds - reserve));
  if (current === undefined) return target;
  const free = fdLimit - agentFds - current;
  return free < reserve / 2 || (free > reserve * 1.5 && target > current) ? target : current;
}

/** The soft limit on open files, from /proc/self/limits; undefined when unlimited or unreadable. */
export function openFileLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(fs.readFileSync(limits, 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** fds this process holds now (the directory handle of the count itself aside). */
export function countOpenFds(): number {
  return fs.readdirSync('/proc/self/fd').length - 1;
}

/**
 * Holds a server to its cap: counts the connections it holds and those it
 * refused (Node's maxConnections closes them and says so with 'drop').
 */
export class ConnectionGuard {
  /** Connections held now. */
  open = 0;
  /** Connections closed at once because `cap` were held (tally_http_connections_rejected_total). */
  rejected = 0;
  cap: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly server: net.Server,
    private readonly configured: number,
    readonly fdLimit: number | undefined = openFileLimit(),
    private readonly countFds: () => number = countOpenFds,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.open++;
      socket.once('close', () => this.open--);
    });
    server.on('drop', () => this.rejected++);
    this.cap = this.resize(undefined);
    this.timer = setInterval(() => this.resize(this.cap), CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Sizes the cap afresh from the fds held now; the agent calls it once it has loaded what it starts with. */
  fit(): number {
    return this.resize(undefined);
  }

  private resize(current: number | undefined): number {
    let agentFds = 0;
    try {
      agentFds = Math.max(0, this.countFds() - this.open);
    } catch {
      // /proc unreadable (no fd to read it with, even): keep the cap as it is.
      if (current !== undefined) return current;
    }
    this.cap = nextConnectionCap({ configured: this.configured, fdLimit: this.fdLimit, agentFds, current });
    this.server.maxConnections = this.cap;
    return this.cap;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
