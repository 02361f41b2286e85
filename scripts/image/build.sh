#!/usr/bin/env bash
# `npm run image`: builds tally's image on this machine, where no container
# registry is reachable, and saves it as an OCI archive.
#
#  1. podman, buildah, runc and debootstrap from apt, if missing;
#  2. the base: Debian 12 minbase + libelf1, debootstrap'ed once and cached
#     (scripts/image/base.sh);
#  3. the runtime files laid out by scripts/image/stage.sh from this
#     checkout's build (npm run image runs the set-up step first);
#  4. the Dockerfile's `runtime` stage, from that base and with those files,
#     with no network and no pulls;
#  5. `podman save --format oci-archive` to build/image/tally-VERSION.oci.tar.
#
# Idempotent: a second run with nothing changed only checks (seconds); after
# a change, podman's layer cache keeps what did not change.
# Prints the image name and the archive's path, size and gzip'ed size.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=lib.sh
. "$ROOT/scripts/image/lib.sh"
cd "$ROOT"

VERSION="$(node -p 'require("./package.json").version')"
IMAGE="${TALLY_IMAGE:-localhost/tally:$VERSION}"
OUT="$ROOT/build/image"
ARCHIVE="$OUT/tally-$VERSION.oci.tar"
STAGE_IMAGE="localhost/tally-stage:$VERSION"

mkdir -p "$OUT"
# One build at a time (two test files may ask at once): the second waits,
# then finds the image current.
exec 9>"$OUT/.lock"
flock 9

ensure_image_tools
BASE="$(bash "$ROOT/scripts/image/base.sh")"

# Prints the Dockerfile's runtime stage with its FROM and its COPY --from=build
# rewritten to BASE and STAGE_IMAGE; fails if either line is not found.
runtime_stage() {
  awk -v base="$1" -v stage="$2" '
    /^FROM [^ ]+ AS runtime$/ { on = 1; print "FROM " base " AS runtime"; from++; next }
    on && /^FROM / { on = 0 }
    on && $0 == "COPY --from=build /stage/ /" { print "COPY --from=" stage " /stage/ /"; copy++; next }
    on { print }
    END { if (from != 1 || copy != 1) { print "build.sh: the Dockerfile has no runtime stage with one COPY --from=build /stage/ /" > "/dev/stderr"; exit 1 } }
  ' "$ROOT/Dockerfile"
}

# What the image is made of: the runtime files' inputs, the node binary, the
# scripts and Dockerfile that assemble them, and the base. When none changed
# since the last run and the image is still there, nothing is rebuilt.
fingerprint() {
  {
    (cd dist && find src -name '*.js' -print0 | sort -z | xargs -0 sha256sum)
    sha256sum bin/tally package.json package-lock.json native/build/Release/tally_native.node \
      build/syscalls.json build/bpf/*.bpf.o policies/*.yaml scripts/image/*.sh Dockerfile \
      "$(readlink -f "$(command -v node)")"
    podman image inspect --format '{{.Id}}' "$BASE"
  } | sha256sum | cut -c1-64
}
FP="$(fingerprint)"
STATE="$OUT/state"
built_id="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ -n "$built_id" ] && [ -f "$STATE" ] && [ "$(cat "$STATE")" = "$FP $built_id" ]; then
  img_say "$IMAGE is current (nothing changed since it was built)"
else
  mkdir -p "$OUT/stage-context" "$OUT/empty-context"
  with_progress "laying out the runtime files (scripts/image/stage.sh)" "$OUT/stage.log" \
    bash "$ROOT/scripts/image/stage.sh" "$OUT/stage-context/stage"
  # The runtime files as an image of their own, for the runtime stage to copy
  # from as it copies from the build stage.
  printf 'FROM scratch\nCOPY stage/ /stage/\n' > "$OUT/stage-context/Containerfile"
  with_progress "packing them into $STAGE_IMAGE" "$OUT/stage-image.log" \
    podman build --network=none --pull=never --layers -q -t "$STAGE_IMAGE" \
      -f "$OUT/stage-context/Containerfile" "$OUT/stage-context"
  # The Dockerfile's runtime stage, line for line, but FROM the base and
  # COPY --from the stage image. (Podman 4.3's buildah cannot swap a stage
  # for an image through a build ARG, so the two lines are rewritten here;
  # test/image-layout.test.ts checks that nothing else differs.)
  runtime_stage "$BASE" "$STAGE_IMAGE" > "$OUT/runtime.Containerfile"
  # The runtime stage needs no build context: an empty one keeps podman from
  # sending the checkout (node_modules included) to the builder.
  with_progress "building $IMAGE from the Dockerfile's runtime stage" "$OUT/build.log" \
    podman build --network=none --pull=never --layers \
      -t "$IMAGE" -f "$OUT/runtime.Containerfile" "$OUT/empty-context"
  built_id="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
  echo "$FP $built_id" > "$STATE"
fi

# The archive is rewritten only when it holds another image.
if [ ! -s "$ARCHIVE" ] || [ "$(cat "$ARCHIVE.id" 2>/dev/null)" != "$built_id" ]; then
  rm -f "$ARCHIVE.tmp" "$ARCHIVE.id"
  with_progress "saving $ARCHIVE" "$OUT/save.log" \
    podman save --format oci-archive -o "$ARCHIVE.tmp" "$IMAGE"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "$built_id" > "$ARCHIVE.id"
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size="$(stat -c %s "$ARCHIVE")"
if [ "${TALLY_IMAGE_GZIP_SIZE:-1}" = 1 ]; then
  with_progress "measuring its gzip'ed size" "$OUT/gzip.log" sh -c "gzip -6 -c '$ARCHIVE' | wc -c > '$OUT/gzip-size'"
  img_say "archive: $ARCHIVE, $(mib "$size") ($(mib "$(cat "$OUT/gzip-size")") gzip'ed)"
else
  img_say "archive: $ARCHIVE, $(mib "$size")"
fi
img_say "image: $IMAGE"
img_say "load it: podman load -i $ARCHIVE; on a Kubernetes node: ctr -n k8s.io images import $ARCHIVE"
