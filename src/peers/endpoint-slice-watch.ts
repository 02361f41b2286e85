/**
 * Cluster peers for the peer table: a list+watch of every EndpointSlice
 * (discovery.k8s.io/v1, the object set kube-proxy already watches on every
 * node) and one GET of this node, for its zone. Each change of either gives
 * onChange the cluster peers anew, at most once per debounce: a rollout that
 * moves a thousand endpoints rewrites the kernel's table once, not a thousand
 * times. Between a change and the write, events resolve through the table as
 * it was; no count is lost, a few may go to the previous peer.
 *
 * It never watches pods: EndpointSlices carry each endpoint's address, node
 * and zone, which is all a peer needs, and they are far fewer objects.
 */
import { Backoff, BackoffOptions, DEFAULT_BACKOFF, jittered } from '../labels/kube/backoff';
import { KubeHttp, KubeRequestError, ANSWER_MS } from '../labels/kube/http';
import { ListWatch, WATCH_ERROR_REASONS, WatchErrorReason } from '../labels/kube/list-watch';
import { isMapping } from '../labels/kube/pod-object';
import { OutageLog } from '../labels/kube/outage-log';
import { Logger } from '../util/log';
import { ClusterPeer } from './peer-table';
import { clusterPeers, EndpointSliceRecord, ThisNode, ZONE_LABEL } from './cluster-peers';
import { readEndpointSlice } from './endpoint-slice-object';

export const ENDPOINT_SLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices';

export interface EndpointSliceWatchOptions {
  nodeName: string;
  /** How long changes gather before onChange (default 1 s). */
  debounceMs?: number;
  /** A full relist about this often, jittered (default 5 min), as the pod watch does. */
  resyncMs?: number;
  watchTimeoutSeconds?: number;
  backoff?: Partial<BackoffOptions>;
}

export class EndpointSliceWatch {
  private readonly slices = new Map<string, EndpointSliceRecord>();
  private readonly node: ThisNode;
  private listWatch?: ListWatch<EndpointSliceRecord>;
  private debounce?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private nodeTimer?: NodeJS.Timeout;
  private readonly stopping = new AbortController();
  private stopped = false;
  /** The node's zone lookup has answered, or failed once: until then no table is written, so none classes by a zone not known yet. */
  private zoneSettled = false;
  private readonly outage: OutageLog;
  private readonly nodeOutage: OutageLog;
  /** For tally's health metrics. */
  readonly stats = {
    errors: Object.fromEntries(WATCH_ERROR_REASONS.map((r) => [r, 0])) as Record<WatchErrorReason, number>,
  };

  constructor(
    private readonly http: KubeHttp,
    private readonly opts: EndpointSliceWatchOptions,
    private readonly log: Logger,
    private readonly onChange: (peers: ClusterPeer[]) => void,
  ) {
    this.node = { name: opts.nodeName };
    this.outage = new OutageLog(log, 'kubernetes EndpointSlice watch', { server: http.server });
    this.nodeOutage = new OutageLog(log, 'kubernetes node zone lookup', { server: http.server, node: opts.nodeName });
  }

  /** EndpointSlices known now. */
  get size(): number {
    return this.slices.size;
  }

  /** This node's zone, once its Node answered with one. */
  get zone(): string | undefined {
    return this.node.zone;
  }

  /** Starts; resolves at once, before anything is known. */
  start(): void {
    this.listWatch = new ListWatch<EndpointSliceRecord>({
      http: this.http,
      path: ENDPOINT_SLICES_PATH,
      query: {},
      read: readEndpointSlice,
      resourceVersion: (s) => s.resourceVersion,
      onList: (items) => {
        this.slices.clear();
        for (const s of items) this.slices.set(s.uid, s);
        this.changed();
        this.scheduleResync();
      },
      onEvent: (type, s) => {
        if (type === 'DELETED') this.slices.delete(s.uid);
        else this.slices.set(s.uid, s);
        this.changed();
      },
      onError: (reason, message, retrying) => {
        this.stats.errors[reason]++;
        if (retrying) this.outage.failed(reason, message);
        else this.log.warn('kubernetes EndpointSlice watch: skipped (tally_peer_watch_errors_total)', { reason, error: message });
      },
      onSync: () => this.outage.answered(),
      watchTimeoutSeconds: this.opts.watchTimeoutSeconds,
      backoff: this.opts.backoff,
    });
    this.listWatch.start();
    void this.readZone(new Backoff({ ...DEFAULT_BACKOFF, ...this.opts.backoff }));
  }

  /** GET this node for its zone label, retrying with backoff until it answers (a 404 too: the node may not be registered yet). */
  private async readZone(backoff: Backoff): Promise<void> {
    if (this.stopped) return;
    try {
      const o = await this.http.getJson(`/api/v1/nodes/${encodeURIComponent(this.opts.nodeName)}`, {}, { verb: 'get', timeoutMs: ANSWER_MS, signal: this.stopping.signal });
      const labels = isMapping(o) && isMapping(o.metadata) && isMapping(o.metadata.labels) ? o.metadata.labels : {};
      const zone = labels[ZONE_LABEL];
      this.nodeOutage.answered();
      this.node.zone = typeof zone === 'string' && zone !== '' ? zone : undefined;
      if (this.node.zone === undefined) this.log.info(`this node has no ${ZONE_LABEL} label: cluster peers in other nodes are peer_class="cluster"`, { node: this.opts.nodeName });
      this.zoneSettled = true;
      this.changed();
    } catch (e) {
      if (this.stopped) return;
      // Logged once per outage, however long the node stays unreadable (a 403 without the chart's RBAC).
      this.nodeOutage.failed(e instanceof KubeRequestError ? e.reason : 'connection', (e as Error).message);
      if (!this.zoneSettled) {
        this.zoneSettled = true; // write what is known, as cluster, rather than nothing while it retries
        this.changed();
      }
      this.nodeTimer = setTimeout(() => void this.readZone(backoff), backoff.next());
      this.nodeTimer.unref();
    }
  }

  private changed(): void {
    if (this.debounce || this.stopped || !this.zoneSettled) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.onChange(clusterPeers(this.slices.values(), this.node));
    }, this.opts.debounceMs ?? 1000);
    this.debounce.unref();
  }

  private scheduleResync(): void {
    clearTimeout(this.resyncTimer);
    if (this.stopped) return;
    this.resyncTimer = setTimeout(() => this.listWatch?.resync(), jittered(this.opts.resyncMs ?? 5 * 60_000, 0.5, this.opts.backoff?.random));
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearTimeout(this.debounce);
    clearTimeout(this.resyncTimer);
    clearTimeout(this.nodeTimer);
    await this.listWatch?.stop();
  }
}
