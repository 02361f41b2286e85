/**
 * How long a pod cgroup waits for its pod, and where a removed cgroup is
 * found: the Labeler's decisions on their own, with the clock and the
 * API server's answers under the test's control. (The agent-level tests
 * cannot time the grace period exactly: every suite's pod cgroups on this
 * host are unknown pods to every other suite's agent.)
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CgroupPaths } from '../src/labels/cgroup-paths';
import { Labeler, REMOVAL_REPORT_GRACE_MS, UNRESOLVED_POD_LABELS } from '../src/labels/labeler';
import { PodWatcher } from '../src/labels/kube/pod-watcher';

const uid = randomUUID();
const POD_PATH = `/kubepods/besteffort/pod${uid}/0123abcd`;

/** The part of PodWatcher the Labeler reads: a watch connected `connectedAgoMs` ago that knows no pod. */
function emptyWatch(connectedAgoMs: number | undefined): PodWatcher {
  return { byUid: () => undefined, connectedSince: connectedAgoMs === undefined ? undefined : Date.now() - connectedAgoMs } as unknown as PodWatcher;
}

describe('Labeler', () => {
  it('holds a pod cgroup whose pod is unknown for the grace period, then labels it unresolved-pod', () => {
    const l = new Labeler(new CgroupPaths('/unused', 16, () => POD_PATH), emptyWatch(60_000), { needsContainer: false, graceMs: 10_000 });
    assert.deepEqual(l.resolve(1n), { values: {}, final: false });
    assert.deepEqual(l.resolve(1n, Date.now() - 9_000), { values: {}, final: false });
    assert.deepEqual(l.resolve(1n, Date.now() - 10_000), { values: UNRESOLVED_POD_LABELS, final: true });
    assert.deepEqual(l.resolve(1n, undefined, true), { values: UNRESOLVED_POD_LABELS, final: true }, 'a removed cgroup stops waiting');
  });

  it('counts the grace period from when the watch connected, and not at all while it is down', () => {
    const paths = new CgroupPaths('/unused', 16, () => POD_PATH);
    const recent = new Labeler(paths, emptyWatch(5_000), { needsContainer: false, graceMs: 10_000 });
    assert.equal(recent.resolve(1n, Date.now() - 60_000).final, false);
    const down = new Labeler(paths, emptyWatch(undefined), { needsContainer: false, graceMs: 10_000 });
    assert.equal(down.resolve(1n, Date.now() - 60_000).final, false);
  });

  it('finds a cgroup removed before its first lookup where the kernel said it was', () => {
    const paths = new CgroupPaths('/unused', 16, () => null);
    assert.equal(paths.path(7n), null);
    paths.removedPath = (id) => (id === 7n ? '/system.slice/cron.service' : undefined);
    // Also after the lookup that found it gone: the removal may be reported later.
    assert.equal(paths.path(7n), '/system.slice/cron.service');
    const l = new Labeler(paths, undefined, { needsContainer: false });
    assert.deepEqual(l.resolve(7n), { values: { workload: 'cron.service' }, final: true });
    assert.equal(paths.path(8n), null);
    // Gone, but its removal not reported yet: the report may still say where it was.
    assert.deepEqual(l.resolve(8n), { values: {}, final: false });
    assert.deepEqual(l.resolve(8n, undefined, true), { values: {}, final: true }, 'unless the caller stops waiting');
    assert.deepEqual(l.resolve(8n, Date.now() - REMOVAL_REPORT_GRACE_MS), { values: {}, final: true }, 'or it waited long enough');
  });
});
