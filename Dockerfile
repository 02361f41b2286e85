# tally's container image.
#
#   docker build -t REGISTRY/tally:0.1.0 .        (or podman build)
#
# Two stages: `build` compiles the BPF objects, the addon and the TypeScript,
# and lays the runtime files out under /stage with scripts/image/stage.sh;
# `runtime` is Debian 12 slim plus libelf1 and that /stage tree. The agent
# runs as root with the chart's capabilities and writes no files, so a
# read-only root file system suits it.
#
# `npm run image` builds the `runtime` stage of this same file without any
# registry (scripts/image/build.sh): its FROM becomes a debootstrap'ed Debian
# 12, and its COPY --from=build an image holding the /stage that stage.sh
# made on the host; every other line is taken from here as it is.
#
# The BPF objects are CO-RE: the build reads the build machine's
# /sys/kernel/btf/vmlinux only for type definitions, and the objects load on
# any kernel with BTF.

ARG NODE_IMAGE=docker.io/library/node:20-bookworm
ARG RUNTIME_BASE=docker.io/library/debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
# The toolchain of scripts/setup.sh's build mode, in a layer of its own so a
# source change does not reinstall it.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      clang-16 llvm-16 bpftool libelf-dev zlib1g-dev linux-libc-dev pkg-config make g++ python3 dpkg-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN TALLY_SETUP=build bash scripts/setup.sh \
 && bash scripts/image/stage.sh /stage

FROM ${RUNTIME_BASE} AS runtime
# bookworm-slim lacks libelf1, which the addon links; the offline base has it
# already and no network to fetch it.
RUN dpkg-query -W -f='${Status}' libelf1 2>/dev/null | grep -q 'install ok installed' \
 || { apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libelf1 \
      && rm -rf /var/lib/apt/lists/*; }
COPY --from=build /stage/ /
ENTRYPOINT ["/opt/tally/bin/tally"]
