#!/usr/bin/env bash
# run-guest.sh SERIES -- COMMAND [ARG...]
#
# Boots Debian's stock kernel of SERIES (5.10, 6.1, 6.12) under QEMU with the
# host's root filesystem shared read-only over 9p, runs COMMAND inside it as
# root from the repository root, streams the serial console with a "[SERIES]"
# prefix, and exits with COMMAND's exit code. Otherwise:
#   124  the guest did not finish within TALLY_KERNEL_TIMEOUT seconds
#   125  the guest never ran the command to its end (kernel, initramfs or
#        guest set-up failure, a panic, or a lockup); the reason is printed
#
# Environment:
#   TALLY_KERNEL_TIMEOUT  seconds per guest, boot included (default 1800)
#   TALLY_KERNEL_MEMORY   guest memory (default 3G)
#   TALLY_KERNEL_CPUS     guest CPUs (default 2)
#   TALLY_KERNEL_APPEND   extra kernel command line parameters
#   TALLY_KERNEL_LOCKUP   stop the guest once the kernel reports a CPU stuck
#                         (soft lockup) for this many seconds (default 300)
#   TALLY_KERNEL_ACCEL    QEMU's -accel (default tcg: one host thread per vCPU;
#                         tcg,thread=single runs the vCPUs in turn on one)
#   TALLY_KERNEL_SNAPSHOT directories of the repository the guest sees as they
#                         were at boot (default: dist, the BPF objects of build/,
#                         policies, test/fixtures);
#                         "" for none
#   TALLY_KERNEL_RESULT   if set, a file to write key=value results into
#                         (series, kernel, exit, boot_s, command_s, total_s, log)
#   CI, NODE_OPTIONS and TALLY_* variables (but TALLY_KERNEL_*) are passed into the guest.
#
# Why TCG and not KVM: nested KVM on the CI machines hangs in firmware; TCG
# with -cpu max boots a guest to its init in seconds and BPF does not care.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { die "usage: run-guest.sh SERIES -- COMMAND [ARG...]"; }
[ $# -ge 3 ] && [ "$2" = "--" ] || usage
SERIES="$1"
shift 2
check_series "$SERIES"
need_root "booting guests"

TIMEOUT="${TALLY_KERNEL_TIMEOUT:-1800}"
LOCKUP="${TALLY_KERNEL_LOCKUP:-300}"
ACCEL="${TALLY_KERNEL_ACCEL:-tcg}"
MEMORY="${TALLY_KERNEL_MEMORY:-3G}"
CPUS="${TALLY_KERNEL_CPUS:-2}"
P="[$SERIES]"
CMDTXT="$*"

# Paths travel on the kernel command line, which splits on whitespace.
case "$ROOT$CACHE" in *[[:space:]]*) die "the repository and cache paths must not contain whitespace ($ROOT, $CACHE)" ;; esac

ensure_host_packages
tree="$(bash "$KERNELS_DIR/fetch-kernel.sh" "$SERIES")"
kver="$(cat "$tree/kernel-version")"
initrd="$(bash "$KERNELS_DIR/make-initramfs.sh" "$tree")"

# --- the job directory -----------------------------------------------------------
# The guest sees the host's / live, so the job is handed over as files: the
# command as a bash script and an env file. The guest cannot write back (its
# root is read-only); everything comes back over the serial console.
mkdir -p "$CACHE/jobs" "$CACHE/logs"
job="$(mktemp -d "$CACHE/jobs/$SERIES.XXXXXX")"
chmod 755 "$job"
# QEMU writes its pid here; whatever ends this script (Ctrl-C, CI cancelling
# the job, an error) also ends the guest, which would otherwise run on until
# its timeout.
cleanup() {
  local pid
  pid="$(cat "$job/qemu.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$job"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
# A random marker: the command's own output cannot fake the exit line.
marker="TALLY-EXIT-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# The guest reads the repository live over 9p, so a rebuild on the host
# while a guest runs (npm test in the same checkout) would pull files from
# under it: modules vanish mid-test. The build outputs and what tests read
# are copied once, in a fraction of a second, and bind-mounted over the
# originals in the guest. node_modules is not copied (200 MB; it changes only
# with the lock file).
snapshot=()
for d in ${TALLY_KERNEL_SNAPSHOT-dist build/bpf build/test-bpf build/bench build/bench-bpf policies test/fixtures}; do
  [ -d "$ROOT/$d" ] || continue
  mkdir -p "$job/snapshot/$(dirname "$d")"
  cp -a "$ROOT/$d" "$job/snapshot/$d"
  snapshot+=("$d")
done
{
  printf 'TALLY_JOB_MARKER=%q\n' "$marker"
  printf 'TALLY_JOB_SNAPSHOT=%q\n' "${snapshot[*]}"
  printf 'TALLY_JOB_CWD=%q\n' "$ROOT"
  printf 'TALLY_JOB_KERNELS_DIR=%q\n' "$KERNELS_DIR"
  for v in $(compgen -e); do
    case "$v" in
      TALLY_KERNEL_*) ;; # the host-side knobs of these scripts
      CI | NODE_OPTIONS | TALLY_*) printf 'export %s=%q\n' "$v" "${!v}" ;;
    esac
  done
} > "$job/job.env"
{
  printf 'exec'
  printf ' %q' "$@"
  printf '\n'
} > "$job/cmd"
printf '%s\n' "$*" > "$job/cmd.txt"

log="$CACHE/logs/$SERIES-$(date +%Y%m%d-%H%M%S).log"
timings="$job/timings"
: > "$timings"
: > "$log"

# --- boot ------------------------------------------------------------------------
append="console=ttyS0 edd=off loglevel=5 panic=-1 rdinit=/init random.trust_cpu=on"
# TALLY_KERNEL_APPEND adds kernel parameters (e.g. ignore_loglevel to debug a boot).
append+="${TALLY_KERNEL_APPEND:+ $TALLY_KERNEL_APPEND}"
append+=" tally.init=$KERNELS_DIR/guest-init.sh tally.job=$job tally.modules=$tree"
qemu=(
  qemu-system-x86_64
  -nodefaults -no-user-config -nographic -serial stdio -no-reboot
  -accel "$ACCEL" -cpu max -smp "$CPUS" -m "$MEMORY"
  -kernel "$tree/boot/vmlinuz-$kver" -initrd "$initrd" -append "$append"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -device virtio-rng-pci
  -pidfile "$job/qemu.pid"
)

# Reads the console: strips the serial line's \r, keeps a log, prints each
# line with the series prefix, and notes when the guest reached its stages.
stream() {
  local line t0="$1" t
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    printf '%s\n' "$line" >> "$log"
    case "$line" in
      "TALLY-STAGE command "*)
        t="$(now)"
        echo "boot_s=$(elapsed "$t0" "$t")" >> "$timings"
        echo "command_start=$t" >> "$timings"
        printf '%s booted %s in %s s (guest uptime %s s); running: %s\n' "$P" "$kver" "$(elapsed "$t0" "$t")" "${line##* }" "$CMDTXT" ;;
      "TALLY-STAGE "*) ;;
      "$marker "*)
        echo "command_end=$(now)" >> "$timings" ;;
      *)
        printf '%s %s\n' "$P" "$line"
        # Under TCG a short soft lockup can be the host starving the vCPU;
        # minutes of one mean the guest is livelocked: stop it now instead
        # of at the timeout.
        if [[ "$line" =~ soft\ lockup\ -\ CPU#[0-9]+\ stuck\ for\ ([0-9]+)s ]] \
          && [ "${BASH_REMATCH[1]}" -ge "$LOCKUP" ] && ! grep -q '^lockup=' "$timings"; then
          echo "lockup=${line#*\] }" >> "$timings"
          printf '%s stopping the guest: a CPU has been stuck for %s s (TALLY_KERNEL_LOCKUP=%s)\n' "$P" "${BASH_REMATCH[1]}" "$LOCKUP"
          kill "$(cat "$job/qemu.pid" 2>/dev/null)" 2>/dev/null || true
        fi
        ;;
    esac
  done
}

say "$SERIES: booting $kver under QEMU ($ACCEL, $CPUS CPUs, $MEMORY), timeout ${TIMEOUT}s; console log: $log"
t0="$(now)"
# In the background and waited for: bash runs the INT/TERM traps (which stop
# QEMU) only between commands, and `wait` is interruptible where a
# foreground pipeline is not. SeaBIOS clears the screen with terminal
# escapes; sed drops them from the stream.
{
  qrc=0
  timeout -k 10 "$TIMEOUT" "${qemu[@]}" < /dev/null 2>&1 || qrc=$?
  echo "$qrc" > "$job/qemu.rc" 2>/dev/null
} | sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' | stream "$t0" &
wait $! || true
qemu_rc="$(cat "$job/qemu.rc" 2>/dev/null || echo '?')"
t1="$(now)"

# --- verdict ---------------------------------------------------------------------
rc="$(grep -a "^$marker " "$log" | tail -1 | awk '{ print $2 }' || true)"
boot_s="$(sed -n 's/^boot_s=//p' "$timings")"
cs="$(sed -n 's/^command_start=//p' "$timings")"
ce="$(sed -n 's/^command_end=//p' "$timings")"
command_s=""
[ -n "$cs" ] && [ -n "$ce" ] && command_s="$(elapsed "$cs" "$ce")"
total_s="$(elapsed "$t0" "$t1")"

last_stage="$(grep -a '^TALLY-STAGE ' "$log" | tail -1 | awk '{ print $2 }' || true)"
lockup="$(sed -n 's/^lockup=//p' "$timings")"
verdict="exited"
if [ -n "$rc" ]; then
  printf '%s %s exited %s (boot %s s, command %s s, total %s s)\n' "$P" "$CMDTXT" "$rc" "$boot_s" "$command_s" "$total_s" >&2
elif [ -n "$lockup" ]; then
  rc=125
  verdict=lockup
  printf '%s LOCKUP: the guest was stopped while the command ran: %s; console log: %s\n' "$P" "$lockup" "$log" >&2
elif [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  rc=124
  verdict=timeout
  printf '%s TIMEOUT: no result within %s s (last stage reached: %s); console log: %s\n' "$P" "$TIMEOUT" "${last_stage:-none, the kernel printed nothing}" "$log" >&2
else
  rc=125
  verdict=boot-failure
  reason="$(grep -a '^TALLY-BOOT-FAILED: ' "$log" | tail -1 | sed 's/^TALLY-BOOT-FAILED: //' || true)"
  panic="$(grep -a -m1 -E 'Kernel panic|BUG:|Oops' "$log" || true)"
  case "$last_stage" in
    "") what="the kernel never reached the initramfs's /init" ;;
    initramfs) what="the initramfs failed (loading the virtio/9p modules or mounting the 9p root)" ;;
    root | guest-init) what="guest-init.sh failed before running the command" ;;
    command) what="the guest stopped while the command ran, without an exit line"; verdict=guest-failure ;;
  esac
  label="BOOT FAILURE"
  [ "$verdict" = guest-failure ] && label="GUEST FAILURE"
  printf '%s %s: %s%s%s (qemu exit %s); console log: %s\n' "$P" "$label" "$what" \
    "${reason:+: $reason}" "${panic:+; kernel: $panic}" "$qemu_rc" "$log" >&2
  [ -s "$log" ] || printf '%s (the console was empty: QEMU itself failed?)\n' "$P" >&2
fi

if [ -n "${TALLY_KERNEL_RESULT:-}" ]; then
  {
    echo "series=$SERIES"
    echo "kernel=$kver"
    echo "exit=$rc"
    echo "verdict=$verdict"
    echo "boot_s=$boot_s"
    echo "command_s=$command_s"
    echo "total_s=$total_s"
    echo "log=$log"
  } > "$TALLY_KERNEL_RESULT"
fi
exit "$rc"
