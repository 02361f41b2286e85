/**
 * The built-in policies against ground truth the test makes itself: exact
 * exec counts per binary and exit statuses from a cgroup of its own, and
 * exact bytes written to regular files through each write syscall, with
 * nothing counted for pipes, sockets, terminals or pseudo-file systems.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { useScenario } from './helpers/scenario';
import { waitExit } from './helpers/agent-process';
import { select, Series } from './helpers/prom-text';
import { SINK, SIZED_SENDER } from './helpers/python-peers';

const EXECS = 'tally_process_execs_total';
const EXITS = 'tally_process_exits_total';
const WRITTEN = 'tally_file_written_bytes_total';
const DASH = fs.realpathSync('/bin/sh');

const valuesOf = (s: Series[], name: string, workload: string): Array<[Record<string, string>, number]> =>
  select(s, name, { workload })
    .map((x): [Record<string, string>, number] => [x.labels, x.value])
    .sort((a, b) => JSON.stringify(a[0]).localeCompare(JSON.stringify(b[0])));

/** What 5.10 lacks that the default policy build uses: the compat build loads instead (bpf/compat.bpf.h). */
const OLD_HELPERS = 'bpf_loop,bpf_get_current_task_btf';

// Kernels before group_dead was a tracepoint argument (6.12 and older) take the derived path;
// 5.10 also takes the compat build.
for (const old of [
  { what: '', env: {} },
  { what: ' (a sched_process_exit without group_dead)', env: { TALLY_KERNEL_ARITY: 'sched_process_exit=1' } },
  { what: ' (5.10: no group_dead, the compat build)', env: { TALLY_KERNEL_ARITY: 'sched_process_exit=1', TALLY_KERNEL_WITHOUT: OLD_HELPERS } },
]) {
  describe(`built-in policy process${old.what}`, () => {
    const sc = useScenario(['--metrics-label-filter', 'workload,binary'], ['procs'], { env: old.env });

    it('counts execs per binary and exits by status, exactly', async () => {
      const cg = sc.cg.procs;
      // 5 true (ok), 3 false (error), a shell that kills itself (signal), then the outer shell ends with status 0.
      const script = "for i in 1 2 3 4 5; do /usr/bin/true; done; for i in 1 2 3; do /usr/bin/false; done; /bin/sh -c 'kill -9 $$'; exit 0";
      const child = cg.spawn('/bin/sh', ['-c', script]);
      assert.equal((await waitExit(child, 20000)).code, 0);
      const want = (binary: string, n: number): [Record<string, string>, number] => [{ workload: cg.name, binary }, n];
      const s = await sc.agent.scrapeUntil((x) => select(x, EXITS, { workload: cg.name }).length >= 4, 'the exits', 10000);
      assert.deepEqual(valuesOf(s, EXECS, cg.name), [want(DASH, 2), want('/usr/bin/false', 3), want('/usr/bin/true', 5)]);
      assert.deepEqual(valuesOf(s, EXITS, cg.name), [
        [{ workload: cg.name, binary: DASH, status: 'ok' }, 1],
        [{ workload: cg.name, binary: DASH, status: 'signal' }, 1],
        [{ workload: cg.name, binary: '/usr/bin/false', status: 'error' }, 3],
        [{ workload: cg.name, binary: '/usr/bin/true', status: 'ok' }, 5],
      ]);
    });

    it('counts a multi-threaded process once when it exits', async () => {
      const cg = sc.cg.procs;
      // Sixteen threads still running when the process exits: exit_group ends them all at once,
      // each through sched_process_exit, the racy case for a derived group_dead.
      const code = 'import threading,time,os; ts=[threading.Thread(target=time.sleep, args=(100,), daemon=True) for _ in range(16)]; [t.start() for t in ts]; time.sleep(0.2); os._exit(3)';
      const child = cg.spawn('/usr/bin/python3', ['-c', code]);
      assert.equal((await waitExit(child, 20000)).code, 3);
      const python = fs.realpathSync('/usr/bin/python3');
      // Only the last thread's exit counts: its status is the process's.
      const s = await sc.agent.scrapeUntil((x) => select(x, EXITS, { workload: cg.name, binary: python, status: 'error' }).length > 0, 'the python exit', 10000);
      assert.deepEqual(select(s, EXITS, { workload: cg.name, binary: python }).map((x) => [x.labels.status, x.value]), [['error', 1]]);
    });
  });
}

/** Writes `bytes` through one syscall (by libc function), plus writes that must not count. */
const WRITER = [
  'import ctypes, os, socket, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'how, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])',
  'fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)',
  'buf = ctypes.create_string_buffer(b"w" * n, n)',
  'class iovec(ctypes.Structure): _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]',
  'half = n // 2',
  'iov = (iovec * 2)(iovec(ctypes.addressof(buf), half), iovec(ctypes.addressof(buf) + half, n - half))',
  'SYS = {"pwritev": 296, "pwritev2": 328}',
  'if how == "write": r = libc.write(fd, buf, n)',
  'elif how == "pwrite64": r = libc.pwrite64(fd, buf, ctypes.c_size_t(n), ctypes.c_long(5))',
  'elif how == "writev": r = libc.writev(fd, iov, 2)',
  // The raw syscalls: glibc may route one through the other.
  'elif how == "pwritev": r = libc.syscall(SYS["pwritev"], fd, iov, 2, ctypes.c_long(7), ctypes.c_long(0))',
  'elif how == "pwritev2": r = libc.syscall(SYS["pwritev2"], fd, iov, 2, ctypes.c_long(7), ctypes.c_long(0), 0)',
  'assert r == n, (how, r, ctypes.get_errno())',
  'os.close(fd)',
  // Not regular files: a pipe, a socket pair, a pseudo-terminal.
  'r, w = os.pipe(); os.write(w, b"p" * 100); os.writev(w, [b"q" * 10])',
  // Regular files of pseudo-file systems: procfs, and the cgroup's own cgroup.procs.
  'with open("/proc/self/comm", "w") as f: f.write("tally-writer")',
  'cg = open("/proc/self/cgroup").read().strip().split("::")[-1]',
  'mnt = next(l.split()[4] for l in open("/proc/self/mountinfo") if " - cgroup2 " in l)',
  'with open(mnt + cg + "/cgroup.procs", "w") as f: f.write(str(os.getpid()))',
  'a, b = socket.socketpair(); os.write(a.fileno(), b"s" * 200)',
  'm, s = os.openpty(); os.write(s, b"t" * 30)',
  'print("ok", flush=True)',
].join('\n');

// Where the kernel lacks bpf_rdonly_cast (before 6.2) the file's type is read with helpers instead;
// without bpf_loop (before 5.17) the compat build runs.
for (const kernel of ['', 'bpf_rdonly_cast', `bpf_rdonly_cast,${OLD_HELPERS}`]) {
  describe(`built-in policy file-writes${kernel ? ` (a kernel without ${kernel})` : ''}`, () => {
    const SYSCALLS = ['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2'] as const;
    const sc = useScenario(['--metrics-label-filter', 'workload'], [...SYSCALLS], { env: { TALLY_KERNEL_WITHOUT: kernel } });

    it('counts exact bytes through each write syscall, and nothing for pipes, sockets, terminals, procfs or cgroupfs', async () => {
      const dir = fs.mkdtempSync('/tmp/tally-writes-');
      try {
        const bytes = new Map(SYSCALLS.map((s, i) => [s, 1000 + 111 * i]));
        const expected = new Map<string, number>();
        for (const how of SYSCALLS) {
          const child = sc.cg[how].spawn('/usr/bin/python3', ['-c', WRITER, how, `${dir}/${how}`, String(bytes.get(how))]);
          let err = '';
          child.stderr!.on('data', (d) => (err += d));
          assert.equal((await waitExit(child, 20000)).code, 0, err);
          // The spawning shell moved itself into the cgroup by writing "PID\n" to
          // cgroup.procs: a pseudo-file system's file, which does not count.
          expected.set(how, bytes.get(how)!);
        }
        const s = await sc.agent.scrape();
        for (const how of SYSCALLS) {
          assert.deepEqual(select(s, WRITTEN, { workload: sc.cg[how].name }).map((x) => x.value), [expected.get(how)], how);
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('built-in policy tcp-bytes: the send-size histogram', () => {
  const sc = useScenario(['--metrics-label-filter', 'workload'], ['sender', 'receiver']);

  it('puts each send in its log2 bucket (an exact power of two in its own le), with exact _sum and _count', async () => {
    const sink = sc.cg.receiver.spawn('/usr/bin/python3', ['-c', SINK]);
    try {
      const port = await new Promise<string>((r) => sink.stdout!.once('data', (d) => r(String(d).trim())));
      const sizes = [1, 2, 3, 1024, 1024, 1025, 4096, 5000];
      const child = sc.cg.sender.spawn('/usr/bin/python3', ['-c', SIZED_SENDER, port, ...sizes.map(String)]);
      assert.equal((await waitExit(child, 20000)).code, 0);
      const s = await sc.agent.scrape();
      const w = sc.cg.sender.name;
      const bucket = (le: string): number | undefined => select(s, 'tally_tcp_send_size_bytes_bucket', { workload: w, le })[0]?.value;
      // Cumulative: le="1" holds 1; le="2" adds 2; le="4" adds 3; le="1024" the two 1024s; le="2048" 1025; le="4096" 4096; le="8192" 5000.
      assert.deepEqual(['1', '2', '4', '512', '1024', '2048', '4096', '8192', '+Inf'].map(bucket), [1, 2, 3, 3, 5, 6, 7, 8, 8]);
      assert.deepEqual(select(s, 'tally_tcp_send_size_bytes_count', { workload: w }).map((x) => x.value), [sizes.length]);
      assert.deepEqual(select(s, 'tally_tcp_send_size_bytes_sum', { workload: w }).map((x) => x.value), [sizes.reduce((a, b) => a + b, 0)]);
      assert.deepEqual(select(s, 'tally_tcp_sent_bytes_total', { workload: w }).map((x) => x.value), [sizes.reduce((a, b) => a + b, 0)]);
    } finally {
      sink.kill();
    }
  });
});
