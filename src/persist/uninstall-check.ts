/**
 * Restart or uninstall? (--bpf-pin-daemonset, docs/restart.md, "Uninstall")
 *
 * With --bpf-pin-dir a stopping agent hands its counters and counting
 * programs over to the next agent. After an uninstall there is none, and the
 * programs would go on counting until `tally state clear` or a reboot. So the
 * agent asks the API server, at stop, about the DaemonSet it runs in:
 *
 * - it exists (a rollout, an upgrade, an eviction): hand over;
 * - it is gone (404) or being deleted (metadata.deletionTimestamp): an
 *   uninstall, so detach everything and clear the pin directory;
 * - reading it is now refused (401, 403) though it was allowed at start:
 *   `helm uninstall` deletes the DaemonSet, its RBAC and its ServiceAccount
 *   together without waiting for the pods, so this too is an uninstall;
 * - anything else (no answer in STOP_TIMEOUT_MS, a 5xx): hand over, the safe
 *   side: counts are kept, and `tally state clear` removes them if need be.
 *
 * At start the agent checks once that it may read the DaemonSet: if it is
 * not found or not allowed, a wrong name or missing RBAC would make every
 * stop look like an uninstall, so the check is turned off (one warning) and
 * every stop hands over. Until the start check has an answer (the API server
 * was unreachable), only a deletionTimestamp counts as an uninstall.
 */
import { KubeHttp, KubeRequestError } from '../labels/kube/http';
import { isMapping } from '../labels/kube/pod-object';
import { Logger } from '../util/log';
import { PinDir } from './pin-dir';

/** How long the stop waits for the API server (the pod's grace period, and main's 5 s cap, bound the whole stop). */
export const STOP_TIMEOUT_MS = 2000;
/** How long the start check waits for each answer. */
const START_TIMEOUT_MS = 10_000;
/** When the start check is retried after no answer: then every last one. */
const START_RETRY_MS = [5_000, 15_000, 60_000];

/** What the start check found: may the agent read the DaemonSet? */
export type Permission = 'allowed' | 'unknown' | 'disabled';

/** The stop-time GET: its HTTP status and, for 200, the object's deletionTimestamp; or no answer at all. */
export type StopAnswer = { status: number; deletionTimestamp?: string } | { error: string };

export interface Verdict {
  action: 'hand_over' | 'uninstall';
  reason: string;
}

/** The decision at stop, from what the start check found and what the stop's GET answered. */
export function decideAtStop(permission: Permission, answer: StopAnswer, what: string): Verdict {
  const handOver = (reason: string): Verdict => ({ action: 'hand_over', reason });
  const uninstall = (reason: string): Verdict => ({ action: 'uninstall', reason });
  if (permission === 'disabled') return handOver(`the check of ${what} was turned off at start`);
  if ('error' in answer) return handOver(`no answer about ${what} (${answer.error}); counts are kept`);
  const { status } = answer;
  if (status === 200) return answer.deletionTimestamp ? uninstall(`${what} is being deleted (deletionTimestamp ${answer.deletionTimestamp})`) : handOver(`${what} exists: a restart`);
  const unsure = `, but the start check never had an answer: cannot tell an uninstall from a wrong name or RBAC; counts are kept`;
  if (status === 404) return permission === 'allowed' ? uninstall(`${what} is gone (HTTP 404)`) : handOver(`${what} is not found (HTTP 404)${unsure}`);
  if (status === 401 || status === 403) {
    return permission === 'allowed' ? uninstall(`reading ${what} is refused (HTTP ${status}) though it was allowed at start: its RBAC or ServiceAccount was deleted with it`) : handOver(`reading ${what} is refused (HTTP ${status})${unsure}`);
  }
  return handOver(`the API server answered HTTP ${status} about ${what}; counts are kept`);
}

/** NAMESPACE/NAME as given to --bpf-pin-daemonset. */
export interface DaemonSetRef {
  namespace: string;
  name: string;
}

export class UninstallCheck {
  private state: Permission = 'unknown';
  private retry?: NodeJS.Timeout;
  private attempts = 0;
  private closed = false;
  private readonly controller = new AbortController();

  constructor(
    private readonly http: Pick<KubeHttp, 'getJson' | 'server'>,
    private readonly ds: DaemonSetRef,
    private readonly log: Logger,
  ) {}

  private get path(): string {
    return `/apis/apps/v1/namespaces/${encodeURIComponent(this.ds.namespace)}/daemonsets/${encodeURIComponent(this.ds.name)}`;
  }

  private get what(): string {
    return `DaemonSet ${this.ds.namespace}/${this.ds.name}`;
  }

  /** What the start check found so far. */
  get permission(): Permission {
    return this.state;
  }

  /** Starts the start check, in the background: retried while the API server gives no answer. */
  start(): void {
    void this.checkOnce();
  }

  private async checkOnce(): Promise<void> {
    const answer = await this.get(START_TIMEOUT_MS, this.controller.signal);
    if (this.closed) return;
    if ('status' in answer && answer.status === 200) {
      this.state = 'allowed';
      this.log.debug('the DaemonSet is readable: an uninstall will clear the pins', { daemonset: `${this.ds.namespace}/${this.ds.name}` });
    } else if ('status' in answer && [401, 403, 404].includes(answer.status)) {
      this.state = 'disabled';
      const why = answer.status === 404 ? 'it is not found' : `reading it is refused (HTTP ${answer.status})`;
      this.log.warn(`--bpf-pin-daemonset: ${why}, so every stop will hand the counters over, an uninstall too (then run \`tally state clear\` on each node); give the namespace/name of the DaemonSet this agent runs in, and grant get on it (apps/daemonsets)`, {
        daemonset: `${this.ds.namespace}/${this.ds.name}`,
        server: this.http.server,
        status: answer.status,
      });
    } else {
      const delay = START_RETRY_MS[Math.min(this.attempts++, START_RETRY_MS.length - 1)];
      this.log.debug('no answer about the DaemonSet yet; retrying', { daemonset: `${this.ds.namespace}/${this.ds.name}`, error: 'error' in answer ? answer.error : `HTTP ${answer.status}`, retry_in_ms: delay });
      this.retry = setTimeout(() => void this.checkOnce(), delay).unref();
    }
  }

  /** At stop: GETs the DaemonSet (bounded by STOP_TIMEOUT_MS), decides, and logs the decision. */
  async atStop(): Promise<Verdict> {
    this.close();
    const permission = this.state;
    const answer: StopAnswer = permission === 'disabled' ? { error: 'not asked' } : await this.get(STOP_TIMEOUT_MS);
    const v = decideAtStop(permission, answer, this.what);
    this.log.info(v.action === 'uninstall' ? 'an uninstall: not handing over; everything detaches and the pins are cleared' : 'a restart: handing the counters over to the next agent', {
      decision: v.action,
      reason: v.reason,
    });
    return v;
  }

  /** Stops the start check's retries. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.controller.abort();
  }

  private async get(timeoutMs: number, signal?: AbortSignal): Promise<StopAnswer> {
    let timer: NodeJS.Timeout | undefined;
    // A backstop beside getJson's own timeout: building the request (an exec credential plugin) is not under it.
    const late = new Promise<StopAnswer>((resolve) => {
      timer = setTimeout(() => resolve({ error: `no answer in ${timeoutMs} ms` }), timeoutMs + 50);
    });
    const asked = (async (): Promise<StopAnswer> => {
      try {
        const body = await this.http.getJson(this.path, {}, { verb: 'get', timeoutMs, signal, maxBytes: 4 * 1024 * 1024 });
        const meta = isMapping(body) && isMapping(body.metadata) ? body.metadata : {};
        return { status: 200, deletionTimestamp: typeof meta.deletionTimestamp === 'string' ? meta.deletionTimestamp : undefined };
      } catch (e) {
        if (e instanceof KubeRequestError && e.status !== undefined) return { status: e.status };
        return { error: (e as Error).message };
      }
    })();
    try {
      return await Promise.race([asked, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An uninstall: removes whatever is pinned in the directory, as `tally state clear` does. */
export function clearPins(pins: PinDir, log: Logger): void {
  try {
    const removed = pins.clear();
    log.info('cleared the pin directory: nothing is left counting', { dir: pins.dir, removed: removed.length });
  } catch (e) {
    log.error('clearing the pin directory failed; run `tally state clear` on this node', { dir: pins.dir, error: (e as Error).message });
  }
}
