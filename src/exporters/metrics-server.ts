/**
 * The HTTP face of the agent: /metrics (Prometheus text 0.0.4, OpenMetrics
 * or protobuf with native histograms, as the scraper's Accept header asks;
 * gzipped when it accepts gzip), /healthz (the process is alive) and /readyz
 * (every hook is attached).
 */
import express from 'express';
import * as http from 'node:http';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { Registry } from 'prom-client';
import { ListenAddress, formatAddress } from '../cli/address';
import { CONTENT_TYPES, Format, negotiateFormat, render, wantsGzip } from './exposition';

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
}

export class MetricsServerError extends Error {}

export class MetricsServer {
  private server?: http.Server;
  /** Scrapes answered, by negotiated format. */
  readonly scrapes: Record<Format, number> = { prometheus: 0, openmetrics: 0, protobuf: 0 };

  constructor(private readonly opts: MetricsServerOptions) {}

  private app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    // A scrape is never the same twice; hashing megabytes for an ETag is waste.
    app.set('etag', false);
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
    const server = http.createServer(this.app());
    this.server = server;
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

  /** The bound port (useful with port 0). */
  get port(): number | undefined {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : undefined;
  }

  /** Stops accepting, ends open connections, resolves when closed. Idempotent. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
