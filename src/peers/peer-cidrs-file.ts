/**
 * --metrics-peer-cidrs-file PATH: the peer classes of --metrics-peer-cidrs,
 * kept in a file that can change while the agent runs. A Kubernetes
 * ConfigMap mounted as a volume is such a file: the kubelet swaps a new
 * version in by renaming a directory beside it, so the file's own inode
 * never changes. That is why the watch is on the file's directory, and why a
 * slow poll backs it up (fs.watch can miss events on some filesystems).
 *
 * A new version that cannot be used (unreadable, not a regular file, too
 * big, or invalid at some FILE:LINE) is refused with one log line and
 * counted; the table keeps the classes it has, so counting goes on
 * unchanged. The same version is not reported twice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PeerCidr, PeerCidrsError, parsePeerCidrsText } from './peer-cidrs';
import { decodeUtf8 } from '../policy/utf8';

export const PEER_CIDRS_FILE_FLAG = '--metrics-peer-cidrs-file';

/** A CIDR list of 1,024 items fits in 64 KiB many times over; a bigger file is a mistake (or /dev/zero). */
export const MAX_PEER_CIDRS_FILE_BYTES = 1 << 20;

/** Reads and parses the file now; throws PeerCidrsError saying what is wrong and where. */
export function readPeerCidrsFile(file: string): { cidrs: PeerCidr[]; text: string } {
  const text = readSmallRegularFile(file);
  return { cidrs: parsePeerCidrsText(text, file), text };
}

function readSmallRegularFile(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file); // follows links: a ConfigMap's key is a link into its current version
  } catch (e) {
    throw new PeerCidrsError(`${PEER_CIDRS_FILE_FLAG} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give a readable file of NAME=CIDR lines`);
  }
  if (!st.isFile()) throw new PeerCidrsError(`${PEER_CIDRS_FILE_FLAG} ${file}: not a regular file; give a file of NAME=CIDR lines`);
  if (st.size > MAX_PEER_CIDRS_FILE_BYTES) throw new PeerCidrsError(`${PEER_CIDRS_FILE_FLAG} ${file}: ${st.size} bytes, at most ${MAX_PEER_CIDRS_FILE_BYTES}; merge networks into shorter prefixes`);
  const decoded = decodeUtf8(fs.readFileSync(file));
  if ('invalid' in decoded) throw new PeerCidrsError(`${file}:${decoded.invalid.line}: invalid UTF-8; write the file as plain ASCII NAME=CIDR lines`);
  return decoded.text;
}

export interface PeerCidrsFileEvents {
  /** A new, valid version: write it to the table. Throwing counts as a refusal (the table could not take it). */
  apply: (cidrs: PeerCidr[]) => void;
  /** A new version refused, and why (one line). */
  refuse: (reason: string) => void;
}

/** Watches the file and hands each new valid version to apply(); starts from the version read at start. */
export class PeerCidrsFileWatch {
  private watcher?: fs.FSWatcher;
  private poll?: NodeJS.Timeout;
  private pending?: NodeJS.Timeout;
  /** The text of the last version looked at, applied or refused: the same text again is no news. */
  private seen: string;

  constructor(
    readonly file: string,
    initialText: string,
    private readonly events: PeerCidrsFileEvents,
    private readonly pollMs = 10_000,
  ) {
    this.seen = initialText;
  }

  start(): void {
    try {
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, () => this.schedule());
      // The directory itself removed or unreadable: the poll goes on.
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify left (ENOSPC) or the like: the poll alone notices changes.
    }
    this.poll = setInterval(() => this.check(), this.pollMs);
    this.poll.unref();
  }

  /** A burst of events (a ConfigMap swap is several) is read once, after it settles. */
  private schedule(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.check();
    }, 200);
    this.pending.unref();
  }

  /** Reads the file now (also on SIGHUP); applies a new valid version, reports a new invalid one. */
  check(): void {
    let text: string;
    try {
      text = readSmallRegularFile(this.file);
    } catch (e) {
      // Reported once per distinct failure: a file missing for an hour is one line, not 360.
      this.refuseOnce(`\0${(e as Error).message}`, (e as Error).message);
      return;
    }
    if (text === this.seen) return;
    this.seen = text;
    try {
      this.events.apply(parsePeerCidrsText(text, this.file));
    } catch (e) {
      this.events.refuse((e as Error).message);
    }
  }

  private refuseOnce(key: string, reason: string): void {
    if (this.seen === key) return;
    this.seen = key;
    this.events.refuse(reason);
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.pending) clearTimeout(this.pending);
  }
}
