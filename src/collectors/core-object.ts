/**
 * The core object (bpf/core.bpf.c): loaded first, it creates the maps every
 * counting object shares (see shared-maps.ts). It runs no program: every
 * metric comes from a policy, whose hooks announce binaries as they count.
 */
import { bpfObjectPath } from '../util/paths';
import { loadObject, LoadedObject } from '../bpf/loader';
import { COUNTER_MAP, LABEL_SET_MAP } from './shared-maps';

export const CORE_OBJECT = 'core';

export interface CoreObjectOptions {
  counterCapacity: number;
  kernelBtfPath?: string;
}

export class CoreObject {
  readonly loaded: LoadedObject;
  private closed = false;

  constructor(opts: CoreObjectOptions) {
    this.loaded = loadObject({
      objectPath: bpfObjectPath(CORE_OBJECT),
      hooks: [],
      // One mapping per cgroup can never need more room than one entry per cgroup.
      maxEntries: { [COUNTER_MAP]: opts.counterCapacity, [LABEL_SET_MAP]: opts.counterCapacity },
      kernelBtfPath: opts.kernelBtfPath,
    });
  }

  /** Detach and free. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loaded.object.close();
  }
}
