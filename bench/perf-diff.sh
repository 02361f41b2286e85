#!/usr/bin/env bash
# Where a policy's per-event cost goes: perf samples of one CPU running a
# loop, without the agent and with it, per symbol, as nanoseconds per call.
#   bash bench/perf-diff.sh [agent flags...]   (default: --builtin-policies tcp-bytes)
#   LOOP=write bash bench/perf-diff.sh --builtin-policies file-writes
# LOOP=send (default): sendloop, sender and sink pinned to the CPU;
# LOOP=write: syscallloop writing 64 bytes to a file on tmpfs.
# Needs perf; run after npm run build.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
LOOP=${LOOP:-send}
FLAGS=("$@")
[ ${#FLAGS[@]} -gt 0 ] || FLAGS=(--builtin-policies tcp-bytes --metrics-label-filter workload --bpf-stats off)
tmp=$(mktemp -d)
agent=
cleanup() { [ -n "$agent" ] && kill "$agent" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp" "/dev/shm/tally-perf-writes.$$"; }
trap cleanup EXIT

record() { # $1: output
  if [ "$LOOP" = write ]; then
    perf record -q -C 1 -o "$1" -- taskset -c 1 build/bench/syscallloop write "/dev/shm/tally-perf-writes.$$" "$N" 64 >/dev/null 2>&1
    return
  fi
  coproc SINK { taskset -c 1 build/bench/sendloop sink; }
  local sink=$SINK_PID
  read -r -u "${SINK[0]}" port
  perf record -q -C 1 -o "$1" -- taskset -c 1 build/bench/sendloop send "$port" "$N" 64 >/dev/null 2>&1
  wait "$sink" 2>/dev/null || true
}

record "$tmp/none.data"
node dist/src/cli/main.js --metrics-server 127.0.0.1:0 "${FLAGS[@]}" 2>"$tmp/agent.log" &
agent=$!
for _ in $(seq 100); do grep -q '"agent started"\|msg="agent started"' "$tmp/agent.log" && break; sleep 0.2; done
record "$tmp/agent.data"
kill "$agent"; wait "$agent" 2>/dev/null || true; agent=

python3 - "$tmp" "$N" <<'PY'
import re, subprocess, sys
tmp, n = sys.argv[1], int(sys.argv[2])
def load(name):
    out = subprocess.run(['perf', 'report', '-i', f'{tmp}/{name}.data', '--no-children', '--sort', 'sym', '--stdio', '-F', 'sample,sym'],
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r'\s+(\d+)\s+\[.\]\s+(\S+)', line)
        if m: d[m.group(2)] = d.get(m.group(2), 0) + int(m.group(1))
    return d
freq = 4000  # perf's default sampling rate: one sample is 250 µs of CPU
a, b = load('none'), load('agent')
rows = sorted(((b.get(s, 0) - a.get(s, 0), s) for s in set(a) | set(b)), reverse=True)
ns = lambda samples: samples * 1e9 / freq / n
print(f'added per call: {ns(sum(b.values()) - sum(a.values())):.0f} ns')
print('| symbol | added ns per call |\n| --- | ---: |')
for d, s in rows[:20]:
    print(f'| `{s}` | {ns(d):.0f} |')
PY
