/**
 * The API server of bench/kube-load.ts, in a process of its own (so that
 * its clock and event loop are not the simulated nodes'): the test API
 * server (test/helpers/fake-kube-api.ts) filled with a cluster's pods, with
 * pod churn, and restarts on demand. Driven over the IPC channel of fork():
 * each message { id, cmd, ...args } gets { id, result } or { id, error }.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { FakeKubeApi, PodSpec } from '../../test/helpers/fake-kube-api';

export interface ClusterShape {
  nodes: number;
  podsPerNode: number;
  deployments: number;
}

export interface ChurnRate {
  /** Pods replaced per node per minute (one deleted, one added, then marked running 1 s later). */
  podsPerNodePerMinute: number;
  /** Of the pods added, the share whose ReplicaSet is new to the cluster (a rollout): each costs owner lookups. */
  newReplicaSetShare: number;
}

/** One request as the bench needs it: when (ms since the epoch, to compare across processes), what, whose, and the answer. */
export interface RequestRecord {
  at: number;
  kind: 'list' | 'watch' | 'get';
  /** The node a pod list or watch was for; "" for owner lookups (they name no node). */
  node: string;
  status: number;
}

const NAMESPACE = 'bench';
const hex = (n: number): string => randomBytes(n).toString('hex').slice(0, n);

class Cluster {
  readonly api = new FakeKubeApi();
  private readonly podsOf = new Map<string, string[]>();
  private readonly replicaSets: Array<{ deployment: string; rs: string; hash: string }> = [];
  private churnTimer?: NodeJS.Timeout;
  private owed = 0;
  churned = 0;

  constructor() {
    // A real API server's watch cache keeps a window of history, not all of it.
    this.api.maxHistory = 50_000;
  }

  setup(shape: ClusterShape): { port: number } {
    for (let d = 0; d < shape.deployments; d++) this.rollout(`app-${d}`);
    for (let n = 0; n < shape.nodes; n++) {
      const node = nodeName(n);
      this.podsOf.set(node, []);
      for (let k = 0; k < shape.podsPerNode; k++) this.addPod(node, this.replicaSets[Math.floor(Math.random() * this.replicaSets.length)]);
    }
    return { port: this.api.port };
  }

  /** A new ReplicaSet of a deployment, as a rollout makes. */
  private rollout(deployment: string): { deployment: string; rs: string; hash: string } {
    const hash = hex(10);
    const rs = { deployment, rs: `${deployment}-${hash}`, hash };
    this.api.addOwned('replicasets', NAMESPACE, rs.rs, { kind: 'Deployment', name: deployment });
    this.replicaSets.push(rs);
    return rs;
  }

  private addPod(node: string, rs: { rs: string; hash: string }): string {
    const p: PodSpec = {
      uid: randomUUID(),
      namespace: NAMESPACE,
      name: `${rs.rs}-${hex(5)}`,
      node,
      owner: { kind: 'ReplicaSet', name: rs.rs },
      labels: { 'pod-template-hash': rs.hash },
      containers: [{ name: 'app', id: randomBytes(32).toString('hex') }],
    };
    this.api.addPod(p);
    this.podsOf.get(node)!.push(p.uid);
    return p.uid;
  }

  churn(rate: ChurnRate): void {
    clearInterval(this.churnTimer);
    const nodes = [...this.podsOf.keys()];
    const perTick = (nodes.length * rate.podsPerNodePerMinute) / 600; // ticks of 100 ms
    this.churnTimer = setInterval(() => {
      for (this.owed += perTick; this.owed >= 1; this.owed--) {
        const node = nodes[Math.floor(Math.random() * nodes.length)];
        const pods = this.podsOf.get(node)!;
        const [old] = pods.splice(Math.floor(Math.random() * pods.length), 1);
        if (old) this.api.deletePod(old);
        const rs = Math.random() < rate.newReplicaSetShare
          ? this.rollout(this.replicaSets[Math.floor(Math.random() * this.replicaSets.length)].deployment)
          : this.replicaSets[Math.floor(Math.random() * this.replicaSets.length)];
        const uid = this.addPod(node, rs);
        // Running a second later, unless churn has already deleted it.
        setTimeout(() => pods.includes(uid) && this.api.modifyPod(uid, (o) => ((o.status as Record<string, unknown>).phase = 'Running')), 1000).unref();
        this.churned++;
      }
    }, 100);
  }

  /** Requests from index `from` on. */
  requests(from: number): { next: number; records: RequestRecord[] } {
    const records = this.api.requests.slice(from).map((r): RequestRecord => ({
      at: performance.timeOrigin + r.at,
      kind: r.path.startsWith('/apis/') ? 'get' : r.query.get('watch') === 'true' ? 'watch' : 'list',
      node: /^spec\.nodeName=(.*)$/.exec(r.query.get('fieldSelector') ?? '')?.[1] ?? '',
      status: r.status ?? 0,
    }));
    return { next: this.api.requests.length, records };
  }
}

/**
 * A free port below the ephemeral range: while the server is down, no
 * client's own connection can be given its port (and a connection to a
 * closed port from that same port would connect to itself).
 */
async function portBelowEphemeral(): Promise<number> {
  const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  for (let tries = 0; tries < 50; tries++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port between 10000 and ${low}`);
}

export const nodeName = (i: number): string => `sim-node-${String(i).padStart(5, '0')}`;

if (require.main === module) {
  const cluster = new Cluster();
  const commands: Record<string, (m: Record<string, unknown>) => unknown> = {
    start: async () => (await cluster.api.start(await portBelowEphemeral()), { port: cluster.api.port }),
    setup: (m) => cluster.setup(m.shape as ClusterShape),
    churn: (m) => cluster.churn(m.rate as ChurnRate),
    now: () => ({ now: performance.timeOrigin + performance.now(), requests: cluster.api.requests.length, churned: cluster.churned, openWatches: cluster.api.openWatches }),
    requests: (m) => cluster.requests(Number(m.from)),
    restart: async (m) => (await cluster.api.restart(Number(m.downMs), undefined, 'refuse'), { upAt: performance.timeOrigin + cluster.api.upAt }),
    close: async () => cluster.api.close(),
  };
  process.on('message', (m: Record<string, unknown>) => {
    void (async () => {
      try {
        const result = await commands[String(m.cmd)](m);
        process.send!({ id: m.id, result: result ?? null });
      } catch (e) {
        process.send!({ id: m.id, error: (e as Error).stack ?? String(e) });
      }
    })();
  });
  process.on('disconnect', () => process.exit(0));
}
