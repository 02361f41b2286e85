/**
 * Executable paths, announced by the kernel: once per binary, with the path
 * the process sees, and again after user space asks the kernel to forget.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { native, NativeRingBuffer } from '../src/native/addon';
import { loadObject, LoadedObject } from '../src/bpf/loader';
import { coreHooks, CORE_OBJECT } from '../src/collectors/core-object';
import { seedOverflowKey } from '../src/bpf/counter-map';
import { decodeBinaryEvent, BinaryEvent } from '../src/bpf/layout';
import { forgetAnnounced } from '../src/bpf/binary-announcements';
import { bpfObjectPath } from '../src/util/paths';
import { TestCgroup } from './helpers/cgroup';
import { transfer } from './helpers/tcp-traffic';
import { waitFor } from './helpers/cleanup';

const PYTHON = fs.realpathSync('/usr/bin/python3');

describe('binary announcements', () => {
  let loaded: LoadedObject;
  let ring: NativeRingBuffer;
  const events: BinaryEvent[] = [];
  let sender: TestCgroup;
  let receiver: TestCgroup;

  before(() => {
    loaded = loadObject({
      objectPath: bpfObjectPath(CORE_OBJECT),
      hooks: coreHooks(true),
      beforeAttach: (obj) => seedOverflowKey(obj.mapFd('tally_overflow'), 0),
    });
    ring = new (native().RingBuffer)(loaded.object.mapFd('tally_binary_events'), (records) => {
      for (const r of records) events.push(decodeBinaryEvent(r));
    });
    sender = TestCgroup.create('sender');
    receiver = TestCgroup.create('receiver');
  });
  after(() => {
    sender?.destroy();
    receiver?.destroy();
    ring?.close();
    loaded?.object.close();
  });

  const announcementsOf = (path: string): BinaryEvent[] => events.filter((e) => e.path === path);

  it('announces a binary once, however often it runs', async () => {
    await transfer(sender, receiver, 1000, 'python3');
    await transfer(sender, receiver, 1000, 'python3');
    await waitFor(() => announcementsOf(PYTHON).length > 0, 'python3 to be announced');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(announcementsOf(PYTHON).length, 1);
  });

  it('announces it again after forgetAnnounced, at its next event', async () => {
    const [first] = announcementsOf(PYTHON);
    forgetAnnounced(loaded.object, [first.binaryId]);
    await transfer(sender, receiver, 1000, 'python3');
    await waitFor(() => announcementsOf(PYTHON).length === 2, 'python3 to be announced again');
    assert.equal(announcementsOf(PYTHON)[1].binaryId, first.binaryId, 'same executable, same id');
  });
});
