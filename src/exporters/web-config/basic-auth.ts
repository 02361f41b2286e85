/**
 * basic_auth_users checked as the exporter-toolkit checks them: bcrypt, one
 * comparison at a time, the result cached, and an unknown user compared
 * against a fixed hash so its answer takes as long as a known one's.
 *
 * bcrypt is slow on purpose (cost 10 is tens of ms, more in pure JS), and
 * Prometheus sends the same credentials every scrape: the cache makes each
 * scrape after the first cost a SHA-256. It is keyed by a digest of user,
 * hash and password, so it holds no password, and a changed hash in the file
 * misses it.
 */
import * as crypto from 'node:crypto';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';

/** bcrypt of "fakepassword", the toolkit's stand-in for unknown users. */
const UNKNOWN_USER_HASH = '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi';

/** The user and password of an Authorization: Basic header, or undefined. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export class BasicAuth {
  private readonly cache = new LRUCache<string, boolean>({ max: 1024 });
  /** The comparison under way: bcrypt runs one at a time, so a flood of guesses cannot take every CPU cycle. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Whether the header carries a user of `users` and its password. */
  async check(users: ReadonlyMap<string, string>, header: string | undefined): Promise<boolean> {
    const creds = parseBasicAuth(header);
    if (!creds) return false;
    const known = users.get(creds.user);
    const hash = known ?? UNKNOWN_USER_HASH;
    const key = crypto.createHash('sha256').update(`${creds.user}\0${hash}\0${creds.password}`).digest('base64');
    let ok = this.cache.get(key);
    if (ok === undefined) {
      const compared = this.queue.then(() => bcrypt.compare(creds.password, hash));
      this.queue = compared.catch(() => undefined);
      ok = await compared.catch(() => false);
      this.cache.set(key, ok);
    }
    return ok && known !== undefined;
  }

  /** Forgets every cached answer (on a new config). */
  clear(): void {
    this.cache.clear();
  }
}
