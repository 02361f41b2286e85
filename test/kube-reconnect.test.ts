/**
 * Several simulated nodes (tally's real PodWatcher each, as on a node of a
 * DaemonSet) against one test API server that restarts: they must come back
 * spread out, not in step, each within its backoff cap, and after the
 * restart's 410 Gone each must list exactly once and watch on from that
 * list's resourceVersion. Time is scaled down (a 400 ms cap, a 1.5 s
 * outage) so that the test takes seconds; the code is the same.
 *
 * A control group runs the same code with the jitter taken out (every wait
 * at the top of its step, as tally's backoff was before): it comes back in
 * lockstep, which is what the jittered group must not do.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FakeKubeApi, SeenRequest } from './helpers/fake-kube-api';
import { PodWatcher } from '../src/labels/kube/pod-watcher';
import { loadKubeConfig } from '../src/labels/kube/client';
import { Logger } from '../src/util/log';
import { waitFor } from './helpers/cleanup';

const JITTERED = 12;
const LOCKSTEP = 4;
const CAP_MS = 400;
const OUTAGE_MS = 1500;

/** A small seeded generator (mulberry32): each node draws its own repeatable sequence. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Node {
  name: string;
  watcher: PodWatcher;
  log: string[];
  jitter: boolean;
}

/** The most values of xs within any window of this width. */
function densest(xs: number[], width: number): number {
  const s = [...xs].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i] - s[j] >= width) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

function spread(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))];
  return at(0.95) - at(0.05);
}

describe('simulated nodes through an API server restart', () => {
  let api: FakeKubeApi;
  let dir: string;
  const nodes: Node[] = [];
  const during = new Map<string, string>(); // node -> uid of the pod made while the server was down
  const before_ = new Map<string, { connection: number; expired: number; lists: number; refused: number }>();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-kube-reconnect-'));
    api = await new FakeKubeApi().start();
    const kc = (await loadKubeConfig(api.writeKubeconfig(dir)))!;
    for (let i = 0; i < JITTERED + LOCKSTEP; i++) {
      const name = `node-${i}`;
      const jitter = i < JITTERED;
      api.addPod({ uid: randomUUID(), namespace: 'shop', name: `app-${i}`, node: name });
      const log: string[] = [];
      const watcher = new PodWatcher(kc, {
        nodeName: name,
        resyncMs: 10 * 60_000,
        backoff: { initialMs: 25, capMs: CAP_MS, random: jitter ? seeded(i + 1) : () => 0.999 },
      }, new Logger('info', (l) => log.push(l)));
      nodes.push({ name, watcher, log, jitter });
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.watcher.stop()));
    await api?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** This node's list and watch requests since the server came back, in order. */
  const since = (node: string, t: number): SeenRequest[] =>
    api.requests.filter((r) => r.path === '/api/v1/pods' && r.at >= t && r.query.get('fieldSelector') === `spec.nodeName=${node}`);

  it('every node lists and watches, each watch with bookmarks and its own timeout', async () => {
    for (const n of nodes) await n.watcher.start();
    await waitFor(() => api.openWatches === nodes.length, 'every node\'s watch');
    const watches = api.watchRequests();
    assert.equal(watches.length, nodes.length);
    assert.ok(watches.every((q) => q.get('allowWatchBookmarks') === 'true'));
    const timeouts = watches.map((q) => Number(q.get('timeoutSeconds')));
    assert.ok(timeouts.every((t) => t >= 300 && t < 600), `timeouts in [300, 600): ${timeouts}`);
    assert.ok(new Set(timeouts).size > nodes.length / 2, `renewals spread: ${timeouts}`);
  });

  it('after the restart, each node is back within its cap, the jittered ones spread out', async () => {
    for (const n of nodes) {
      const e = n.watcher.stats.errors;
      const refused = n.watcher.requests.samples().find((s) => s.labels.verb === 'watch' && s.labels.code === 'error')?.value ?? 0;
      before_.set(n.name, { connection: e.connection, expired: e.expired, lists: n.watcher.stats.lists, refused });
    }
    // How late this process ran its timers meanwhile: the nodes' waits are late by as much.
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    await api.restart(OUTAGE_MS, () => {
      for (const n of nodes) {
        const uid = randomUUID();
        during.set(n.name, uid);
        api.addPod({ uid, namespace: 'shop', name: `new-${n.name}`, node: n.name });
      }
    });
    const up = api.upAt;
    await waitFor(() => nodes.every((n) => n.watcher.byUid(during.get(n.name)!) !== undefined) && api.openWatches === nodes.length, 'every node to catch up', 10_000);
    lag.disable();
    const slack = 100 + lag.max / 1e6;

    const back = (n: Node): number => since(n.name, up)[0].at - up;
    const jittered = nodes.filter((n) => n.jitter).map(back);
    const lockstep = nodes.filter((n) => !n.jitter).map(back);
    // The slack: a failed attempt, and the longest the event loop was late (two CPUs shared by the whole suite).
    for (const [i, ms] of [...jittered, ...lockstep].entries()) {
      assert.ok(ms <= CAP_MS + slack, `node-${i} came back ${ms.toFixed(0)} ms after the server, past its cap (+ ${slack.toFixed(0)} ms slack)`);
    }
    assert.ok(spread(jittered) >= CAP_MS / 4, `jittered nodes: p5–p95 ${spread(jittered).toFixed(0)} ms (${jittered.map((x) => x.toFixed(0))})`);
    assert.ok(densest(jittered, 50) <= JITTERED / 2, `jittered nodes: ${densest(jittered, 50)} in one 50 ms window (${jittered.map((x) => x.toFixed(0))})`);
    // In step but for the event loop's own delays, which spread it as much.
    assert.ok(Math.max(...lockstep) - Math.min(...lockstep) < CAP_MS / 4 + lag.max / 1e6, `the control group comes back in step (${lockstep.map((x) => x.toFixed(0))}; event loop up to ${(lag.max / 1e6).toFixed(0)} ms late)`);
  });

  it('the 410 Gone after the restart makes each node list exactly once, then watch from that list', () => {
    for (const n of nodes) {
      const seq = since(n.name, api.upAt);
      assert.deepEqual(seq.map((r) => (r.query.get('watch') === 'true' ? 'watch' : 'list')), ['watch', 'list', 'watch'], n.name);
      const [gone, list, watch] = seq;
      assert.ok(Number(gone.query.get('resourceVersion')) < Number(list.listRv), 'the first watch asked for history the restart lost');
      assert.equal(watch.query.get('resourceVersion'), list.listRv, `${n.name} watches from its list's resourceVersion`);
      const b = before_.get(n.name)!;
      assert.equal(n.watcher.stats.errors.expired, b.expired + 1, n.name);
      assert.equal(n.watcher.stats.lists, b.lists + 1, n.name);
    }
  });

  it('each node logs the outage once when it starts and once when it ends, with the failed attempts counted', () => {
    for (const n of nodes) {
      const b = before_.get(n.name)!;
      const failed = n.watcher.stats.errors.connection - b.connection;
      const refused = (n.watcher.requests.samples().find((s) => s.labels.verb === 'watch' && s.labels.code === 'error')?.value ?? 0) - b.refused;
      // The watch open when the server went down broke; every later attempt was refused.
      assert.equal(refused, failed - 1, n.name);
      assert.ok(failed >= 3, `${n.name} retried (${failed})`);
      const warnings = n.log.filter((l) => l.includes('kubernetes pod watch: the API server request failed'));
      const ends = n.log.filter((l) => l.includes('kubernetes pod watch: the API server answers again'));
      assert.equal(warnings.length, 1, `${n.name}:\n${n.log.join('\n')}`);
      assert.equal(ends.length, 1, n.name);
      assert.match(ends[0], new RegExp(` failed_attempts=${failed} outage_seconds=`));
    }
  });
});
