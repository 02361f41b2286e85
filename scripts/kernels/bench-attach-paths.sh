#!/usr/bin/env bash
# bench-attach-paths.sh [SERIES...]   (default: 6.1 5.10)
#
# BENCHMARKS.md's rows per attach type, measured in the kernel matrix's
# guests: file-writes attached by fentry+fexit, kprobe+kretprobe, the
# syscall's exit tracepoint and raw sys_enter+sys_exit (bench/hook-overhead.ts,
# workload "attach paths"), and uprobe policies on a user function (workload
# "uprobe"), each kernel's tables written between the
# attach-paths markers of BENCHMARKS.md. The guests run under TCG: their
# nanoseconds compare only within one table.
#
#   BENCH_ROUNDS=3 BENCH_CALLS=200000 (the defaults here) size the run; the
#   guest gets them on its command line (run-guest.sh passes on only TALLY_*).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

series=("$@")
[ ${#series[@]} -gt 0 ] || series=(6.1 5.10)
for s in "${series[@]}"; do check_series "$s"; done
need_root "the kernel matrix"
export BENCH_ROUNDS="${BENCH_ROUNDS:-3}" BENCH_CALLS="${BENCH_CALLS:-200000}"
export TALLY_TEST_TIME_SCALE="${TALLY_TEST_TIME_SCALE:-10}"

tables="$(mktemp)"
results="$(mktemp)"
trap 'rm -f "$tables" "$results"' EXIT
for s in "${series[@]}"; do
  say "=== kernel $s: attach paths and uprobes, $BENCH_ROUNDS rounds × $BENCH_CALLS calls"
  TALLY_KERNEL_RESULT="$results" bash "$KERNELS_DIR/run-guest.sh" "$s" -- \
    env BENCH_ROUNDS="$BENCH_ROUNDS" BENCH_CALLS="$BENCH_CALLS" node dist/bench/hook-overhead.js "attach paths" uprobe \
    || die "the bench failed on $s; its console log: $(sed -n 's/^log=//p' "$results")"
  log="$(sed -n 's/^log=//p' "$results")"
  kernel="$(sed -n 's/^kernel=//p' "$results")"
  # Each table, from its heading to the line that sums it up.
  for w in "attach paths" uprobe; do
    table="$(tr -d '\000\r' < "$log" | sed -n "/^#### $w:/,/^Relative to/p")"
    [ -n "$table" ] || die "no $w table in $log"
    printf '%s\n\n' "${table/#\#\#\#\# $w:/#### $w on $kernel (TCG guest):}" >> "$tables"
  done
done

file="$ROOT/BENCHMARKS.md"
node -e '
  const fs = require("fs");
  const [file, tablesFile, cmd] = process.argv.slice(1);
  const md = fs.readFileSync(file, "utf8");
  const block = `Reproduce: \`${cmd}\` (root; about 7 minutes per kernel on a quiet host). ` +
    "Each guest runs under TCG, 10 to 30 times slower than hardware: compare rows within one table, never across tables or with the host tables above.\n\n" +
    fs.readFileSync(tablesFile, "utf8").trimEnd();
  const re = /(<!-- attach-paths:begin -->\n)[\s\S]*?(\n<!-- attach-paths:end -->)/;
  if (!re.test(md)) throw new Error(`${file} lacks the attach-paths markers`);
  fs.writeFileSync(file, md.replace(re, (_, a, b) => a + block + b));
' "$file" "$tables" "bash scripts/kernels/bench-attach-paths.sh ${series[*]}"
say "updated $file"
