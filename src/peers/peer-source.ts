/**
 * What fills the kernel's peer table, and when: the CIDR classes of
 * --metrics-peer-cidrs, this node's own addresses, and, in a cluster with a
 * peer policy running, every Service endpoint from EndpointSlices. Each
 * change rewrites the table in place (peer-map.ts); a write that fails
 * leaves the table as it was, logs why and counts it, and the next change
 * tries again.
 */
import { Logger } from '../util/log';
import { KubeHttp } from '../labels/kube/http';
import { PeerCidr } from './peer-cidrs';
import { nodeAddresses, PeerMap, PeerMapChange } from './peer-map';
import { ClusterPeer, PeerTable } from './peer-table';
import { EndpointSliceWatch, EndpointSliceWatchOptions } from './endpoint-slice-watch';
import { PeerCidrsFileWatch } from './peer-cidrs-file';

export class PeerSource {
  readonly map: PeerMap;
  private cidrs: readonly PeerCidr[] = [];
  private cluster: readonly ClusterPeer[] = [];
  private watch?: EndpointSliceWatch;
  private cidrsFile?: PeerCidrsFileWatch;
  /** Writes of the table that failed (tally_peer_table_failures_total), and that changed it (tally_peer_table_writes_total). */
  failures = 0;
  writes = 0;
  /** New versions of --metrics-peer-cidrs-file refused (tally_peer_cidrs_file_refusals_total). */
  fileRefusals = 0;

  constructor(
    mapFd: number,
    private readonly log: Logger,
  ) {
    this.map = new PeerMap(mapFd, new PeerTable());
  }

  get table(): PeerTable {
    return this.map.table;
  }

  /** The EndpointSlice watch, when one runs. */
  get endpointSlices(): EndpointSliceWatch | undefined {
    return this.watch;
  }

  /** Replaces the CIDR classes (and re-reads this node's addresses); throws, changing nothing, if the table cannot take them. */
  replaceCidrs(cidrs: readonly PeerCidr[], addresses?: readonly string[]): PeerMapChange {
    const change = this.map.replace(cidrs, addresses ?? nodeAddresses(), this.cluster);
    this.cidrs = cidrs;
    this.writes++;
    // Every start writes tally's own classes; only a table someone asked for is news (a healthy start is quiet).
    const log = cidrs.length > 0 ? this.log.info.bind(this.log) : this.log.debug.bind(this.log);
    log('peer table written', { ...change, classes: [...new Set(cidrs.map((c) => c.name))].join(',') || 'none' });
    return change;
  }

  /** Starts resolving Service endpoints from EndpointSlices (once; later calls do nothing); the table follows their changes. */
  watchEndpointSlices(http: KubeHttp, opts: EndpointSliceWatchOptions): void {
    if (this.watch) return;
    this.watch = new EndpointSliceWatch(http, opts, this.log, (peers) => this.replaceCluster(peers));
    this.watch.start();
  }

  /** Follows --metrics-peer-cidrs-file: each new valid version replaces the CIDR classes; an invalid one is refused. */
  watchCidrsFile(file: string, textAtStart: string): void {
    this.cidrsFile = new PeerCidrsFileWatch(file, textAtStart, {
      apply: (cidrs) => this.replaceCidrs(cidrs),
      refuse: (reason) => {
        this.fileRefusals++;
        this.log.warn('peer classes file refused; the peer table keeps its classes (tally_peer_cidrs_file_refusals_total)', { error: reason });
      },
    });
    this.cidrsFile.start();
  }

  /** SIGHUP: read --metrics-peer-cidrs-file now. */
  recheckCidrsFile(): void {
    this.cidrsFile?.check();
  }

  private replaceCluster(peers: ClusterPeer[]): void {
    try {
      const change = this.map.replace(this.cidrs, nodeAddresses(), peers);
      this.cluster = peers;
      this.writes++;
      this.log.debug('peer table written from EndpointSlices', { ...change, endpoints: peers.length });
    } catch (e) {
      this.failures++;
      this.log.warn('writing the peer table from EndpointSlices failed; it keeps its entries until the next change (tally_peer_table_failures_total)', { endpoints: peers.length, error: (e as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.cidrsFile?.stop();
    await this.watch?.stop();
  }
}
