/**
 * One collection of the test API server (test/helpers/fake-kube-api.ts):
 * its objects, and the list/watch protocol over them. A list carries the
 * resourceVersion; a watch streams newline-delimited {"type","object"}
 * events newer than the resourceVersion it was given, answers 410 Gone (an
 * ERROR event with a Status) for one older than the retained history, and
 * ends after its timeoutSeconds.
 *
 * The collections of one server share one resourceVersion counter, as the
 * resources of a real API server share etcd's revision: numbers grow across
 * resources. Each keeps its own history, as each resource has its own watch
 * cache, bounded by the server's maxHistory.
 */
import type * as http from 'node:http';
import { createHash } from 'node:crypto';

export type Obj = { metadata: { uid?: string; name: string; namespace: string; resourceVersion?: string; [k: string]: unknown }; [k: string]: unknown };
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
type Event = { rv: number; type: EventType; object: Obj };

/** What the collections of one server share: the newest resourceVersion, and how many events each keeps. */
export interface Revisions {
  rv: number;
  maxHistory: number;
}

/** A collection's resource, as its lists and bookmarks name it. */
export interface ResourceType {
  /** The plural, as in the path and in RBAC: "pods". */
  resource: string;
  /** The API group: "" for the core group. */
  group: string;
  apiVersion: string;
  kind: string;
  listKind: string;
}

/** The service account the server pretends every request comes from, in its 403 messages. */
const USER = 'system:serviceaccount:tally:tally';

export function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The 403 the API server answers without RBAC for `verb` on `type` (a named object, or the cluster-wide collection). */
export function sendForbidden(res: http.ServerResponse, type: Pick<ResourceType, 'resource' | 'group'>, verb: string, name?: string): void {
  const qualified = type.group ? `${type.resource}.${type.group}` : type.resource;
  const message = `${qualified}${name === undefined ? '' : ` "${name}"`} is forbidden: User "${USER}" cannot ${verb} resource "${type.resource}" in API group "${type.group}" at the cluster scope`;
  const details = { ...(name === undefined ? {} : { name }), group: type.group || undefined, kind: type.resource };
  sendJson(res, 403, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details, code: 403 });
}

/** A uid shaped like the API server's (a UUID), the same for the same parts. */
export function stableUid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('/')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function errorLine(code: number, reason: string, message: string): string {
  return JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code } }) + '\n';
}

export class Collection {
  /** The objects, by whatever key the server gives them (pods: uid; others: "namespace/name"). */
  readonly objects = new Map<string, Obj>();
  /** Added to every list's items as they are: objects of any shape, malformed ones included. */
  readonly extraListItems: unknown[] = [];
  /** Bodies the next lists answer with verbatim (status 200), one per list, before normal answers resume. */
  readonly nextListBodies: string[] = [];
  private readonly history: Event[] = [];
  private oldestRv: number;
  private readonly watches = new Set<{ res: http.ServerResponse; wants: (o: Obj) => boolean }>();

  constructor(readonly type: ResourceType, private readonly revisions: Revisions) {
    this.oldestRv = revisions.rv;
  }

  /** A change: the object gets the next resourceVersion, the history the event, every open watch that wants it the event. */
  record(type: EventType, object: Obj): void {
    const rv = ++this.revisions.rv;
    object.metadata.resourceVersion = String(rv);
    const ev = { rv, type, object: JSON.parse(JSON.stringify(object)) as Obj };
    this.history.push(ev);
    if (this.history.length > this.revisions.maxHistory) {
      const dropped = this.history.splice(0, this.history.length - this.revisions.maxHistory);
      this.oldestRv = dropped[dropped.length - 1].rv;
    }
    for (const w of this.watches) if (w.wants(ev.object)) w.res.write(JSON.stringify({ type, object: ev.object }) + '\n');
  }

  /** Answers a list (of `items`, all by default), and notes its resourceVersion in `seen`. */
  list(res: http.ServerResponse, seen: { listRv?: string }, items: Iterable<Obj> = this.objects.values()): void {
    const verbatim = this.nextListBodies.shift();
    if (verbatim !== undefined) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(verbatim);
      return;
    }
    const rv = String(this.revisions.rv);
    seen.listRv = rv;
    sendJson(res, 200, { kind: this.type.listKind, apiVersion: this.type.apiVersion, metadata: { resourceVersion: rv }, items: [...items, ...this.extraListItems] });
  }

  /** Answers a watch (of the objects it `wants`) from its query's resourceVersion, and keeps it open until its timeoutSeconds. */
  watch(res: http.ServerResponse, query: URLSearchParams, wants: (o: Obj) => boolean = () => true): void {
    const from = Number(query.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // The API server answers a watch at once, before any event: the client knows it is watching.
    res.flushHeaders();
    if (from < this.oldestRv) {
      res.end(errorLine(410, 'Expired', 'too old resource version'));
      return;
    }
    for (const ev of this.history) if (ev.rv > from && wants(ev.object)) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
    const w = { res, wants };
    this.watches.add(w);
    // The API server ends a watch after the timeout the client asked for.
    const timeout = Number(query.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.watches.delete(w);
    });
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Writes `line` (anything: half an event, not JSON) and a newline into every open watch. */
  sendRaw(line: string): void {
    for (const w of this.watches) w.res.write(line + '\n');
  }

  /** A BOOKMARK at the current resourceVersion, as the API server sends about once a minute. */
  bookmark(): void {
    this.sendRaw(JSON.stringify({ type: 'BOOKMARK', object: { kind: this.type.kind, apiVersion: this.type.apiVersion, metadata: { resourceVersion: String(this.revisions.rv) } } }));
  }

  /** An ERROR event with a Status of this code into every open watch, which then ends, as the API server does. */
  sendError(code: number, reason: string, message: string): void {
    for (const w of this.watches) w.res.end(errorLine(code, reason, message));
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
    this.oldestRv = this.revisions.rv;
  }
}
