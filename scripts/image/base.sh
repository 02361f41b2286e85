#!/usr/bin/env bash
# Makes the runtime base image (Debian 12 minbase + libelf1) without a
# container registry: debootstrap against the Debian mirror this machine's apt
# configuration already uses, then `podman import`. The rootfs tarball is
# cached in $CACHE_DIR and the image in podman's store, so a second run only
# checks that the image is there.
#
# Prints the base image's name on stdout.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# The first http(s) Debian archive URI that apt is configured with, from
# deb822 .sources files or sources.list; never a hard-coded host. The
# security archive is skipped: debootstrap needs the main one.
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    uri="$(awk 'BEGIN { RS=""; FS="\n" }
      /(^|\n)Types:[^\n]*deb([ \n]|$)/ && /(^|\n)Suites:[^\n]*'"$BASE_SUITE"'/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) {
          n = split(substr($i, 6), u, " ")
          for (j = 1; j <= n; j++) if (u[j] ~ /^https?:\/\/.*debian\/?$/) { print u[j]; exit }
        }
      }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  if [ -f /etc/apt/sources.list ]; then
    uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*debian\/?$/) { print $i; exit } }' /etc/apt/sources.list)"
    [ -n "$uri" ] && { echo "$uri"; return; }
  fi
  img_die "found no http(s) Debian archive in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list to debootstrap from"
}

mkdir -p "$CACHE_DIR"
# One debootstrap at a time: a second caller waits, then finds the image.
exec 9>"$CACHE_DIR/base.lock"
flock 9

if podman image exists "$BASE_IMAGE"; then
  echo "$BASE_IMAGE"
  exit 0
fi

TARBALL="$CACHE_DIR/base-${BASE_SUITE}-r${BASE_RECIPE}.tar"
if [ ! -s "$TARBALL" ]; then
  [ "$(id -u)" = 0 ] || img_die "debootstrap needs root"
  MIRROR="$(debian_mirror)"
  ROOTFS="$CACHE_DIR/rootfs.tmp"
  rm -rf "$ROOTFS"
  with_progress "debootstrap --variant=minbase $BASE_SUITE (+ $BASE_PACKAGES) from the apt mirror" "$CACHE_DIR/debootstrap.log" \
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$BASE_SUITE" "$ROOTFS" "$MIRROR"
  # What a runtime image never uses: downloaded .debs, package lists (the
  # image is rebuilt, not upgraded in place), docs and man pages.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
  tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$ROOTFS"
fi
img_say "importing the base rootfs as $BASE_IMAGE"
podman import --quiet "$TARBALL" "$BASE_IMAGE" >/dev/null
echo "$BASE_IMAGE"
