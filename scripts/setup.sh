#!/usr/bin/env bash
# One idempotent set-up step in front of `npm start` and `npm test`.
#
# It installs only what is missing and builds only what is stale, so on a
# machine where everything is already in place it finishes in about a second.
# Every step says what it does; silence means "already there". A long step
# (npm ci, the policy BPF objects) says every few seconds that it still runs.
#
# TALLY_SETUP=build makes only what the agent runs with (`make runtime`) and
# installs only the toolchain: the Dockerfile's build stage uses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    say "error: $1 needs root; run as root (sudo npm …)" >&2
    exit 1
  fi
}

# --- 0. Node.js ---------------------------------------------------------------
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  say "error: tally needs Node.js 20 or newer; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi

# --- 1. Debian packages -------------------------------------------------------
# The toolchain (clang-16, bpftool, libelf, zlib) builds the BPF objects and the
# vendored libbpf; bpftrace and prometheus's promtool are peers that tests and
# benchmarks measure against; util-linux gives setpriv and unshare to tests;
# tmux is the terminal tally top's test types into.
MODE="${TALLY_SETUP:-all}"
case "$MODE" in all | build) ;; *) say "error: TALLY_SETUP must be all or build, not \"$MODE\"" >&2; exit 2 ;; esac
APT_PACKAGES=(clang-16 llvm-16 bpftool libelf-dev zlib1g-dev linux-libc-dev pkg-config make g++ python3 dpkg-dev)
[ "$MODE" = all ] && APT_PACKAGES+=(bpftrace prometheus iproute2 nftables util-linux tmux)

# progress LABEL CMD...: a line every 5 s while a long step runs.
# shellcheck source=progress.sh
. "$ROOT/scripts/progress.sh"

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "installing ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. tracefs ---------------------------------------------------------------
# Classic tracepoint attachment (the last fallback) and bpftrace look events up
# in tracefs. Mount it where the kernel expects it when nothing has.
if [ "$MODE" = all ] && [ ! -e /sys/kernel/tracing/events ] && [ ! -e /sys/kernel/debug/tracing/events ]; then
  if [ "$(id -u)" = 0 ] && mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    say "mounted tracefs at /sys/kernel/tracing"
  else
    say "warning: tracefs is not mounted; classic tracepoints will be unavailable"
  fi
fi

# --- 3. vendored libbpf source --------------------------------------------------
# Pinned: Debian's source package of libbpf 1.1.2. It is fetched, never committed.
LIBBPF_DEB_VERSION="1.1.2-0+deb12u1"
LIBBPF_SRC="$ROOT/.deps/libbpf-1.1.2"
if [ ! -f "$LIBBPF_SRC/src/libbpf.c" ]; then
  need_root "fetching the libbpf source"
  # apt-get source needs deb-src lines. Derive them from the deb822 file that
  # already lists the Debian archive, so no host name is written here.
  if ! apt-get source --print-uris -q "libbpf=$LIBBPF_DEB_VERSION" >/dev/null 2>&1; then
    # Every Debian stanza (deb822 .sources) or line (sources.list) gets a
    # deb-src twin. Debian's are recognised by the archive keyring or a
    # "debian" URI (including mirror+file: lists), third-party ones are left alone.
    derived=0
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -e "$f" ] || continue
      case "$f" in */tally-deb-src.sources) continue ;; esac
      out="$(awk 'BEGIN { RS=""; ORS="\n\n" }
        /(^|\n)Types:[^\n]*deb([ \n]|$)/ && /debian-archive-keyring|URIs:[^\n]*debian/ {
          gsub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print }' "$f")"
      if [ -n "$out" ]; then printf '%s\n' "$out" >> /etc/apt/sources.list.d/tally-deb-src.sources.new; derived=1; fi
    done
    if [ -f /etc/apt/sources.list ] && grep -qE '^deb .*debian' /etc/apt/sources.list; then
      sed -nE 's/^deb (.*debian.*)/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/tally-deb-src.list
      derived=1
    fi
    if [ "$derived" = 0 ]; then
      say "error: found no Debian apt source to derive deb-src from (looked in /etc/apt/sources.list.d/*.sources and /etc/apt/sources.list)" >&2
      exit 1
    fi
    [ -f /etc/apt/sources.list.d/tally-deb-src.sources.new ] && mv /etc/apt/sources.list.d/tally-deb-src.sources.new /etc/apt/sources.list.d/tally-deb-src.sources
    say "enabled deb-src for the Debian archive (derived from the existing apt sources)"
    apt-get update -q >/dev/null
  fi
  say "fetching libbpf $LIBBPF_DEB_VERSION source with apt-get source"
  rm -rf "$ROOT/.deps/apt" && mkdir -p "$ROOT/.deps/apt"
  if ! (cd "$ROOT/.deps/apt" && apt-get source -q "libbpf=$LIBBPF_DEB_VERSION" > apt-source.log 2>&1); then
    say "error: apt-get source libbpf=$LIBBPF_DEB_VERSION failed:" >&2
    tail -5 "$ROOT/.deps/apt/apt-source.log" >&2
    exit 1
  fi
  rm -rf "$LIBBPF_SRC"
  mv "$ROOT/.deps/apt/libbpf-1.1.2" "$LIBBPF_SRC"
  rm -rf "$ROOT/.deps/apt"
fi

# --- 4. npm dependencies --------------------------------------------------------
# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  progress "installing npm dependencies" npm ci --no-audit --no-fund --loglevel=error --progress=false >/dev/null
fi

# --- 5. build -------------------------------------------------------------------
# make decides what is stale: libbpf (PIC, static), vmlinux.h, BPF objects, the
# addon and the TypeScript. It prints nothing when everything is current.
target=all
[ "$MODE" = build ] && target=runtime
progress building make --no-print-directory -s -C "$ROOT" "$target"
