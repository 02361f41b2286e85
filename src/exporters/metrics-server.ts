/**
 * The HTTP face of the agent: /metrics (Prometheus text 0.0.4, OpenMetrics
 * or protobuf with native histograms, as the scraper's Accept header asks;
 * gzipped when it accepts gzip), /healthz (the process is alive) and /readyz
 * (every hook is attached).
 *
 * With a web config (--web.config.file, ./web-config) it serves HTTPS, asks
 * for client certificates, checks basic auth and adds headers, as the
 * exporter-toolkit does: on every path, the probes' included.
 *
 * It holds a bounded number of connections, each for seconds at most while
 * idle or sending its headers, and leaves fds for the agent's own work
 * (connection-limits.ts): under pressure a scrape may be refused, counting
 * never is.
 */
import express from 'express';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { Registry } from 'prom-client';
import { ListenAddress, formatAddress } from '../cli/address';
import { CONTENT_TYPES, Format, negotiateFormat, render, wantsGzip } from './exposition';
import { BasicAuth, LoadedWebConfig, refusal, registerWebConfigMetrics, WebConfigLog, WebConfigSource } from './web-config';
import { CHECK_INTERVAL_MS, ConnectionGuard, DEFAULT_HTTP_LIMITS, HttpLimits } from './connection-limits';
import { HTTP_CONNECTIONS, HTTP_CONNECTIONS_LIMIT, HTTP_CONNECTIONS_REJECTED } from '../metrics/catalog';
import { defineMetric } from '../metrics/define';

const gzip = promisify(zlib.gzip);

export interface MetricsServerOptions {
  registry: Registry;
  /** Called before each scrape so collectors read the kernel afresh. */
  beforeScrape: () => void;
  /** undefined when ready, else why not. */
  notReadyReason: () => string | undefined;
  /**
   * Errors of the listening socket once it listens (an accept that fails
   * with EMFILE, say). Without a listener Node throws them, which would end
   * the agent; the server keeps listening.
   */
  onError?: (e: Error) => void;
  /** --web.config.file, loaded and checked; without it, plain HTTP for anyone. */
  webConfig?: LoadedWebConfig;
  /** Where web config reloads are reported. */
  log?: WebConfigLog;
  /** GET /debug/cardinality?top=N: the kernel metrics' cardinality, as JSON. */
  cardinality?: (top: number) => Promise<unknown>;
  /** Connections and timeouts; DEFAULT_HTTP_LIMITS unless given. */
  limits?: HttpLimits;
}

/** Node's TLS server reads these two per connection; a reload sets them. */
type TlsServer = https.Server & { requestCert: boolean; rejectUnauthorized: boolean };

export class MetricsServerError extends Error {}

export class MetricsServer {
  private server?: http.Server | https.Server;
  private readonly web?: WebConfigSource;
  private readonly auth = new BasicAuth();
  private guard?: ConnectionGuard;
  private readonly limits: HttpLimits;
  /** Scrapes answered, by negotiated format. */
  readonly scrapes: Record<Format, number> = { prometheus: 0, openmetrics: 0, protobuf: 0 };

  constructor(private readonly opts: MetricsServerOptions) {
    this.limits = opts.limits ?? DEFAULT_HTTP_LIMITS;
    const g = (): ConnectionGuard | undefined => this.guard;
    defineMetric(opts.registry, HTTP_CONNECTIONS, () => [{ labels: {}, value: g()?.open ?? 0 }]);
    defineMetric(opts.registry, HTTP_CONNECTIONS_LIMIT, () => [{ labels: {}, value: g()?.cap ?? this.limits.maxConnections }]);
    defineMetric(opts.registry, HTTP_CONNECTIONS_REJECTED, () => [{ labels: {}, value: g()?.rejected ?? 0 }]);
    if (opts.webConfig) {
      const log = opts.log ?? { info: () => undefined, warn: () => undefined };
      this.web = new WebConfigSource(opts.webConfig, log, (c) => this.applyConfig(c));
      registerWebConfigMetrics(opts.registry, this.web);
    }
  }

  /** A new config in force: cached password checks are forgotten, and its TLS settings apply to the handshakes to come (open connections keep theirs). */
  private applyConfig(c: LoadedWebConfig): void {
    this.auth.clear();
    const server = this.server as TlsServer | undefined;
    if (!c.tls || !(server instanceof https.Server)) return;
    server.setSecureContext(c.tls.context);
    server.requestCert = c.tls.requestCert;
    server.rejectUnauthorized = c.tls.rejectUnauthorized;
  }

  private app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    // A scrape is never the same twice; hashing megabytes for an ETag is waste.
    app.set('etag', false);
    const web = this.web;
    if (web) {
      app.use(async (req, res, next) => {
        const { config } = web.current();
        for (const [name, value] of Object.entries(config.headers)) res.set(name, value);
        if (config.users.size === 0 || (await this.auth.check(config.users, req.get('authorization')))) {
          next();
          return;
        }
        res.set('WWW-Authenticate', 'Basic').status(401).type('text/plain').send('Unauthorized\n');
      });
    }
    app.get('/metrics', async (req, res) => {
      try {
        const format = negotiateFormat(req.get('accept'));
        this.opts.beforeScrape();
        let body = await render(this.opts.registry, format);
        res.set('Content-Type', CONTENT_TYPES[format]).set('Vary', 'Accept, Accept-Encoding');
        if (wantsGzip(req.get('accept-encoding'))) {
          // Level 1: most of the size win for a fraction of the CPU of the default.
          body = await gzip(body, { level: 1 });
          res.set('Content-Encoding', 'gzip');
        }
        res.send(body);
        this.scrapes[format]++;
      } catch (e) {
        res.status(500).type('text/plain').send(`error collecting metrics: ${(e as Error).message}\n`);
      }
    });
    app.get('/debug/cardinality', async (req, res) => {
      const cardinality = this.opts.cardinality;
      if (!cardinality) return void res.status(404).type('text/plain').send('no kernel metrics\n');
      const top = req.query.top === undefined ? 5 : Number(req.query.top);
      if (!Number.isInteger(top) || top < 1 || top > 1000) return void res.status(400).type('text/plain').send('top must be a whole number from 1 to 1000\n');
      try {
        res.json(await cardinality(top));
      } catch (e) {
        res.status(500).type('text/plain').send(`error reading cardinality: ${(e as Error).message}\n`);
      }
    });
    app.get('/healthz', (_req, res) => {
      res.type('text/plain').send('ok\n');
    });
    app.get('/readyz', (_req, res) => {
      const why = this.opts.notReadyReason();
      if (why) res.status(503).type('text/plain').send(`not ready: ${why}\n`);
      else res.type('text/plain').send('ready\n');
    });
    return app;
  }

  /** Resolves once listening; rejects with one clear sentence otherwise. */
  listen(addr: ListenAddress): Promise<void> {
    const server = this.createServer();
    this.server = server;
    this.guard = new ConnectionGuard(server, this.limits.maxConnections);
    return new Promise((resolve, reject) => {
      server.once('listening', () => {
        server.removeAllListeners('error');
        server.on('error', (e) => this.opts.onError?.(e));
      });
      server.once('error', (e: NodeJS.ErrnoException) => {
        const where = formatAddress(addr);
        const why =
          e.code === 'EADDRINUSE' ? 'the address is already in use; stop whatever listens there or choose another with --metrics-server'
          : e.code === 'EACCES' ? 'permission denied binding that port'
          : e.code === 'EADDRNOTAVAIL' ? 'no local interface has that address'
          : e.message;
        reject(new MetricsServerError(`cannot serve metrics on ${where}: ${why}`));
      });
      server.listen({ host: addr.host, port: addr.port }, () => resolve());
    });
  }

  /**
   * Timeouts of seconds, checked every second. A GET's request is its
   * headers, so the request timeout is the header timeout. A TLS handshake
   * gets as long as the headers would (Node's default is 120 s).
   */
  private timeouts(): http.ServerOptions & { handshakeTimeout: number } {
    const { headerTimeoutMs, idleTimeoutMs } = this.limits;
    return {
      headersTimeout: headerTimeoutMs,
      requestTimeout: headerTimeoutMs,
      keepAliveTimeout: idleTimeoutMs,
      connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, headerTimeoutMs),
      handshakeTimeout: headerTimeoutMs,
    };
  }

  private createServer(): http.Server | https.Server {
    const settings = this.web?.current().tls;
    const { handshakeTimeout, ...httpTimeouts } = this.timeouts();
    if (!settings) return http.createServer(httpTimeouts, this.app());
    const web = this.web!;
    const server = https.createServer(
      { ...settings.context, requestCert: settings.requestCert, rejectUnauthorized: settings.rejectUnauthorized, ...httpTimeouts, handshakeTimeout },
      this.app(),
    );
    // Before Node wraps the new socket in TLS (its own listener comes first
    // otherwise): a certificate or policy changed on disk applies to this
    // very handshake, as the toolkit's per-handshake re-read does.
    server.prependListener('connection', () => web.refresh());
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      const why = refusal(socket, web.current().tls!.clientAuth);
      if (why) socket.destroy();
    });
    return server;
  }

  /** Whether it serves HTTPS. */
  get tls(): boolean {
    return this.server instanceof https.Server;
  }

  /** Sizes the connection cap from the fds the agent holds now (it is also resized every second). */
  fitConnections(): number | undefined {
    return this.guard?.fit();
  }

  /** The connection cap in force and the fd limit it was sized under (undefined: unlimited). */
  get connectionLimits(): { cap: number; fdLimit: number | undefined } | undefined {
    return this.guard && { cap: this.guard.cap, fdLimit: this.guard.fdLimit };
  }

  /** The bound port (useful with port 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  /** Stops accepting, ends open connections, resolves when closed. Idempotent. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.guard?.close();
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
