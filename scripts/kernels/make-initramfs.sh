#!/usr/bin/env bash
# make-initramfs.sh SERIES|TREE
#
# Builds (once, cached next to the kernel) a tiny initramfs for a kernel tree
# from fetch-kernel.sh and prints its path. It holds busybox-static, the
# modules needed to reach the host's root filesystem over virtio-9p, and an
# /init that loads them, mounts the 9p root read-only and switch_roots into
# it, handing over to scripts/kernels/guest-init.sh (named on the kernel
# command line, so one initramfs serves any checkout).
#
# Debian builds virtio-pci, 9p and their helpers as modules, so they must be
# loaded before the root can be mounted; which ones and in which order comes
# from the kernel's own modules.dep, so the same code fits 5.10 through 6.12.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || die "usage: make-initramfs.sh SERIES|TREE"
if [ -d "$1" ]; then tree="$(cd "$1" && pwd)"; else tree="$(bash "$KERNELS_DIR/fetch-kernel.sh" "$1")"; fi
kver="$(cat "$tree/kernel-version")"
moddir="$tree/lib/modules/$kver"
out="$tree/tally-initramfs.cpio.gz"

# Rebuilt when this script (which holds /init) or busybox changed since.
if [ -f "$out" ] && [ "$out" -nt "${BASH_SOURCE[0]}" ] && [ "$out" -nt /bin/busybox ]; then
  echo "$out"
  exit 0
fi
ensure_host_packages

say "building the initramfs for $kver"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$work/bin/busybox"

# --- modules, dependencies first ------------------------------------------------
# Wanted: the virtio PCI transport, 9p over virtio, and virtio-rng (early
# entropy: without it a 5.10 guest under TCG can stall in getrandom()).
WANTED=(virtio_pci 9pnet_virtio 9p virtio_rng)

# modules.dep lines are "path: dep1 dep2 ...", each module listed before the
# modules it needs, so loading the deps right to left, then the module, is a
# valid order (it is what modprobe does).
norm() { local b="${1##*/}"; b="${b%%.ko*}"; printf '%s' "${b//-/_}"; }
declare -A seen=()
order=()
add_module() {
  local name="$1" line path deps i
  line="$(awk -v want="$name" -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n); if (n == want) { print; exit } }' "$moddir/modules.dep")"
  if [ -z "$line" ]; then
    # Not a module: fine if it is built in, fatal otherwise.
    if awk -F/ '{ n = $NF; sub(/\.ko.*/, "", n); gsub(/-/, "_", n); print n }' "$moddir/modules.builtin" | grep -qx "$name"; then
      return 0
    fi
    die "$kver has neither a module nor a built-in '$name'"
  fi
  path="${line%%:*}"
  read -r -a deps <<< "${line#*:}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
    local d; d="$(norm "${deps[$i]}")"
    [ -n "${seen[$d]:-}" ] && continue
    seen[$d]=1
    order+=("${deps[$i]}")
  done
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  order+=("$path")
}
for m in "${WANTED[@]}"; do add_module "$m"; done

# busybox insmod takes plain .ko files: decompress .ko.xz (6.12) / .ko.zst.
: > "$work/modules/order"
for p in "${order[@]}"; do
  base="$(norm "$p").ko"
  case "$p" in
    *.ko.xz) xz -dc "$moddir/$p" > "$work/modules/$base" ;;
    *.ko.zst) zstd -qdc "$moddir/$p" > "$work/modules/$base" ;;
    *.ko.gz) gzip -dc "$moddir/$p" > "$work/modules/$base" ;;
    *) cp "$moddir/$p" "$work/modules/$base" ;;
  esac
  echo "$base" >> "$work/modules/order"
done
say "initramfs modules for $kver: $(tr '\n' ' ' < "$work/modules/order")"

# --- /init ----------------------------------------------------------------------------
# Runs as PID 1 from the initramfs. Every failure prints a TALLY-BOOT-FAILED
# line (run-guest.sh reports it) and powers off rather than dropping to a
# shell nobody can type into.
cat > "$work/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "TALLY-BOOT-FAILED: $*"
  poweroff -f
  echo o > /proc/sysrq-trigger
  sleep 60
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "TALLY-STAGE initramfs"

for m in $(cat /modules/order); do
  insmod "/modules/$m" || fail "insmod $m"
done

# tally.init=PATH names the guest init script on the shared root;
# tally.9p=OPTS overrides the 9p mount options below.
init=""
opts="trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose"
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    tally.init=*) init="${arg#tally.init=}" ;;
    tally.9p=*) opts="${arg#tally.9p=}" ;;
  esac
done
[ -n "$init" ] || fail "no tally.init= on the kernel command line"

# The host's / over virtio-9p, read-only. The device may still be probing
# right after insmod, hence a few tries. msize 512 KiB: fewer round trips
# for node_modules and the test files.
tries=0
until mount -t 9p -o "$opts" hostroot /newroot 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -ge 20 ] && fail "mounting the 9p root (mount_tag hostroot)"
  sleep 0.2
done
[ -f "/newroot$init" ] || fail "$init is not on the shared root"
echo "TALLY-STAGE root"

# guest-init.sh mounts its own /proc, /sys and /dev in the new root.
umount /proc /sys /dev
exec switch_root /newroot /bin/bash "$init"
EOF
chmod 755 "$work/init"

(cd "$work" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
