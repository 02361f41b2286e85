#!/usr/bin/env bash
# test-kernels.sh [SERIES...]
#
# The kernel matrix: for each SERIES (default: 5.10 6.1 6.12) boots Debian's
# stock kernel under QEMU (run-guest.sh) and runs guest-suite.sh inside it as
# root, which does
#
#   node dist/src/cli/main.js policy check --load policies/
#   node scripts/run-tests.js <tests>
#
# where <tests> is TALLY_KERNEL_TESTS (space-separated; "all" for the whole
# suite) or else the list in scripts/kernels/suite.txt. Both steps always
# run; a kernel passes when both exit 0. Kernels run one after another (each
# guest uses both host CPUs), a failing kernel does not stop the others, and a
# summary table ends the output. Exit status: 0 when every kernel passed.
#
# The guest uses the host's build (dist/, build/) read-only: run
# scripts/setup.sh first (`npm run test:kernels` does).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

series=("$@")
[ ${#series[@]} -gt 0 ] || series=("${ALL_SERIES[@]}")
for s in "${series[@]}"; do check_series "$s"; done
need_root "the kernel matrix"

[ -f "$ROOT/dist/src/cli/main.js" ] && [ -f "$ROOT/scripts/run-tests.js" ] \
  || die "no build in $ROOT/dist: run 'bash scripts/setup.sh' first (npm run test:kernels does)"

if [ -n "${TALLY_KERNEL_TESTS+x}" ]; then
  tests="$TALLY_KERNEL_TESTS"
else
  tests="$(sed -e 's/#.*//' "$KERNELS_DIR/suite.txt" | xargs)"
fi
[ "$tests" = all ] && tests=""
read -r -a test_args <<< "$tests"

# The guests run under TCG, 10 to 30 times slower than the host: the suite's
# waits stretch by TALLY_TEST_TIME_SCALE (test/helpers/agent-process.ts,
# scripts/run-tests.js), which run-guest.sh passes into the guest, and each
# guest gets an hour unless told otherwise.
export TALLY_TEST_TIME_SCALE="${TALLY_TEST_TIME_SCALE:-10}"
# A test file starts an agent per describe, minutes each under TCG: a file gets an hour.
export TALLY_TEST_FILE_SCALE="${TALLY_TEST_FILE_SCALE:-30}"
export TALLY_KERNEL_TIMEOUT="${TALLY_KERNEL_TIMEOUT:-3600}"

results="$(mktemp -d)"
tetragon_runs=()
field() { sed -n "s/^$2=//p" "$results/$1" 2>/dev/null; }
trap 'rm -rf "$results"' EXIT
overall=0
for s in "${series[@]}"; do
  say "=== kernel $s: policy check, then tests: ${tests:-all} (TALLY_TEST_TIME_SCALE=$TALLY_TEST_TIME_SCALE)"
  rc=0
  TALLY_KERNEL_RESULT="$results/$s" bash "$KERNELS_DIR/run-guest.sh" "$s" -- bash scripts/kernels/guest-suite.sh "${test_args[@]}" || rc=$?
  [ "$rc" = 0 ] || overall=1
  # run-guest.sh may have died before writing a result (e.g. a failed download).
  [ -f "$results/$s" ] || printf 'series=%s\nexit=%s\n' "$s" "$rc" > "$results/$s"
  # Tetragon's examples: the guest's JSON lines, kept per kernel for
  # scripts/kernels/tetragon-table.js.
  if [ "${TALLY_MATRIX_TETRAGON:-0}" = 1 ] && [ -n "$(field "$s" log)" ]; then
    mkdir -p "$CACHE/tetragon"
    out="$CACHE/tetragon/$(field "$s" kernel).jsonl"
    tr -d '\000' < "$(field "$s" log)" | grep -a '^{"file":' > "$out" || true
    say "Tetragon examples on $(field "$s" kernel): $(wc -l < "$out") results in $out"
    tetragon_runs+=("$(field "$s" kernel)=$out")
  fi
done
if [ ${#tetragon_runs[@]} -gt 0 ]; then
  say "to write the table: node scripts/kernels/tetragon-table.js docs/tetragon-examples.md ${tetragon_runs[*]} (add this host's run: $(uname -r)=FILE)"
fi

# --- summary -------------------------------------------------------------------------
echo
printf '%-6s  %-22s  %-16s  %8s  %9s  %8s\n' series kernel result boot command total
for s in "${series[@]}"; do
  rc="$(field "$s" exit)"
  case "$(field "$s" verdict)" in
    timeout) result=TIMEOUT ;;
    lockup) result=LOCKUP ;;
    boot-failure) result="BOOT FAILURE" ;;
    guest-failure) result="GUEST FAILURE" ;;
    *) if [ "$rc" = 0 ]; then result=pass; else result="FAIL (exit $rc)"; fi ;;
  esac
  b="$(field "$s" boot_s)"; c="$(field "$s" command_s)"; t="$(field "$s" total_s)"
  printf '%-6s  %-22s  %-16s  %8s  %9s  %8s\n' "$s" "$(field "$s" kernel)" "$result" \
    "${b:+${b}s}" "${c:+${c}s}" "${t:+${t}s}"
done
for s in "${series[@]}"; do
  [ "$(field "$s" exit)" = 0 ] || echo "console log of $s: $(field "$s" log)"
done
exit "$overall"
