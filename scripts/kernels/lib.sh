# Shared helpers for the kernel-matrix scripts (sourced, not run).
#
# Everything downloaded or built lives under one cache directory, outside the
# repository, so repeated runs download nothing and `git status` stays clean.

# shellcheck disable=SC2034  # ROOT and CACHE are used by the scripts sourcing this file
KERNELS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$KERNELS_DIR/../.." && pwd)"
CACHE="${TALLY_KERNEL_CACHE:-/var/cache/tally-kernels}"

# The series the matrix knows. Each maps to the Debian suites that carry it:
# 5.10 is bullseye's kernel (newest builds are in bullseye-security), 6.1 is
# bookworm's, 6.12 is in bookworm-backports.
ALL_SERIES=(5.10 6.1 6.12)

say() { printf '[kernels] %s\n' "$*" >&2; }
die() { printf '[kernels] error: %s\n' "$*" >&2; exit 1; }

check_series() {
  case "$1" in
    5.10 | 6.1 | 6.12) ;;
    *) die "unknown kernel series '$1' (known: ${ALL_SERIES[*]})" ;;
  esac
}

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (apt-get, QEMU's 9p export of /, the shared cache)"
}

# Host tools the matrix needs, installed only when missing. apt-get's own
# output is shown: the first install of QEMU takes a while.
#   qemu-system-x86  runs the guests (TCG; nested KVM is not relied on)
#   kmod             depmod for the extracted module trees, modprobe in the guest
#   busybox-static   the initramfs userland
#   cpio             packs the initramfs
#   xz-utils, zstd   decompress .ko.xz / .ko.zst modules for the initramfs
ensure_host_packages() {
  local p missing=()
  for p in qemu-system-x86 kmod busybox-static cpio xz-utils zstd; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  say "installing host packages: ${missing[*]}"
  # Try with the lists already present first; refresh them only if that fails
  # (a fresh container may have none, or stale ones pointing at gone versions).
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
    say "apt-get install failed; running apt-get update and retrying"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# Seconds since the epoch with two decimals, for durations.
now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
