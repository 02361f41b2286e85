/**
 * The web config as it is now, re-read when its file (or a certificate, key
 * or CA file it names) changes.
 *
 * The exporter-toolkit re-reads the file on every request and TLS handshake.
 * tally does the same check at the same moments, but cheaply: it compares
 * the files' stat (inode, size, mtime, ctime; a Kubernetes Secret update
 * swaps a symlink, which changes the inode) and reads them only when that
 * changed. A file that does not load keeps the last good config in force:
 * the scrape goes on as before, the failure is logged once and counted, and
 * it is tried again when a file changes or every few seconds, in case it
 * named a file that did not exist yet.
 *
 * TLS cannot be switched on or off by an edit: the listening socket speaks
 * HTTPS or HTTP from the start (the toolkit fails every handshake instead).
 */
import * as fs from 'node:fs';
import { readWebConfig, WebConfig, WebConfigError } from './config';
import { loadTls, TlsSettings } from './tls';

/** A config file read and checked, with its TLS material loaded. */
export interface LoadedWebConfig {
  file: string;
  config: WebConfig;
  tls?: TlsSettings;
  /** The config file and every file it names. */
  files: string[];
}

/** Reads `file` and the files it names; throws a WebConfigError naming the field. */
export function loadWebConfig(file: string): LoadedWebConfig {
  const config = readWebConfig(file);
  const tls = config.tls ? loadTls(config.tls, file) : undefined;
  return { file, config, tls, files: [file, ...(tls?.files ?? [])] };
}

export interface WebConfigLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/** After a failed reload, how long before trying again with no file changed. */
const RETRY_MS = 5000;

function signature(files: string[]): string {
  return files
    .map((f) => {
      try {
        const s = fs.statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

export class WebConfigSource {
  private loaded: LoadedWebConfig;
  private seen: string;
  private lastError?: string;
  private retryAt = 0;
  /** Reloads after the first load, by result, for tally_web_config_reloads_total. */
  readonly reloads = { success: 0, failure: 0 };

  constructor(
    initial: LoadedWebConfig,
    private readonly log: WebConfigLog,
    /** Called with each new config once it is in force. */
    private readonly onReload: (c: LoadedWebConfig) => void = () => undefined,
  ) {
    this.loaded = initial;
    this.seen = signature(initial.files);
  }

  /** The config in force, after reloading it if a file changed. */
  current(): LoadedWebConfig {
    this.refresh();
    return this.loaded;
  }

  /** False from a failed reload until the next good one. */
  get lastReloadSuccessful(): boolean {
    return this.lastError === undefined;
  }

  /** Reloads if a file changed (or a failed reload is due for a retry). */
  refresh(): void {
    const sig = signature(this.loaded.files);
    const retry = this.lastError !== undefined && Date.now() >= this.retryAt;
    if (sig === this.seen && !retry) return;
    this.seen = sig;
    let next: LoadedWebConfig;
    try {
      next = loadWebConfig(this.loaded.file);
      if (!!next.tls !== !!this.loaded.tls) {
        throw new WebConfigError(
          `--web.config.file ${this.loaded.file}: tls_server_config: switching TLS ${next.tls ? 'on' : 'off'} takes a restart of the agent`,
        );
      }
    } catch (e) {
      const message = (e as Error).message;
      this.retryAt = Date.now() + RETRY_MS;
      // The same failure again (a retry) is neither logged nor counted twice.
      if (message !== this.lastError) {
        this.lastError = message;
        this.reloads.failure++;
        this.log.warn('web config not reloaded; the last good one stays in force', { error: message });
      }
      return;
    }
    this.loaded = next;
    this.seen = signature(next.files);
    this.lastError = undefined;
    this.reloads.success++;
    this.log.info('web config reloaded', { file: next.file, ...describeWebConfig(next) });
    this.onReload(next);
  }
}

/** For the log: what the config turns on. */
export function describeWebConfig(c: LoadedWebConfig): Record<string, unknown> {
  return {
    tls: c.tls ? 'on' : 'off',
    client_auth: c.tls?.clientAuth ?? 'none',
    basic_auth_users: c.config.users.size,
  };
}
