#!/bin/bash
# PID 1 inside a kernel-matrix guest, started by the initramfs after it has
# switch_rooted into the host's root filesystem (9p, read-only).
#
# It sets the machine up the way a production node looks to tally (pure
# cgroup v2, bpffs, tracefs, debugfs, memlock unlimited), runs the job that
# run-guest.sh left in its job directory, prints the job's exit code after a
# per-run marker and powers the machine off. Its stdout is the serial console
# the host reads.
#
# No `set -e`: whatever fails, the marker and the power-off must still happen.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8
umask 022

stage() { echo "TALLY-STAGE $*"; }
note() { echo "[guest] $*"; }
off() {
  # busybox-static calls reboot(2) directly; the sysrq fallback needs nothing.
  /bin/busybox poweroff -f 2>/dev/null
  echo o > /proc/sysrq-trigger
  sleep 60
}
fail() {
  echo "TALLY-BOOT-FAILED: $*"
  off
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
stage "guest-init $(cut -d' ' -f1 /proc/uptime)"

# --- the job ------------------------------------------------------------------
# tally.job=DIR on the kernel command line; the host wrote job.env (marker,
# working directory, module tree, environment) and cmd (a bash script) there.
job=""
modtree=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    tally.job=*) job="${arg#tally.job=}" ;;
    tally.modules=*) modtree="${arg#tally.modules=}" ;;
  esac
done
[ -n "$job" ] && [ -f "$job/job.env" ] || fail "no job directory (tally.job=) with a job.env"
# shellcheck disable=SC1091
source "$job/job.env"

# --- file systems ---------------------------------------------------------------
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# The root is read-only; these are where tests and tools write. A repository
# under one of them (a CI's clean clone in /tmp) would vanish under its tmpfs:
# it is held aside on a bind mount and put back over its own path.
held=""
case "$TALLY_JOB_CWD/" in
  /tmp/* | /run/* | /var/tmp/*)
    mkdir -p /dev/.tally-repo && mount --bind "$TALLY_JOB_CWD" /dev/.tally-repo && held=1 \
      || fail "holding the repository $TALLY_JOB_CWD aside from the tmpfs" ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
if [ -n "$held" ]; then
  mkdir -p "$TALLY_JOB_CWD" && mount --bind /dev/.tally-repo "$TALLY_JOB_CWD" || fail "putting the repository back at $TALLY_JOB_CWD"
fi
mkdir -p /run/lock /run/netns

mount -t bpf -o mode=700 bpf /sys/fs/bpf || fail "mounting bpffs"
mount -t tracefs tracefs /sys/kernel/tracing || fail "mounting tracefs"
mount -t debugfs debugfs /sys/kernel/debug || fail "mounting debugfs"
# Pure cgroup v2 with systemd's mount options (where the kernel knows them),
# every controller enabled at the root, and the job in a service cgroup of
# its own, as a systemd unit would be.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup 2>/dev/null \
  || mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup \
  || fail "mounting cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || note "could not enable the $c controller"
done
mkdir -p /sys/fs/cgroup/system.slice/tally-test.service

# Kernel module auto-loading (veth, nf_tables, ...): the host has no
# /lib/modules for this kernel and the root is read-only, so the kernel's
# modprobe helper is a wrapper that points modprobe at the extracted tree.
if [ -n "$modtree" ]; then
  echo "$TALLY_JOB_KERNELS_DIR/guest-modprobe.sh" > /proc/sys/kernel/modprobe
fi

# The repository's build outputs as they were when the guest was started
# (run-guest.sh copied them into the job directory).
for d in ${TALLY_JOB_SNAPSHOT:-}; do
  mount --bind "$job/snapshot/$d" "$TALLY_JOB_CWD/$d" || fail "bind-mounting the snapshot of $d"
done

ip link set lo up || fail "ip link set lo up"
kname="$(uname -r)"
hostname "tally-${kname//[^a-zA-Z0-9-]/-}"
# Limits every process of the job inherits: BPF maps are charged to memlock
# on kernels before 5.11, so 5.10 needs it unlimited.
ulimit -l unlimited
ulimit -n 65536
# npm and friends want a writable home.
export HOME=/tmp/home
mkdir -p "$HOME"

stage "command $(cut -d' ' -f1 /proc/uptime)"
note "kernel $(uname -r), cgroup /system.slice/tally-test.service, cwd ${TALLY_JOB_CWD}"

# --- run it ---------------------------------------------------------------------
# In its own cgroup, from the repository root, stdin closed, through a pipe so
# the command sees a non-TTY stdout like CI does.
(
  echo $BASHPID > /sys/fs/cgroup/system.slice/tally-test.service/cgroup.procs
  cd "$TALLY_JOB_CWD" || exit 125
  exec bash "$job/cmd" < /dev/null 2>&1
) | cat
rc=${PIPESTATUS[0]}

echo
echo "$TALLY_JOB_MARKER $rc"
off
