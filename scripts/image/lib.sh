# Shared by the scripts in scripts/image/: names, progress output, and the
# container tools this host needs. Sourced, not run.

# The runtime base: Debian 12 minbase plus libelf1 (the addon links libelf
# and zlib dynamically; minbase has zlib, libstdc++ and libc).
BASE_SUITE=bookworm
BASE_PACKAGES=libelf1
# Bump when the recipe below changes, so a cached base is rebuilt.
BASE_RECIPE=1
BASE_IMAGE="localhost/tally-base:${BASE_SUITE}-r${BASE_RECIPE}"
# Outside the repository: a clean clone or `git clean` keeps it.
CACHE_DIR="${TALLY_IMAGE_CACHE:-/var/cache/tally-image}"

img_say() { printf '[image] %s\n' "$*" >&2; }
img_die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

# Runs a long command with its output in LOG, printing a dot every 5 s so a
# terminal or CI log shows it is alive; on failure prints the log's tail.
with_progress() {
  local what="$1" log="$2"; shift 2
  local started=$SECONDS
  printf '[image] %s ' "$what" >&2
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5 & wait $! 2>/dev/null || true
    kill -0 "$pid" 2>/dev/null && printf '.' >&2
  done
  if wait "$pid"; then
    printf ' %ds\n' "$((SECONDS - started))" >&2
  else
    printf ' failed after %ds\n' "$((SECONDS - started))" >&2
    tail -20 "$log" >&2
    return 1
  fi
}

# podman, buildah, runc and debootstrap from Debian, when missing.
IMAGE_APT_PACKAGES=(podman buildah runc debootstrap)
ensure_image_tools() {
  local missing=() p
  # Two test files may ask at once; apt would refuse the second.
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/tools.lock"
  flock 8
  for p in "${IMAGE_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || img_die "installing ${missing[*]} needs root"
    img_say "installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  exec 8>&-
}

# crun, podman's default on Debian, refuses a hybrid cgroup v1/v2 host; runc
# runs on both layouts.
PODMAN=(podman --runtime runc)
