/**
 * Watches a policy directory and says which policy files were added, changed
 * or removed, with their contents.
 *
 * Any event from fs.watch only triggers a re-scan of the whole directory
 * (after a debounce, so an editor's burst of writes is one change), and a
 * file counts as changed only when its content hash changes: a touch, or a
 * rewrite with the same bytes, is no change. Re-scanning rather than trusting
 * event file names is what makes Kubernetes ConfigMap volumes work: there
 * `x.yaml` is a symlink through `..data`, and an update swaps `..data`, so
 * the only event names `..data` while the content of every file changes.
 *
 * The directory itself may be replaced or vanish (removed and re-created, a
 * symlink to it re-pointed). A slow check of its identity (device and inode,
 * through symlinks) re-establishes the watch when that happens; while it is
 * missing, its files count as removed.
 *
 * An entry with a policy file's name that cannot be read as one (a dangling
 * symlink, a symlink loop, a FIFO, a directory, a file past the size cap, no
 * permission) is reported through onSkip once, not at every rescan, and again
 * only when the reason changes; it counts as absent. Once such an entry is
 * gone it is reported removed, so whoever reported it as a problem can forget
 * it; once it is readable, it is added.
 *
 * A scan that fails for a reason that passes (the directory unreadable, or a
 * file failing with EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR, EBUSY or EIO) is
 * counted in scanFailures and tried again with backoff, from retryMs doubling
 * to maxRetryMs, until one succeeds: without it, a file added during the
 * failure would wait for the next unrelated change or a SIGHUP. What a failed
 * scan could not read keeps its last known state: a policy running is not
 * removed because the agent ran short of file descriptors.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isPolicyFileName } from './load';
import { PolicyFileRead, readPolicyFile } from './read-file';

export interface PolicyDirEvent {
  type: 'add' | 'change' | 'remove';
  /** The file's path: the directory joined with its name. */
  file: string;
  /** The new contents (add and change), as read: loadPolicyBytes decodes and checks them. */
  bytes?: Buffer;
}

export interface PolicyDirectoryWatcherOptions {
  /** Quiet time after the last fs event before re-scanning. Default 300 ms. */
  debounceMs?: number;
  /** A burst of events delays a re-scan by at most this much. Default 2000 ms. */
  maxDelayMs?: number;
  /** How often the directory's identity is checked. Default 1000 ms. */
  recheckMs?: number;
  /** First retry of a failed scan, doubled at each failure. Default 1000 ms. */
  retryMs?: number;
  /** Longest wait between retries of failed scans. Default 30000 ms. */
  maxRetryMs?: number;
  /**
   * Errors of the directory itself other than "not there" (EACCES, EIO, …),
   * and of files that fail a scan; `retryMs` is when the scan is tried again.
   * Default: ignored.
   */
  onError?: (err: Error, retryMs?: number) => void;
  /** An entry named like a policy file was not read, and why ("expected …, found …; hint"), also in parts; once per entry and reason. */
  onSkip?: (file: string, why: string, refusal: SkipReason) => void;
  /** How the directory is read; tests inject faults here. Default: the file system. */
  io?: PolicyDirIo;
}

/** Why an entry was not read: what a policy file must be, what it is, how to fix it. */
export interface SkipReason {
  expected: string;
  found: string;
  hint?: string;
}

export interface PolicyDirIo {
  readdir(dir: string): Promise<string[]>;
  read(file: string): Promise<PolicyFileRead>;
}

const FS_IO: PolicyDirIo = { readdir: (dir) => fsp.readdir(dir), read: (file) => readPolicyFile(file) };

/** Errors that say nothing about the file, only about this moment: the scan is retried. */
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EINTR', 'EBUSY', 'EIO']);

export class PolicyDirectoryWatcher {
  /** Resolves when the first scan is done and its add events were emitted. */
  readonly ready: Promise<void>;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly onError: (err: Error, retryMs?: number) => void;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly io: PolicyDirIo;
  /** The wait before the next retry; 0 after a scan that succeeded. */
  private retryDelay = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly onSkip: (file: string, why: string, refusal: SkipReason) => void;
  /** Content hash of each file seen, by path. */
  private readonly known = new Map<string, string>();
  /** Entries skipped, and why, as last reported. */
  private readonly skipped = new Map<string, SkipReason>();
  private watcher: fs.FSWatcher | undefined;
  private identity: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private firstEventAt = 0;
  private readonly recheck: NodeJS.Timeout;
  private scanning: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly listener: (event: PolicyDirEvent) => void,
    opts: PolicyDirectoryWatcherOptions = {},
  ) {
    this.debounceMs = opts.debounceMs ?? 300;
    this.maxDelayMs = opts.maxDelayMs ?? 2000;
    this.onError = opts.onError ?? (() => undefined);
    this.onSkip = opts.onSkip ?? (() => undefined);
    this.retryMs = opts.retryMs ?? 1000;
    this.maxRetryMs = opts.maxRetryMs ?? 30000;
    this.io = opts.io ?? FS_IO;
    this.recheck = setInterval(() => void this.checkIdentity(), opts.recheckMs ?? 1000);
    this.recheck.unref();
    this.ready = this.checkIdentity(true).then(() => this.scan());
  }

  /** Scans that failed and were retried (tally_policy_scan_failures_total). */
  get scanFailures(): number {
    return this.failures;
  }

  /** Scans now (SIGHUP): changes are reported as if fs.watch had seen them. */
  rescan(): Promise<void> {
    return this.scan();
  }

  /** Stops watching; idempotent. Events of a scan under way are not delivered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.recheck);
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** (Re)watches the directory when it is new, replaced or back; when it is gone, forgets its files. */
  private async checkIdentity(initial = false): Promise<void> {
    let id: string | undefined;
    try {
      const st = await fsp.stat(this.dir);
      id = st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
    } catch (e) {
      if (!isMissing(e)) this.onError(e as Error);
    }
    if (this.closed || id === this.identity) return;
    this.identity = id;
    this.watcher?.close();
    this.watcher = undefined;
    if (id !== undefined) {
      try {
        this.watcher = fs.watch(this.dir, { persistent: false }, () => this.schedule());
        // The directory vanishing under the watch surfaces as an error; the identity check takes over.
        this.watcher.on('error', () => this.schedule());
      } catch (e) {
        if (!isMissing(e)) this.onError(e as Error);
      }
    }
    // Something changed about the directory itself: its contents may have too.
    if (!initial) this.schedule(0);
  }

  /** A trailing debounce, bounded so that a steady stream of events still gets scans. */
  private schedule(delay = this.debounceMs): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.timer) this.firstEventAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(delay, this.firstEventAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.scan();
    }, wait);
    this.timer.unref();
  }

  /** One scan at a time; a request during a scan runs one more afterwards. */
  private scan(): Promise<void> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce().then((ok) => this.scanned(ok)).finally(() => {
      this.scanning = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.scan();
      }
    });
    return this.scanning;
  }

  /** After a scan: a failed one is counted and tried again later, each time later, up to maxRetryMs. */
  private scanned(ok: boolean): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (ok || this.closed) {
      this.retryDelay = 0;
      return;
    }
    this.failures++;
    this.retryDelay = this.nextRetryDelay();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.scan();
    }, this.retryDelay);
    this.retryTimer.unref();
  }

  /** False when the scan failed for a reason that passes, and should be tried again. */
  private async scanOnce(): Promise<boolean> {
    const now = new Map<string, { hash: string; bytes: Buffer }>();
    let names: string[] = [];
    try {
      names = (await this.io.readdir(this.dir)).filter(isPolicyFileName).sort();
    } catch (e) {
      if (!isMissing(e)) {
        this.failed(e as Error);
        return false; // Unreadable is not empty: keep what is known rather than report removals.
      }
    }
    const skipped = new Map<string, SkipReason>();
    /** Files a transient error kept from being read: as they were. */
    const kept = new Set<string>();
    for (const name of names) {
      const file = path.join(this.dir, name);
      try {
        // Through symlinks: a ConfigMap's files are symlinks to regular files.
        const read = await this.io.read(file);
        if ('bytes' in read) now.set(file, { bytes: read.bytes, hash: createHash('sha256').update(read.bytes).digest('hex') });
        else skipped.set(file, read.refused);
      } catch (e) {
        if (TRANSIENT.has((e as NodeJS.ErrnoException).code ?? '')) {
          kept.add(file);
          if (this.skipped.has(file)) skipped.set(file, this.skipped.get(file)!);
          this.failed(e as Error);
          continue;
        }
        const why = await unreadable(file, e as NodeJS.ErrnoException);
        if (why) skipped.set(file, why);
      }
    }
    if (this.closed) return true;
    for (const [file, cur] of now) {
      const prev = this.known.get(file);
      if (prev === cur.hash) continue;
      this.known.set(file, cur.hash);
      this.emit({ type: prev === undefined ? 'add' : 'change', file, bytes: cur.bytes });
    }
    for (const file of [...this.known.keys()]) {
      if (now.has(file) || kept.has(file)) continue;
      this.known.delete(file);
      this.emit({ type: 'remove', file });
    }
    // After the removals: a policy file that became unreadable is removed, then reported.
    for (const [file, reason] of skipped) {
      const why = describeSkip(reason);
      if (this.skipped.has(file) && describeSkip(this.skipped.get(file)!) === why) continue;
      this.skipped.set(file, reason);
      this.onSkip(file, why, reason);
    }
    for (const file of [...this.skipped.keys()]) {
      if (skipped.has(file)) continue;
      this.skipped.delete(file);
      // Gone, rather than readable now (an add above).
      if (!now.has(file)) this.emit({ type: 'remove', file });
    }
    return kept.size === 0;
  }

  /** Reports what failed a scan, with when it will be tried again. */
  private failed(e: Error): void {
    this.onError(e, this.nextRetryDelay());
  }

  private nextRetryDelay(): number {
    return Math.min(this.retryDelay ? this.retryDelay * 2 : this.retryMs, this.maxRetryMs);
  }

  /** A throwing listener must not stop the watcher or the other events. */
  private emit(event: PolicyDirEvent): void {
    try {
      this.listener(event);
    } catch (e) {
      this.onError(e as Error);
    }
  }
}

/** "expected …, found …; hint", as onSkip's `why`. */
function describeSkip(r: SkipReason): string {
  return `expected ${r.expected}, found ${r.found}${r.hint ? `; ${r.hint}` : ''}`;
}

/** Why an entry could not be opened; undefined when it is simply gone (removed since readdir). */
async function unreadable(file: string, e: NodeJS.ErrnoException): Promise<SkipReason | undefined> {
  const expected = 'a readable policy file';
  if (e.code === 'ENOENT') {
    const link = await fsp.lstat(file).then((st) => st.isSymbolicLink(), () => false);
    if (!link) return undefined;
    const target = await fsp.readlink(file).catch(() => '?');
    return { expected, found: `a symlink to ${target}, which does not exist` };
  }
  if (e.code === 'ELOOP') return { expected, found: 'a symlink loop (ELOOP)' };
  return { expected, found: `${e.code ?? 'an error'} (${e.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '')})` };
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
