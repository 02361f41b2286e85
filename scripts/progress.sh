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
    # The sleep gets none of the caller's output pipes: should it outlive
    # the ticker (killed between the fork and s=$!), it must not keep a
    # reader of setup's output waiting for the pipe to close.
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "${PROGRESS_EVERY:-5}" </dev/null >/dev/null 2>&1 & s=$!
      wait "$s"
      kill -0 "$pid" 2>/dev/null || exit 0
      printf '[setup] ... still %s (%ds)\n' "$label" "$((SECONDS - started))" >&2
    done
  ) &
  ticker=$!
  wait "$pid" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$rc"
}
