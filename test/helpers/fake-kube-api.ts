/**
 * A Kubernetes API server for tests, speaking the real list/watch protocol
 * over HTTP: lists carry a resourceVersion; a watch streams newline-delimited
 * {"type","object"} events newer than the resourceVersion it was given, and
 * answers 410 Gone (an ERROR event with a Status) for one older than the
 * retained history, and ends a watch after its timeoutSeconds (the protocol
 * itself is in fake-kube-collection.ts). It lists and watches pods (with
 * fieldSelector spec.nodeName) and EndpointSlices (discovery.k8s.io/v1,
 * cluster-wide), on one resourceVersion counter with a history each; it
 * serves GETs of Nodes, ReplicaSets, Jobs and DaemonSets (a DaemonSet can be
 * deleted, or marked as being deleted), and records every request it gets.
 * A resource can be forbidden (403), as when the RBAC that granted it is
 * deleted.
 *
 * For hostile-input tests it also sends what a buggy API server or proxy
 * might: any raw line into the open watches, ERROR events, bookmarks, list
 * items of any shape, and list bodies verbatim (into pod watches and lists;
 * collection('endpointslices') has the same for EndpointSlices).
 *
 * For load tests it can go down and come back (restart(): connections
 * refused meanwhile, and the watch history lost, as a real restart loses
 * its watch cache), keeps a bounded history (maxHistory), and records when
 * each request came and what it was answered.
 */
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Collection, Obj, Revisions, sendForbidden, sendJson, stableUid } from './fake-kube-collection';

export type { Obj } from './fake-kube-collection';

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

export interface EndpointSliceSpec {
  namespace: string;
  name: string;
  /** The Service it belongs to (label kubernetes.io/service-name). */
  service: string;
  /** IPv4 unless given. */
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  /** An endpoint is ready (and serving) unless `ready: false`. */
  endpoints: Array<{ addresses: string[]; nodeName?: string; zone?: string; ready?: boolean }>;
}

/** An EndpointSlice as the endpointslice controller writes one; its uid is the same for the same namespace/name. */
export function endpointSliceObject(s: EndpointSliceSpec): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: s.name,
      namespace: s.namespace,
      uid: stableUid('endpointslices', s.namespace, s.name),
      labels: { 'kubernetes.io/service-name': s.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    addressType: s.addressType ?? 'IPv4',
    endpoints: s.endpoints.map((e) => ({
      addresses: e.addresses,
      conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
      nodeName: e.nodeName,
      zone: e.zone,
    })),
    ports: [],
  };
}

const PODS = { resource: 'pods', group: '', apiVersion: 'v1', kind: 'Pod', listKind: 'PodList' };
const ENDPOINTSLICES = { resource: 'endpointslices', group: 'discovery.k8s.io', apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', listKind: 'EndpointSliceList' };
const ENDPOINTSLICES_PATH = '/apis/discovery.k8s.io/v1/endpointslices';
const NODES = { resource: 'nodes', group: '' };

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
  /** The newest resourceVersion, shared by every resource; and how many events each resource keeps. */
  private readonly revisions: Revisions = { rv: 100, maxHistory: Infinity };
  /** Pods by uid. */
  private readonly pods = new Collection(PODS, this.revisions);
  /** EndpointSlices by "namespace/name". */
  private readonly endpointSlices = new Collection(ENDPOINTSLICES, this.revisions);
  /** The pods of each node, as the API server indexes them for fieldSelector spec.nodeName. */
  private readonly byNode = new Map<string, Map<string, Obj>>();
  private readonly others = new Map<string, Obj>(); // "replicasets/ns/name" -> object
  private readonly nodes = new Map<string, unknown>(); // Nodes (cluster-scoped: no namespace) by name
  /** Added to every pod list's items as they are: objects of any shape, malformed ones included. */
  readonly extraListItems: unknown[] = this.pods.extraListItems;
  /** Bodies the next pod lists answer with verbatim (status 200), one per list, before normal answers resume. */
  readonly nextListBodies: string[] = this.pods.nextListBodies;
  /** Statuses the next owner lookups (ReplicaSets, Jobs) answer with, one each, before normal answers resume. */
  readonly nextOwnerStatuses: number[] = [];
  /**
   * Resources every request for which is answered 403 Forbidden, as without
   * RBAC: "pods", "endpointslices", "nodes", "replicasets", "jobs", "daemonsets".
   */
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

  /** Events each resource keeps for watches from an older resourceVersion; older ones answer 410 Gone. */
  get maxHistory(): number {
    return this.revisions.maxHistory;
  }

  set maxHistory(n: number) {
    this.revisions.maxHistory = n;
  }

  /** The resourceVersion of the newest change. */
  get currentRv(): number {
    return this.revisions.rv;
  }

  /** A collection, for what the pod-only knobs (sendRaw, sendError, bookmark, extraListItems, nextListBodies) do for pods. */
  collection(resource: 'pods' | 'endpointslices'): Collection {
    return resource === 'pods' ? this.pods : this.endpointSlices;
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

  addPod(p: PodSpec): void {
    const o = podObject(p);
    this.putPod(p.uid, o);
    this.pods.record('ADDED', o);
  }

  modifyPod(uid: string, change: (o: Obj) => void): void {
    const o = this.pods.objects.get(uid)!;
    change(o);
    this.pods.record('MODIFIED', o);
  }

  /**
   * Changes the pods without telling any watch, like events lost while the
   * client was away: only a list (a resync) can find out.
   */
  changeSilently(change: { add?: PodSpec; deleteUid?: string }): void {
    if (change.add) this.putPod(change.add.uid, podObject(change.add));
    if (change.deleteUid) this.dropPod(change.deleteUid);
    this.revisions.rv++;
  }

  deletePod(uid: string): void {
    const o = this.pods.objects.get(uid)!;
    this.dropPod(uid);
    this.pods.record('DELETED', o);
  }

  private putPod(uid: string, o: Obj): void {
    this.dropPod(uid);
    this.pods.objects.set(uid, o);
    const node = (o.spec as { nodeName: string }).nodeName;
    if (!this.byNode.has(node)) this.byNode.set(node, new Map());
    this.byNode.get(node)!.set(uid, o);
  }

  private dropPod(uid: string): void {
    const o = this.pods.objects.get(uid);
    if (!o) return;
    this.pods.objects.delete(uid);
    this.byNode.get((o.spec as { nodeName: string }).nodeName)?.delete(uid);
  }

  addOwned(resource: 'replicasets' | 'jobs', namespace: string, name: string, owner?: { kind: string; name: string }): void {
    this.others.set(`${resource}/${namespace}/${name}`, {
      apiVersion: resource === 'jobs' ? 'batch/v1' : 'apps/v1',
      kind: resource === 'jobs' ? 'Job' : 'ReplicaSet',
      metadata: {
        name,
        namespace,
        resourceVersion: String(this.revisions.rv),
        ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: `${owner.name}-uid`, controller: true }] : undefined,
      },
    });
  }

  /** A DaemonSet, as the API server holds one (GET only). */
  addDaemonSet(namespace: string, name: string): void {
    this.others.set(`daemonsets/${namespace}/${name}`, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace, uid: `${name}-uid`, resourceVersion: String(this.revisions.rv) },
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

  /** An EndpointSlice, as the endpointslice controller creates one (ADDED). */
  addEndpointSlice(s: EndpointSliceSpec): void {
    const key = `${s.namespace}/${s.name}`;
    if (this.endpointSlices.objects.has(key)) throw new Error(`EndpointSlice ${key} exists already`);
    const o = endpointSliceObject(s);
    this.endpointSlices.objects.set(key, o);
    this.endpointSlices.record('ADDED', o);
  }

  /** Replaces the EndpointSlice of the same namespace/name (MODIFIED). */
  updateEndpointSlice(s: EndpointSliceSpec): void {
    const key = `${s.namespace}/${s.name}`;
    if (!this.endpointSlices.objects.has(key)) throw new Error(`no EndpointSlice ${key} to update`);
    const o = endpointSliceObject(s);
    this.endpointSlices.objects.set(key, o);
    this.endpointSlices.record('MODIFIED', o);
  }

  /** Deletes an EndpointSlice (DELETED, with its last state). */
  deleteEndpointSlice(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const o = this.endpointSlices.objects.get(key);
    if (!o) throw new Error(`no EndpointSlice ${key} to delete`);
    this.endpointSlices.objects.delete(key);
    this.endpointSlices.record('DELETED', o);
  }

  /** Creates or replaces a Node (GET /api/v1/nodes/NAME); its uid is the same for the same name. */
  setNode(n: { name: string; labels: Record<string, string> }): void {
    this.nodes.set(n.name, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name, uid: stableUid('nodes', n.name), labels: { ...n.labels }, resourceVersion: String(++this.revisions.rv) },
    });
  }

  /** Deletes a Node: its GET answers 404. */
  deleteNode(name: string): void {
    this.nodes.delete(name);
  }

  /** Open pod watches. */
  get openWatches(): number {
    return this.pods.openWatches;
  }

  /** Open EndpointSlice watches. */
  get openEndpointSliceWatches(): number {
    return this.endpointSlices.openWatches;
  }

  /** Writes `line` (anything: half an event, not JSON) and a newline into every open pod watch. */
  sendRaw(line: string): void {
    this.pods.sendRaw(line);
  }

  /** A BOOKMARK at the current resourceVersion into every open pod watch, as the API server sends about once a minute. */
  bookmark(): void {
    this.pods.bookmark();
  }

  /** An ERROR event with a Status of this code into every open pod watch, which then ends, as the API server does. */
  sendError(code: number, reason: string, message: string): void {
    this.pods.sendError(code, reason, message);
  }

  /** Ends every open watch (of every resource), as a load balancer or an API server restart would. */
  dropWatches(): void {
    this.pods.dropWatches();
    this.endpointSlices.dropWatches();
  }

  /** Forgets the event history of every resource: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.pods.compact();
    this.endpointSlices.compact();
  }

  watchRequests(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true').map((r) => r.query);
  }

  /** Owner lookups (GETs of ReplicaSets and Jobs). */
  ownerRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/apis/') && !r.path.includes('/daemonsets/') && !r.path.startsWith('/apis/discovery.k8s.io/'));
  }

  /** GETs of DaemonSets (--bpf-pin-daemonset). */
  daemonSetRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.includes('/daemonsets/'));
  }

  listRequests(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') !== 'true').map((r) => r.query);
  }

  endpointSliceWatches(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === ENDPOINTSLICES_PATH && r.query.get('watch') === 'true').map((r) => r.query);
  }

  endpointSliceLists(): URLSearchParams[] {
    return this.requests.filter((r) => r.path === ENDPOINTSLICES_PATH && r.query.get('watch') !== 'true').map((r) => r.query);
  }

  /** GETs of Nodes. */
  nodeRequests(): SeenRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/api/v1/nodes/'));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const seen: SeenRequest = { path: url.pathname, query: url.searchParams, at: performance.now() };
    this.requests.push(seen);
    res.on('finish', () => (seen.status = res.statusCode));
    const watch = url.searchParams.get('watch') === 'true';
    if (watch) seen.status = 200;
    const json = (code: number, body: unknown): void => sendJson(res, code, body);
    const notFound = (): void => json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });

    if (url.pathname === '/api/v1/pods') {
      if (this.forbidden.has('pods')) return sendForbidden(res, PODS, watch ? 'watch' : 'list');
      const node = /^spec\.nodeName=(.*)$/.exec(url.searchParams.get('fieldSelector') ?? '')?.[1];
      if (!watch) this.pods.list(res, seen, node === undefined ? this.pods.objects.values() : this.byNode.get(node)?.values() ?? []);
      else this.pods.watch(res, url.searchParams, (o) => node === undefined || (o.spec as { nodeName?: string }).nodeName === node);
      return;
    }
    if (url.pathname === ENDPOINTSLICES_PATH) {
      if (this.forbidden.has('endpointslices')) return sendForbidden(res, ENDPOINTSLICES, watch ? 'watch' : 'list');
      if (!watch) this.endpointSlices.list(res, seen);
      else this.endpointSlices.watch(res, url.searchParams);
      return;
    }
    const n = /^\/api\/v1\/nodes\/([^/]+)$/.exec(url.pathname);
    if (n) {
      const name = decodeURIComponent(n[1]);
      if (this.forbidden.has('nodes')) return sendForbidden(res, NODES, 'get', name);
      const o = this.nodes.get(name);
      if (o) json(200, o);
      else json(404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `nodes "${name}" not found`, reason: 'NotFound', details: { name, kind: 'nodes' }, code: 404 });
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
