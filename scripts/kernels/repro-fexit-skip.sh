#!/usr/bin/env bash
# repro-fexit-skip.sh: shows that a kernel skips fexit programs for a call
# that sleeps in the traced function while another program is attached to it.
# Run it in a guest of the matrix (tally is not involved; bpftrace counts):
#   bash scripts/kernels/run-guest.sh 6.1 -- bash scripts/kernels/repro-fexit-skip.sh
# It runs twice: a reader blocks in tcp_recvmsg, a writer sends 1,000 bytes,
# then 500. The second time a second bpftrace attaches a kfunc to tcp_recvmsg
# while the reader sleeps. Measured on 6.1.0-57: the kretfunc counted 1,500
# bytes the first time and 500 the second (docs/kernels.md).
set -u
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/reader.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 9911)); s.listen(1)
c, _ = s.accept()
total = 0
while True:
    d = c.recv(65536)
    if not d: break
    total += len(d)
print(total)
PY
cat > "$work/writer.py" <<'PY'
import socket, time, sys
c = socket.create_connection(('127.0.0.1', 9911))
time.sleep(float(sys.argv[1]))  # long enough for the second tool to attach (TCG is slow)
c.sendall(b'x' * 1000); time.sleep(1)
c.sendall(b'y' * 500); time.sleep(1)
c.close()
PY
for mode in alone attach-while-asleep; do
  bpftrace -e 'kretfunc:tcp_recvmsg /comm == "python3" && retval > 0/ { @bytes = sum(retval); }' > "$work/counted" 2>&1 &
  counter=$!
  sleep 25                                   # bpftrace attaches (seconds under TCG)
  python3 "$work/reader.py" > "$work/received" & reader=$!
  sleep 2
  python3 "$work/writer.py" 30 & writer=$!
  sleep 3                                    # the reader now sleeps in tcp_recvmsg
  other=
  if [ $mode = attach-while-asleep ]; then
    bpftrace -e 'kfunc:tcp_recvmsg { @calls = count(); }' > /dev/null 2>&1 & other=$!
  fi
  wait $writer; wait $reader
  [ -n "$other" ] && kill -INT $other && wait $other
  kill -INT $counter; wait $counter
  echo "$mode: received $(cat "$work/received") bytes, fexit counted $(grep -o '@bytes: [0-9]*' "$work/counted" | cut -d' ' -f2)"
done
