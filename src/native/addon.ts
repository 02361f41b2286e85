/**
 * The typed face of native/: the only module that loads the addon. The addon
 * makes syscalls and reports errno and libbpf's log; callers validate inputs
 * before they get here.
 */
import { ADDON_PATH } from '../util/paths';

/** A program as libbpf sees it in an opened object. */
export interface NativeProgram {
  name: string;
  section: string;
  type: string;
  attachType: string;
  autoload: boolean;
  fd: number;
}

export interface NativeMap {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  internal: boolean;
  fd: number;
}

export interface NativeProgramInfo {
  id: number;
  runTimeNs: number;
  runCount: number;
  recursionMisses: number;
}

/** What attach() attaches a program to, when its section name does not say. */
export type AttachTarget =
  | { kind: 'kprobe'; func: string; retprobe: boolean }
  | { kind: 'uprobe'; path: string; func: string; retprobe: boolean }
  | { kind: 'usdt'; path: string; provider: string; name: string }
  | { kind: 'tracepoint'; category: string; name: string }
  | { kind: 'raw_tp'; name: string }
  /** A cgroup v2 directory: cgroup_skb programs, by link (BPF_F_ALLOW_MULTI, beside others). */
  | { kind: 'cgroup'; path: string };

export interface NativeBpfObject {
  programs(): NativeProgram[];
  maps(): NativeMap[];
  setAutoload(program: string, on: boolean): void;
  setMaxEntries(map: string, n: number): void;
  setConstant(name: string, bytes: Buffer): void;
  load(): void;
  /**
   * load() on a libuv worker thread: the event loop keeps running while the
   * kernel verifies. Every other method throws until the promise settles;
   * load one object at a time (libbpf's feature cache is not locked).
   * `attachTargets` (program -> kernel function or tracepoint, as
   * setAttachTarget) are set on the worker too: each parses the kernel's BTF.
   */
  loadAsync(attachTargets?: Record<string, string>): Promise<void>;
  /**
   * Once loaded and attached: frees libbpf's copy of the object (megabytes:
   * every program's instructions, the object's BTF); the links and programs
   * stay in the kernel until close(). Afterwards only programInfo() and
   * close() work.
   */
  freeObject(): void;
  attach(program: string, target?: AttachTarget): void;
  /** The fds of the links attach() made, to pin them; they stay the object's. */
  linkFds(): number[];
  /** Before load: use an existing map (by fd) instead of creating this one. */
  reuseMap(map: string, fd: number): void;
  /** Before load: the kernel function of an fentry/fexit program. */
  setAttachTarget(program: string, func: string): void;
  mapFd(map: string): number;
  programInfo(program: string): NativeProgramInfo | null;
  /** A loaded program's fd, owned by the object (valid until close()). */
  programFd(program: string): number;
  close(): void;
}

export interface MapInfo {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  /** Bytes per value as read from user space: all CPUs for per-CPU maps. */
  valueStride: number;
  maxEntries: number;
  perCpu: boolean;
}

export interface MapDump {
  keys: Buffer;
  values: Buffer;
  count: number;
  keySize: number;
  valueStride: number;
  /** False when the kernel lacked batch support and keys were walked one by one. */
  batched: boolean;
}

export interface NativeRingBuffer {
  close(): void;
  /** Records delivered and dropped (JavaScript's queue full); failedErrno != 0 if the consumer thread stopped on an error. */
  stats(): { delivered: number; dropped: number; failedErrno: number };
}

/** Offsets and constants of bpf/tally_types.h, as compiled into the addon. */
export interface NativeLayout {
  policy: Record<string, number>;
  /** bpf/policy.h's caps and enum values, by their C names. */
  policyConstants: Record<string, number>;
  counterKey: { size: number; cgroup_id: number; binary_id: number; labels: number; metric: number; flags: number; bucket: number };
  binaryEvent: { size: number; binary_id: number; path_len: number; truncated: number; path: number };
  cgroupEvent: { size: number; cgroup_id: number; path: number };
  cgroupMapping: { size: number; label_set: number; namespace_id: number };
  labelSetCache: { size: number; generation: number };
  fastEntry: { size: number; key: number; check: number };
  peerKey: { size: number; prefixlen: number; addr: number };
  constants: Record<string, number | bigint>;
  /** bpf/chain.h: slots of the chain maps, hook programs per chain. */
  chain: { slots: number; length: number };
}

/** Errors thrown by the addon carry the kernel's answer. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  log: string[];
}

export interface Addon {
  libbpfVersion: string;
  numPossibleCpus(): number;
  /** Turns on the kernel's BPF run-time statistics until the returned fd is closed (closeFd). */
  enableBpfStats(): number;
  BpfObject: {
    new (path: string, options?: { kernelBtfPath?: string }): NativeBpfObject;
    /** The constructor's open (ELF, BTF, every program's instructions: 10-40 ms for the policy object) on a worker thread. */
    openAsync(path: string, options?: { kernelBtfPath?: string }): Promise<NativeBpfObject>;
  };
  RingBuffer: new (mapFd: number, onRecords: (records: Buffer[]) => void) => NativeRingBuffer;
  mapInfo(fd: number): MapInfo;
  mapLookupAll(fd: number, options?: { batch?: boolean }): MapDump;
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  /** Pins the map or link behind fd at path, in a bpffs. */
  objPin(fd: number, path: string): void;
  /** A new fd for what is pinned at path; close it with closeFd. */
  objGet(path: string): number;
  /** A new BPF_MAP_TYPE_ARRAY keyed by __u32 (with `programs`, a BPF_MAP_TYPE_PROG_ARRAY); close it with closeFd. */
  arrayMapCreate(name: string, valueSize: number, maxEntries: number, programs?: boolean): number;
  /** A new fd for an existing map, by id (benchmarks and tools); close it with closeFd. */
  mapFdById(id: number): number;
  closeFd(fd: number): void;
  /** Reads and deletes one entry atomically; null if absent. */
  mapLookupAndDelete(fd: number, key: Buffer): Buffer | null;
  cgroupPath(mountDir: string, id: bigint): string | null;
  /** Arguments of a raw tracepoint or kernel function per the kernel's BTF; -1 when it has none by that name. */
  btfArity(kind: 'tracepoint' | 'function', name: string, btfPath?: string): number;
  layout: NativeLayout;
  /** execv(path, argv): replaces the process, same pid; returns only by throwing (errno). */
  reexec(path: string, argv: string[]): never;
  /** malloc_trim(0): gives the C heap's free pages back to the kernel (libbpf frees megabytes per object); true if any were. */
  mallocTrim(): boolean;
  /** glibc's mallinfo2 over all arenas: bytes allocated now (including mmapped blocks), and bytes free but kept. */
  mallocStats(): { inUse: number; free: number };
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number';
}

let addon: Addon | undefined;

/** Loads the addon once. Throws a readable error when it has not been built. */
export function native(): Addon {
  if (!addon) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(ADDON_PATH) as Addon;
    } catch (e) {
      throw new Error(`cannot load the native addon at ${ADDON_PATH} (${(e as Error).message}); run \`npm run build\``);
    }
  }
  return addon;
}

/** BPF map update flags (include/uapi/linux/bpf.h). */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
