/**
 * The core object (bpf/core.bpf.c): loaded first, it creates the maps every
 * counting object shares (see kernel-counters.ts) and announces binaries at
 * exec. Every metric itself comes from a policy.
 */
import { bpfObjectPath } from '../util/paths';
import { describeHook, HookSpec, loadObject, LoadedObject } from '../bpf/loader';
import { FilterLabel } from '../labels/label-filter';
import { Logger } from '../util/log';
import { COUNTER_MAP, LABEL_SET_MAP } from './kernel-counters';

export const CORE_OBJECT = 'core';

/** Hooks, each with its programs from most to least preferred attach type. */
export function coreHooks(keyByBinary: boolean): HookSpec[] {
  // The exec hook only serves the binary label.
  return keyByBinary ? [{ hook: 'process_exec', candidates: ['exec_btf', 'exec_raw', 'exec_tp'] }] : [];
}

export interface CoreObjectOptions {
  filter: readonly FilterLabel[];
  counterCapacity: number;
  kernelBtfPath?: string;
  log: Logger;
}

export class CoreObject {
  readonly loaded: LoadedObject;
  private closed = false;

  constructor(opts: CoreObjectOptions) {
    const keyByBinary = opts.filter.includes('binary');
    this.loaded = loadObject({
      objectPath: bpfObjectPath(CORE_OBJECT),
      hooks: coreHooks(keyByBinary),
      constants: { key_by_binary: Buffer.from([keyByBinary ? 1 : 0]) },
      // One mapping per cgroup can never need more room than one entry per cgroup.
      maxEntries: { [COUNTER_MAP]: opts.counterCapacity, [LABEL_SET_MAP]: opts.counterCapacity },
      kernelBtfPath: opts.kernelBtfPath,
    });
    for (const h of this.loaded.hooks) {
      if (h.program) opts.log.info('hook attached', { object: CORE_OBJECT, detail: describeHook(h) });
      else opts.log.error('hook failed', { object: CORE_OBJECT, detail: describeHook(h) });
    }
  }

  /** Detach and free. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loaded.object.close();
  }
}
