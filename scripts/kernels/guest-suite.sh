#!/usr/bin/env bash
# The command test-kernels.sh runs inside each guest (cwd: the repository):
# the policy check, then the given test files. Both steps always run, each is
# announced with its exit status, and the script fails if either failed.
#   guest-suite.sh [TEST...]    (no TEST: the whole suite)
set -uo pipefail

step() {
  echo "=== $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "=== exit $rc after $((SECONDS - t0)) s: $*"
  return $rc
}

rc=0
step node dist/src/cli/main.js policy check --load policies/ || rc=1
# TALLY_MATRIX_TETRAGON=1: Tetragon's examples too, one JSON line per file,
# which test-kernels.sh collects from the console into the table of
# docs/tetragon-examples.md. Not a pass/fail step: refusals are expected.
if [ "${TALLY_MATRIX_TETRAGON:-0}" = 1 ]; then
  step node dist/src/cli/main.js policy check --load --json $(find test/fixtures/tetragon-examples -name '*.y*ml' | sort) || true
fi
# "none": the policy check only (CI's subset, see docs/kernel-matrix.md).
# Before 6.3 TCP sends are counted at fexit of tcp_sendmsg, and the kernel
# skips fexit for a call sleeping there whenever a program is attached to or
# detached from the function (docs/kernels.md). Two test files side by side
# start agents that do exactly that under each other's blocked senders, so on
# those kernels the files run one at a time.
if [ ! -d /sys/kernel/tracing/events/sock/sock_recv_length ] && [ ! -d /sys/kernel/debug/tracing/events/sock/sock_recv_length ]; then
  export TALLY_TEST_CONCURRENCY=1
  echo "=== no sock_recv_length tracepoint: test files run one at a time"
fi
if [ "${1:-}" != none ]; then
  step node scripts/run-tests.js "$@" || rc=1
fi
exit $rc
