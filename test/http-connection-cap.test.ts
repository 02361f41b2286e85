/**
 * The connection cap's sizing (src/exporters/connection-limits.ts), table by
 * table, and the flags that set it. The agent under real pressure is
 * test/http-pressure.test.ts.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fdReserve, nextConnectionCap, openFileLimit } from '../src/exporters/connection-limits';
import { parseFlags, UsageError } from '../src/cli/args';

describe('the connection cap', () => {
  it('keeps a reserve of a quarter of the fd limit, at least 64', () => {
    assert.deepEqual([100, 256, 1024, 1_048_576].map(fdReserve), [64, 64, 256, 262_144]);
  });

  it('is --web.max-connections when the fd limit leaves room for it, else what the limit leaves beyond the reserve, at least 1', () => {
    const cap = (configured: number, fdLimit: number | undefined, agentFds: number): number => nextConnectionCap({ configured, fdLimit, agentFds, current: undefined });
    assert.equal(cap(64, 1_048_576, 300), 64);
    assert.equal(cap(64, undefined, 300), 64);
    // 1024 - 150 held - 256 reserve.
    assert.equal(cap(10_000, 1024, 150), 618);
    assert.equal(cap(64, 1024, 150), 64);
    // Nothing left beyond the reserve: one connection still, so a scrape can get through.
    assert.equal(cap(64, 256, 250), 1);
  });

  it('moves only when the fds left free have moved by more than half a reserve', () => {
    // limit 1024, reserve 256; sized at 618 with 150 fds held (free beyond it: 256).
    const next = (agentFds: number, current = 618): number => nextConnectionCap({ configured: 10_000, fdLimit: 1024, agentFds, current });
    assert.equal(next(150), 618);
    assert.equal(next(150 + 128), 618, 'half the reserve used: still the same');
    assert.equal(next(150 + 129), 618 - 129, 'more than half used: shrinks to leave the whole reserve');
    assert.equal(next(150 - 128), 618, 'half a reserve freed: still the same');
    assert.equal(next(150 - 129), 618 + 129, 'more freed: grows');
    assert.equal(nextConnectionCap({ configured: 64, fdLimit: 1024, agentFds: 10, current: 64 }), 64, 'never past --web.max-connections');
  });

  it('reads the soft limit from /proc/self/limits; unlimited or unreadable is no limit', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-limits-'));
    try {
      const file = path.join(dir, 'limits');
      fs.writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n');
      assert.equal(openFileLimit(file), 1024);
      fs.writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
      assert.equal(openFileLimit(file), undefined);
      assert.equal(openFileLimit(path.join(dir, 'none')), undefined);
      assert.ok((openFileLimit() ?? 0) > 0, 'this process has a limit');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the connection flags', () => {
  const run = (...argv: string[]) => {
    const p = parseFlags(argv, {});
    assert.equal(p.kind, 'run');
    return p.kind === 'run' ? p.config.httpLimits : undefined;
  };

  it('default to 64 connections, 5 s for headers and 10 s idle', () => {
    assert.deepEqual(run(), { maxConnections: 64, headerTimeoutMs: 5000, idleTimeoutMs: 10000 });
    assert.deepEqual(run('--web.max-connections', '3', '--web.read-header-timeout', '1m', '--web.idle-timeout', '500ms'), {
      maxConnections: 3,
      headerTimeoutMs: 60000,
      idleTimeoutMs: 500,
    });
  });

  it('refuse what is no cap or no timeout, in one line', () => {
    const refuse = (argv: string[], message: string): void => assert.throws(() => parseFlags(argv, {}), (e: Error) => e instanceof UsageError && e.message === message);
    refuse(['--web.max-connections', '0'], '--web.max-connections "0" must be a whole number from 1 to 65536');
    refuse(['--web.read-header-timeout', '0s'], '--web.read-header-timeout "0s" must be from 100ms to 1h');
    refuse(['--web.idle-timeout', '2h'], '--web.idle-timeout "2h" must be from 100ms to 1h');
    refuse(['--web.idle-timeout', 'soon'], '--web.idle-timeout "soon" is not a duration; write it like 30s, 1m or 1m30s (units: ms, s, m, h)');
  });
});
