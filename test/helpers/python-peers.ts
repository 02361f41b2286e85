/**
 * Two small python3 peers for tests and benchmarks that need many cgroups:
 *   HOPPER moves itself into each cgroup it reads from stdin (a line
 *          "<cgroup.procs path> <bytes>"), opens a socket there (a socket
 *          belongs to the cgroup it was created in) and sends those bytes;
 *   SINK   accepts any number of connections and drains them;
 *   SIZED_SENDER connects to a port and makes one send of each size it is given;
 *   SLEEPER sleeps each duration it is given (seconds) and prints how long
 *          each took, measured around the call;
 *   STREAMER sends 1000-byte chunks to a port for a given number of seconds,
 *          a millisecond apart, then prints how many bytes it sent.
 */
export const HOPPER = [
  'import socket, sys',
  'port = int(sys.argv[1])',
  'for line in sys.stdin:',
  '    procs, n = line.split()',
  '    with open(procs, "w") as f: f.write("0")',
  '    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"h" * int(n)); s.close()',
  'print("done", flush=True)',
].join('\n');

export const SINK = [
  'import socket, threading',
  'ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1024)',
  'print(ls.getsockname()[1], flush=True)',
  'def drain(c):',
  '    while c.recv(65536): pass',
  'while True:',
  '    c, _ = ls.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()',
].join('\n');

export const STREAMER = [
  'import socket, sys, time',
  'port, seconds = int(sys.argv[1]), float(sys.argv[2])',
  's = socket.create_connection(("127.0.0.1", port)); total = 0; end = time.time() + seconds',
  'while time.time() < end:',
  '    s.sendall(b"s" * 1000); total += 1000; time.sleep(0.001)',
  's.close(); print(total, flush=True)',
].join('\n');

/** argv: PORT SIZE...; each send must go out whole, in one call. */
export const SIZED_SENDER = [
  'import socket, sys',
  's = socket.create_connection(("127.0.0.1", int(sys.argv[1])))',
  'for n in map(int, sys.argv[2:]):',
  '    assert s.send(b"z" * n) == n',
  's.close()',
].join('\n');

/** argv: SECONDS...; prints a JSON list of the nanoseconds each time.sleep took, measured around the call. */
export const SLEEPER = [
  'import json, sys, time',
  'took = []',
  'for d in map(float, sys.argv[1:]):',
  '    t0 = time.perf_counter_ns(); time.sleep(d); took.append(time.perf_counter_ns() - t0)',
  'print(json.dumps(took), flush=True)',
].join('\n');
