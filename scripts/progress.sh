# progress LABEL CMD [ARGS...]: runs CMD (its output untouched) and, every
# $PROGRESS_EVERY seconds (default 5) that it still runs, prints
# "[setup] ... still LABEL (Ns)" on stderr, so a long step (npm ci, the policy
# BPF objects) is not silent for tens of seconds. Returns CMD's status.
# Plain bash, sourced by setup.sh: a no-op set-up step pays no node start-up.
progress() {
  local label="$1" started=$SECONDS pid ticker rc=0
  shift
  "$@" &
  pid=$!
  (
    while :; do
      # The sleep gets none of the caller's output pipes: it outlives the
      # ticker (by at most an interval) and must not keep a reader of
      # setup's output waiting for the pipe to close.
      sleep "${PROGRESS_EVERY:-5}" </dev/null >/dev/null 2>&1
      kill -0 "$pid" 2>/dev/null || exit 0
      printf '[setup] ... still %s (%ds)\n' "$label" "$((SECONDS - started))" >&2
    done
  ) &
  ticker=$!
  wait "$pid" || rc=$?
  # SIGKILL: gone at once, so no tick can follow the step's end (a TERM
  # trap in the ticker cost ~0.1 s per call, a no-op set-up step pays twice).
  kill -KILL "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$rc"
}
