/**
 * A Kubernetes API server for tests, speaking the real list/watch protocol
 * over HTTP: lists carry a resourceVersion; a watch streams newline-delimited
 * {"type","object"} events newer than the resourceVersion it was given, and
 * answers 410 Gone (an ERROR event with a Status) for one older than the
 * retained history, and ends a watch after its timeoutSeconds. It serves pods
 * (with fieldSelector spec.nodeName), ReplicaSets, Jobs and DaemonSets (GET
 * only; a DaemonSet can be deleted, or marked as being deleted), and records
 * every request it gets. A resource can be forbidden (403), as when the RBAC
 * that granted it is deleted.
 *
 * For hostile-input tests it also sends what a buggy API server or proxy
 * might: any raw line into the open watches, ERROR events, bookmarks, list
 * items of any shape, and list bodies verbatim.
 *
 * For load tests it can go down and come back (restart(): connections
 * refused meanwhile, and the watch history lost, as a real restart loses
 * its watch cache), keeps a bounded history (maxHistory), and records when
 * each request came and what it was answered.
 */
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Obj = { metadata: { uid?: string; name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };
type Event = { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj };

export interface PodSpec {
  uid: string;
  namespace: string;
  name: string;
  node: string;
  owner?: { kind: string; name: string };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: Array<{ name: string; id: string }>;
}

export function podObject(p: PodSpec): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      uid: p.uid,
      name: p.name,
      namespace: p.namespace,
      labels: p.labels ?? {},
      annotations: p.annotations,
      ownerReferences: p.owner ? [{ apiVersion: 'apps/v1', kind: p.owner.kind, name: p.owner.name, uid: `${p.owner.name}-uid`, controller: true }] : undefined,
    },
    spec: { nodeName: p.node, containers: (p.containers ?? []).map((c) => ({ name: c.name, image: 'x' })) },
    status: { phase: 'Running', containerStatuses: (p.containers ?? []).map((c) => ({ name: c.name, containerID: `containerd://${c.id}`, ready: true, restartCount: 0, image: 'x', imageID: 'x' })) },
  };
}

/** One request as the server saw it: when (performance.now(), ms), what, and the status it answered. */
export interface SeenRequest {
  path: string;
  query: URLSearchParams;
  at: number;
  status?: number;
  /** A list's resourceVersion, as answered. */
  listRv?: string;
}

export class FakeKubeApi {
  readonly requests: SeenRequest[] = [];
  /** Events kept for watches from an older resourceVersion; older ones answer 410 Gone. */
  maxHistory = Infinity;
  private rv = 100;
  private oldestRv = 100;
  private readonly pods = new Map<string, Obj>();
  /** The pods of each node, as the API server indexes them for fieldSelector spec.nodeName. */
  private readonly byNode = new Map<string, Map<string, Obj>>();
  private readonly others = new Map<string, Obj>(); // "replicasets/ns/name" -> object
  private readonly history: Event[] = [];
  private readonly watches = new Set<{ res: http.ServerResponse; node?: string }>();
  /** Added to every list's items as they are: objects of any shape, malformed ones included. */
  readonly extraListItems: unknown[] = [];
  /** Bodies the next lists answer with verbatim (status 200), one per list, before normal answers resume. */
  readonly nextListBodies: string[] = [];
  /** Statuses the next owner lookups (ReplicaSets, Jobs) answer with, one each, before normal answers resume. */
  readonly nextOwnerStatuses: number[] = [];
  /** Resources (e.g. "daemonsets") every request for which is answered 403 Forbidden, as without RBAC. */
  readonly forbidden = new Set<string>();
  /** Owner lookups are answered after this long (so that lookups overlap). */
  ownerDelayMs = 0;
  private server?: http.Server;
  port = 0;
  /** While true (restart()), every connection is reset at once. */
  private down = false;
  /** When the server last came up (performance.now(), ms). */
  upAt = 0;

  /** Listens on 127.0.0.1:port (0 = any free port). */
  async start(port = 0): Promise<this> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      if (this.down) socket.destroy();
    });
    this.server = server;
    // Thousands of simulated nodes connect at once after a restart.
    await new Promise<void>((r) => server.listen({ port, host: '127.0.0.1', backlog: 65535 }, r));
    this.port = (server.address() as { port: number }).port;
    this.upAt = performance.now();
    return this;
  }

  /** The resourceVersion of the newest change. */
  get currentRv(): number {
    return this.rv;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * A kubeconfig file pointing at this server over plain HTTP, as one for
   * `kubectl proxy` does: without insecure-skip-tls-verify unless asked.
   */
  writeKubeconfig(dir: string, port = this.port, opts: { insecureSkipTlsVerify?: boolean } = {}): string {
    const file = path.join(dir, 'kubeconfig');
    const cluster: Record<string, unknown> = { server: `http://127.0.0.1:${port}` };
    if (opts.insecureSkipTlsVerify) cluster['insecure-skip-tls-verify'] = true;
    fs.writeFileSync(file, JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster }],
      users: [{ name: 'fake', user: { token: 'test' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }));
    return file;
  }

  private bump(type: Event['type'], object: Obj): void {
    this.rv++;
    object.metadata.resourceVersion = String(this.rv);
    const ev = { rv: this.rv, type, object: JSON.parse(JSON.stringify(object)) as Obj };
    this.history.push(ev);
    if (this.history.length > this.maxHistory) {
      const dropped = this.history.splice(0, this.history.length - this.maxHistory);
      this.oldestRv = dropped[dropped.length - 1].rv;
    }
    for (const w of this.watches) if (this.matches(ev.object, w.node)) w.res.write(JSON.stringify({ type, object: ev.object }) + '\n');
  }

  addPod(p: PodSpec): void {
    const o = podObject(p);
    this.putPod(p.uid, o);
    this.bump('ADDED', o);
  }

  modifyPod(uid: string, change: (o: Obj) => void): void {
    const o = this.pods.get(uid)!;
    change(o);
    this.bump('MODIFIED', o);
  }

  /**
   * Changes the pods without telling any watch, like events lost while the
   * client was away: only a list (a resync) can find out.
   */
  changeSilently(change: { add?: PodSpec; deleteUid?: string }): void {
    if (change.add) this.putPod(change.add.uid, podObject(change.add));
    if (change.deleteUid) this.dropPod(change.deleteUid);
    this.rv++;
  }

  deletePod(uid: string): void {
    const o = this.pods.get(uid)!;
    this.dropPod(uid);
    this.bump('DELETED', o);
  }

  private putPod(uid: string, o: Obj): void {
    this.dropPod(uid);
    this.pods.set(uid, o);
    const node = (o.spec as { nodeName: string }).nodeName;
    if (!this.byNode.has(node)) this.byNode.set(node, new Map());
    this.byNode.get(node)!.set(uid, o);
  }

  private dropPod(uid: string): void {
    const o = this.pods.get(uid);
    if (!o) return;
    this.pods.delete(uid);
    this.byNode.get((o.spec as { nodeName: string }).nodeName)?.delete(uid);
  }

  addOwned(resource: 'replicasets' | 'jobs', namespace: string, name: string, owner?: { kind: string; name: string }): void {
    this.others.set(`${resource}/${namespace}/${name}`, {
      apiVersion: resource === 'jobs' ? 'batch/v1' : 'apps/v1',
      kind: resource === 'jobs' ? 'Job' : 'ReplicaSet',
      metadata: {
        name,
        namespace,
        resourceVersion: String(this.rv),
        ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: `${owner.name}-uid`, controller: true }] : undefined,
      },
    });
  }

  /** A DaemonSet, as the API server holds one (GET only). */
  addDaemonSet(namespace: string, name: string): void {
    this.others.set(`daemonsets/${namespace}/${name}`, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace, uid: `${name}-uid`, resourceVersion: String(this.rv) },
    });
  }

  /**
   * Deletes a DaemonSet: at once (gone: 404), or, with `foreground`, as a
   * foreground deletion does while its pods go (it stays, with a
   * metadata.deletionTimestamp).
   */
  deleteDaemonSet(namespace: string, name: string, opts: { foreground?: boolean } = {}): void {
    const key = `daemonsets/${namespace}/${name}`;
    if (opts.foreground) this.others.get(key)!.metadata.deletionTimestamp = new Date().toISOString();
    else this.others.delete(key);
  }

  /** Open pod watches. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** Writes `line` (anything: half an event, not JSON) and a newline into every open watch. */
  sendRaw(line: string): void {
    for (const w of this.watches) w.res.write(line + '\n');
  }

  /** A BOOKMARK at the current resourceVersion, as the API server sends about once a minute. */
  bookmark(): void {
    this.sendRaw(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }));
  }

  /** An ERROR event with a Status of this code into every open watch, which then ends, as the API server does. */
  sendError(code: number, reason: string, message: string): void {
    for (const w of this.watches) w.res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code } }) + '\n');
    this.watches.clear();
  }

  /** Ends every open watch, as a load balancer or an API server restart would. */
  dropWatches(): void {
    for (const w of this.watches) w.res.destroy();
    this.watches.clear();
  }

  /** Forgets the event history: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.history.length = 0;
    this.oldestRv = this.rv;
  }

  watchRequests(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true').map((r) => r.query);
  }

  /** Owner lookups (GETs of ReplicaSets and Jobs). */
  ownerRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/apis/') && !r.path.includes('/daemonsets/'));
  }

  /** GETs of DaemonSets (--bpf-pin-daemonset). */
  daemonSetRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.includes('/daemonsets/'));
  }

  listRequests(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') !== 'true').map((r) => r.query);
  }

  private matches(o: Obj, node?: string): boolean {
    return o.kind !== 'Pod' || node === undefined || (o.spec as { nodeName?: string }).nodeName === node;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const seen: SeenRequest = { path: url.pathname, query: url.searchParams, at: performance.now() };
    this.requests.push(seen);
    res.on('finish', () => (seen.status = res.statusCode));
    if (url.searchParams.get('watch') === 'true') seen.status = 200;
    const json = (code: number, body: unknown): void => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const notFound = (): void => json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
    const node = /^spec\.nodeName=(.*)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];

    if (url.pathname === '/api/v1/pods') {
      if (url.searchParams.get('watch') !== 'true') {
        const verbatim = this.nextListBodies.shift();
        if (verbatim !== undefined) {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(verbatim);
          return;
        }
        const pods = node === undefined ? this.pods : this.byNode.get(node) ?? new Map<string, Obj>();
        const items = [...pods.values(), ...this.extraListItems];
        seen.listRv = String(this.rv);
        json(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
        return;
      }
      const from = Number(url.searchParams.get('resourceVersion') ?? '0');
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      // The API server answers a watch at once, before any event: the client knows it is watching.
      res.flushHeaders();
      if (from < this.oldestRv) {
        res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version', reason: 'Expired', code: 410 } }) + '\n');
        return;
      }
      for (const ev of this.history) if (ev.rv > from && this.matches(ev.object, node)) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
      const w = { res, node };
      this.watches.add(w);
      // The API server ends a watch after the timeout the client asked for.
      const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
      const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
      res.on('close', () => {
        clearTimeout(timer);
        this.watches.delete(w);
      });
      return;
    }
    const m = /^\/apis\/(?:apps|batch)\/v1\/namespaces\/([^/]+)\/(replicasets|jobs|daemonsets)\/([^/]+)$/.exec(url.pathname);
    if (m && this.forbidden.has(m[2])) {
      json(403, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', message: `${m[2]} "${m[3]}" is forbidden`, code: 403 });
      return;
    }
    if (m?.[2] === 'daemonsets') {
      const o = this.others.get(`daemonsets/${m[1]}/${m[3]}`);
      if (o) json(200, o);
      else notFound();
      return;
    }
    if (m) {
      const status = this.nextOwnerStatuses.shift();
      const answer = (): void => {
        if (res.destroyed) return;
        const o = this.others.get(`${m[2]}/${m[1]}/${m[3]}`);
        if (status !== undefined) json(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status });
        else if (o) json(200, o);
        else notFound();
      };
      if (this.ownerDelayMs > 0) setTimeout(answer, this.ownerDelayMs);
      else answer();
      return;
    }
    notFound();
  }

  /**
   * An API server restart: down for downMs (every connection closed, new
   * ones reset at once), then up with the watch history gone, so that a
   * watch from a resourceVersion before the restart gets 410 Gone, as from a
   * real API server's fresh watch cache. The port stays bound throughout
   * (so no other test can take it). Resolves once it is up (upAt).
   */
  async restart(downMs: number, whileDown?: () => void, how: 'reset' | 'refuse' = 'reset'): Promise<void> {
    if (how === 'refuse') return this.restartRefusing(downMs, whileDown);
    this.down = true;
    this.dropWatches();
    this.server?.closeAllConnections();
    whileDown?.();
    await new Promise((r) => setTimeout(r, downMs));
    this.compact();
    this.down = false;
    this.upAt = performance.now();
  }

  /**
   * The same, with the port closed while down, so that the kernel refuses
   * connections (ECONNREFUSED) as for a stopped API server, at no cost to
   * this process: for thousands of clients. Use a port outside the
   * ephemeral range (a client's own port could take it meanwhile).
   */
  private async restartRefusing(downMs: number, whileDown?: () => void): Promise<void> {
    const port = this.port;
    await this.close();
    whileDown?.();
    await new Promise((r) => setTimeout(r, downMs));
    this.compact();
    await this.start(port);
  }

  async close(): Promise<void> {
    this.dropWatches();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise((r) => { s.close(r); s.closeAllConnections(); });
  }
}
