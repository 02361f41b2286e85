/**
 * Executable paths, announced by the kernel: once per binary, by the first
 * counted event that carries it, with the path the process sees, and again
 * after user space asks the kernel to forget.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { native, NativeRingBuffer } from '../src/native/addon';
import { LoadedObject } from '../src/bpf/loader';
import { decodeBinaryEvent, BinaryEvent } from '../src/bpf/layout';
import { forgetAnnounced } from '../src/bpf/binary-announcements';
import { loadPolicyHook } from '../src/engine/hook-loader';
import { probeKernel } from '../src/engine/kernel-features';
import { loadSyscalls } from '../src/engine/syscalls';
import { loadPolicyText } from '../src/policy';
import { WIDEST_LABEL_FILTER } from '../src/labels/label-filter';
import { waitFor } from './helpers/cleanup';

const PYTHON = fs.realpathSync('/usr/bin/python3');

/* One hook that counts execs: its event is the first to carry a new binary. */
const EXECS = `
apiVersion: tally.dev/v1alpha1
kind: MetricsPolicy
metadata:
  name: announce-test
spec:
  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    raw: true
    metrics:
    - name: test_announce_execs_total
      help: Execs.
      type: counter
`;

describe('binary announcements', () => {
  let loaded: LoadedObject | undefined;
  let ring: NativeRingBuffer;
  const events: BinaryEvent[] = [];

  before(async () => {
    const [policy] = loadPolicyText(EXECS, 'announce-test.yaml').policies;
    const { result, loaded: l } = await loadPolicyHook(
      policy.hooks[0],
      { features: probeKernel(), syscalls: loadSyscalls(), metricId: () => 16 },
      { filter: WIDEST_LABEL_FILTER, keepObject: true },
    );
    assert.ok(l, `the exec hook attaches: ${JSON.stringify(result.refused)}`);
    loaded = l;
    ring = new (native().RingBuffer)(l.object.mapFd('tally_binary_events'), (records) => {
      for (const r of records) events.push(decodeBinaryEvent(r));
    });
  });
  after(() => {
    ring?.close();
    loaded?.object.close();
  });

  const announcementsOf = (path: string): BinaryEvent[] => events.filter((e) => e.path === path);
  const runPython = (): void => void execFileSync('/usr/bin/python3', ['-c', 'pass']);

  it('announces a binary once, however often it runs', async () => {
    runPython();
    runPython();
    await waitFor(() => announcementsOf(PYTHON).length > 0, 'python3 to be announced');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(announcementsOf(PYTHON).length, 1);
  });

  it('announces it again after forgetAnnounced, at its next event', async () => {
    const [first] = announcementsOf(PYTHON);
    forgetAnnounced(loaded!.object, [first.binaryId]);
    runPython();
    await waitFor(() => announcementsOf(PYTHON).length === 2, 'python3 to be announced again');
    assert.equal(announcementsOf(PYTHON)[1].binaryId, first.binaryId, 'same executable, same id');
  });
});
