/**
 * GET requests to the Kubernetes API server: a JSON document (a list, an
 * owner) or a watch's stream of newline-delimited events.
 *
 * The kubeconfig (or in-cluster service account) decides where and how:
 * KubeConfig.applyToHTTPSOptions gives the TLS material, the credentials
 * (token files and exec plugins refreshed as they expire) and the agent
 * (proxies included), per request. The requests themselves are Node's own,
 * so every error they raise arrives here, as a rejection tally handles, not
 * in a library's stream handler.
 *
 * Sizes are bounded: a list body and a watch line have caps, past which the
 * request is given up (the API server's own limit for one object is 1.5 MiB).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { K8s } from './client';
import { isMapping } from './pod-object';
import { KubeAnswer, KubeRequestCounts, KubeVerb, resourceOf } from './request-counts';

type KubeConfig = InstanceType<K8s['KubeConfig']>;

/** The largest list body read (a node's pods are typically a few MB). */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;
/** The longest watch line (one event) read. */
export const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/** How long a watch waits for the API server to answer (its headers; events may take minutes). */
export const ANSWER_MS = 30_000;

/** What went wrong with a request; the `reason` label values of tally_kube_watch_errors_total. */
export type RequestFailure = 'connection' | 'http_status' | 'expired' | 'too_large' | 'invalid_json' | 'bad_list';

export class KubeRequestError extends Error {
  constructor(
    message: string,
    readonly reason: RequestFailure,
    readonly status?: number,
  ) {
    super(message);
  }
}

export class KubeHttp {
  /** Every request made through this client, by verb, resource and answer. */
  readonly requests = new KubeRequestCounts();

  constructor(private readonly kc: KubeConfig) {}

  /** The API server's address, for messages. */
  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '(no cluster)';
  }

  /** GETs a JSON document (verb: a list or one object). 410 Gone rejects with reason expired. */
  async getJson(path: string, query: Record<string, string>, opts: { verb: 'list' | 'get'; timeoutMs: number; signal?: AbortSignal; maxBytes?: number }): Promise<unknown> {
    const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
    const res = await this.open(opts.verb, path, query, AbortSignal.any(signals));
    const maxBytes = opts.maxBytes ?? MAX_LIST_BYTES;
    const body = await readBody(res, maxBytes, `GET ${path}`);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, body, `GET ${path}`);
    try {
      return JSON.parse(body) as unknown;
    } catch (e) {
      throw new KubeRequestError(`GET ${path}: the API server answered with invalid JSON (${(e as Error).message})`, 'invalid_json');
    }
  }

  /**
   * Opens a watch and calls onLine with each line of its stream. Resolves
   * when the server ends the stream; rejects when the connection breaks, the
   * answer is not 200, a line is longer than MAX_EVENT_BYTES, nothing at all
   * arrives for idleMs (a half-open connection), or signal aborts.
   * onStart is called once the server has answered 200.
   */
  async watch(path: string, query: Record<string, string>, opts: { idleMs: number; signal: AbortSignal; onStart: () => void; onLine: (line: string) => void; answerMs?: number }): Promise<void> {
    // A connection that never completes (a dropped SYN is retried by the kernel for minutes)
    // must fail like any other, so that the retry comes from tally's backoff, in its cap.
    const answerMs = opts.answerMs ?? ANSWER_MS;
    const unanswered = new AbortController();
    const timer = setTimeout(() => unanswered.abort(), answerMs);
    let res: http.IncomingMessage;
    try {
      res = await this.open('watch', path, query, AbortSignal.any([opts.signal, unanswered.signal]));
    } catch (e) {
      if (unanswered.signal.aborted && !opts.signal.aborted) throw new KubeRequestError(`watch ${path}: no answer from the API server in ${answerMs} ms`, 'connection');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, await readBody(res, 64 * 1024, `watch ${path}`), `watch ${path}`);
    opts.onStart();
    res.socket?.setKeepAlive(true, 30_000);
    await new Promise<void>((resolve, reject) => {
      // Lines are split on bytes: 0x0A never occurs inside a multi-byte UTF-8 character.
      // Each chunk is searched once, so a long line costs linear time.
      let parts: Buffer[] = [];
      let size = 0;
      let ended = false;
      const fail = (e: Error): void => {
        res.destroy();
        reject(e);
      };
      // A throwing handler ends this watch (the caller counts and restarts it), never the process.
      const deliver = (bytes: Buffer[]): void => {
        const line = Buffer.concat(bytes).toString('utf8');
        if (!line.trim()) return;
        try {
          opts.onLine(line);
        } catch (e) {
          fail(e as Error);
        }
      };
      res.setTimeout(opts.idleMs, () => fail(new KubeRequestError(`watch ${path}: nothing from the API server for ${opts.idleMs} ms`, 'connection')));
      res.on('data', (chunk: Buffer) => {
        let start = 0;
        for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
          parts.push(chunk.subarray(start, nl));
          const line = parts;
          parts = [];
          size = 0;
          start = nl + 1;
          deliver(line);
          if (res.destroyed) return;
        }
        if (start < chunk.length) {
          parts.push(chunk.subarray(start));
          size += chunk.length - start;
        }
        if (size > MAX_EVENT_BYTES) fail(new KubeRequestError(`watch ${path}: an event longer than ${MAX_EVENT_BYTES} bytes`, 'too_large'));
      });
      res.on('end', () => {
        ended = true;
        deliver(parts);
        resolve();
      });
      res.on('error', (e) => reject(new KubeRequestError(`watch ${path}: ${e.message}`, 'connection')));
      res.on('close', () => {
        if (!ended) reject(new KubeRequestError(`watch ${path}: the connection closed mid-stream`, 'connection'));
      });
    });
  }

  /** Sends one request and counts it once, by the status of its answer or as an error. */
  private async open(verb: KubeVerb, path: string, query: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
    let answer: KubeAnswer = 'error';
    try {
      const res = await this.send(path, query, signal);
      answer = res.statusCode ?? 'error';
      return res;
    } finally {
      this.requests.count(verb, resourceOf(path), answer);
    }
  }

  private async send(path: string, query: Record<string, string>, signal: AbortSignal): Promise<http.IncomingMessage> {
    let url: URL;
    const opts: https.RequestOptions = {};
    try {
      const cluster = this.kc.getCurrentCluster();
      if (!cluster) throw new Error('the kubeconfig has no current cluster; set current-context');
      // The server may carry a path prefix (a proxy's), which the API path goes under.
      url = new URL(cluster.server.replace(/\/+$/, '') + path);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      await this.kc.applyToHTTPSOptions(opts);
    } catch (e) {
      throw new KubeRequestError(`cannot build a request to the API server: ${(e as Error).message}`, 'connection');
    }
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...opts, method: 'GET', signal, headers: { ...opts.headers, Accept: 'application/json' } }, resolve);
      req.on('error', (e) => reject(new KubeRequestError(`GET ${url.origin}${url.pathname}: ${e.message}`, 'connection')));
      req.end();
    });
  }
}

function readBody(res: http.IncomingMessage, maxBytes: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on('data', (c: Buffer) => {
      n += c.length;
      if (n > maxBytes) {
        res.destroy();
        reject(new KubeRequestError(`${what}: the answer is longer than ${maxBytes} bytes`, 'too_large'));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (e) => reject(new KubeRequestError(`${what}: ${e.message}`, 'connection')));
    res.on('close', () => reject(new KubeRequestError(`${what}: the connection closed mid-answer`, 'connection')));
  });
}

/** A non-200 answer, with the Status message the API server put in its body. */
function statusError(status: number, body: string, what: string): KubeRequestError {
  let message = '';
  try {
    const s = JSON.parse(body) as unknown;
    if (isMapping(s) && typeof s.message === 'string') message = `: ${s.message}`;
  } catch {
    message = body ? `: ${body.slice(0, 200)}` : '';
  }
  const hint = status === 401 || status === 403 ? ' (check the credentials and RBAC: tally needs get, list and watch on pods, get on replicasets and jobs)' : '';
  return new KubeRequestError(`${what}: HTTP ${status}${message}${hint}`, status === 410 ? 'expired' : 'http_status', status);
}
