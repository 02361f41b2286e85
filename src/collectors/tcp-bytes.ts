/**
 * TCP bytes sent and received (bpf/tcp_bytes.bpf.c). Its object is loaded
 * first and creates the maps every counting object shares (see
 * kernel-counters.ts), which then reads and labels its counters.
 */
import { bpfObjectPath } from '../util/paths';
import { describeHook, HookSpec, loadObject, LoadedObject } from '../bpf/loader';
import { TcpBytesMetric } from '../bpf/layout';
import { FilterLabel } from '../labels/label-filter';
import { TCP_RECEIVED_BYTES, TCP_SENT_BYTES } from '../metrics/catalog';
import { Logger } from '../util/log';
import { COUNTER_MAP, CounterMetric, LABEL_SET_MAP } from './kernel-counters';

export const TCP_BYTES_OBJECT = 'tcp_bytes';

/** Hooks, each with its programs from most to least preferred attach type. */
export function tcpBytesHooks(keyByBinary: boolean): HookSpec[] {
  const hooks: HookSpec[] = [
    // The tracepoints first: as cheap as fentry through tp_btf, and complete
    // (kTLS, MPTCP, splice). The TCP functions serve kernels before 6.3.
    { hook: 'tcp_send', candidates: ['tcp_send_btf', 'tcp_send_raw', 'tcp_send_fexit', 'tcp_send_kprobe', 'tcp_send_tp'] },
    { hook: 'tcp_receive', candidates: ['tcp_recv_btf', 'tcp_recv_raw', 'tcp_recv_fexit', 'tcp_recv_kprobe', 'tcp_recv_tp'] },
  ];
  // The exec hook only serves the binary label.
  if (keyByBinary) hooks.push({ hook: 'process_exec', candidates: ['exec_btf', 'exec_raw', 'exec_tp'] });
  return hooks;
}

export interface TcpBytesOptions {
  filter: readonly FilterLabel[];
  counterCapacity: number;
  kernelBtfPath?: string;
  log: Logger;
}

export class TcpBytes {
  readonly loaded: LoadedObject;
  private closed = false;

  constructor(opts: TcpBytesOptions) {
    const keyByBinary = opts.filter.includes('binary');
    const keyByCgroup = opts.filter.some((l) => l !== 'binary');
    this.loaded = loadObject({
      objectPath: bpfObjectPath(TCP_BYTES_OBJECT),
      hooks: tcpBytesHooks(keyByBinary),
      constants: {
        key_by_binary: Buffer.from([keyByBinary ? 1 : 0]),
        key_by_cgroup: Buffer.from([keyByCgroup ? 1 : 0]),
      },
      // One mapping per cgroup can never need more room than one entry per cgroup.
      maxEntries: { [COUNTER_MAP]: opts.counterCapacity, [LABEL_SET_MAP]: opts.counterCapacity },
      kernelBtfPath: opts.kernelBtfPath,
    });
    for (const h of this.loaded.hooks) {
      if (h.program) opts.log.info('hook attached', { object: TCP_BYTES_OBJECT, detail: describeHook(h) });
      else opts.log.error('hook failed', { object: TCP_BYTES_OBJECT, detail: describeHook(h) });
    }
  }

  /** The metrics it counts, by their ids in bpf/tcp_bytes.h. */
  metrics(): CounterMetric[] {
    return [
      { id: TcpBytesMetric.sent, name: TCP_SENT_BYTES.name, help: TCP_SENT_BYTES.help, type: 'counter' },
      { id: TcpBytesMetric.received, name: TCP_RECEIVED_BYTES.name, help: TCP_RECEIVED_BYTES.help, type: 'counter' },
    ];
  }

  /** True when every hook runs a program. */
  get fullyAttached(): boolean {
    return this.loaded.hooks.every((h) => h.program !== undefined);
  }

  /** Detach and free. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loaded.object.close();
  }
}
