/**
 * The core object (bpf/core.bpf.c): loaded first, it creates the maps every
 * counting object shares (see shared-maps.ts). Every metric comes from a
 * policy, whose hooks announce binaries as they count. Its one program
 * remembers exiting threads' executables, for kernels that fire
 * sched_process_exit after the task lost its mm; on a kernel with neither
 * fentry nor kprobes it cannot attach, and there is nothing to remember
 * (this development host's 6.18 fires the tracepoint with the mm in place).
 */
import { bpfObjectPath } from '../util/paths';
import { loadObject, LoadedObject } from '../bpf/loader';
import { COUNTER_MAP, LABEL_SET_MAP } from './shared-maps';

export const CORE_OBJECT = 'core';

export interface CoreObjectOptions {
  counterCapacity: number;
  kernelBtfPath?: string;
  /** Attach the program that remembers exiting threads' executables. */
  rememberExiting?: boolean;
  /** Maps a previous agent pinned, to share instead of creating them (tally_epoch: docs/restart.md). */
  reuseMaps?: Record<string, number>;
}

export class CoreObject {
  readonly loaded: LoadedObject;
  private closed = false;

  constructor(opts: CoreObjectOptions) {
    this.loaded = loadObject({
      objectPath: bpfObjectPath(CORE_OBJECT),
      hooks: opts.rememberExiting ? [{ hook: 'exit_mm_release', candidates: ['exiting_fentry', 'exiting_kprobe'] }] : [],
      // One mapping per cgroup can never need more room than one entry per cgroup.
      maxEntries: { [COUNTER_MAP]: opts.counterCapacity, [LABEL_SET_MAP]: opts.counterCapacity },
      kernelBtfPath: opts.kernelBtfPath,
      reuseMaps: opts.reuseMaps,
    });
  }

  /** Detach and free. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loaded.object.close();
  }
}
