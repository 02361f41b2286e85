# Build graph for tally. scripts/setup.sh calls `make all`; make rebuilds only
# what is older than its sources and says what it builds.

CLANG      ?= clang-16
LLVM_STRIP ?= llvm-strip-16
# What libbpf reads of a BPF object is its code, maps, symbols, .BTF and
# .BTF.ext; the DWARF (-g is what makes clang emit BTF) and the relocations
# of the BTF sections (libbpf skips them) are 40% of a policy object, read
# and paged in again for every hook that opens it.
STRIP_BPF   = $(LLVM_STRIP) -g --remove-section=.rel.BTF --remove-section=.rel.BTF.ext $@
BPFTOOL    ?= bpftool
ARCH       := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

LIBBPF_SRC := .deps/libbpf-1.1.2/src
LIBBPF_OUT := build/libbpf
LIBBPF_A   := $(LIBBPF_OUT)/root/lib/libbpf.a
LIBBPF_INC := $(LIBBPF_OUT)/root/include

VMLINUX_H  := build/vmlinux/vmlinux.h
BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,build/bpf/%.bpf.o,$(BPF_SRCS))
# The policy programs again for kernels without bpf_loop() or
# bpf_get_current_task_btf() (5.10 to 5.16): see bpf/compat.bpf.h.
BPF_OBJS   += build/bpf/policy-compat.bpf.o
# And once more, with the USDT program, for USDT hooks only: libbpf copies an
# object's every program at open, so the others do not pay for it. Built as
# the compat flavour, which loads on every kernel (a USDT probe's trap costs
# far more than what compat's reads add).
BPF_OBJS   += build/bpf/policy-usdt.bpf.o
# And the default build without the bpf_rdonly_cast kfunc, for kernels with
# bpf_loop() but without it (5.17 to 6.1): see bpf/policy.bpf.c.
BPF_OBJS   += build/bpf/policy-nokfunc.bpf.o
BPF_HDRS   := $(wildcard bpf/*.h)

# BPF objects used only by tests (test/bpf/*.bpf.c).
TEST_BPF_OBJS := $(patsubst test/bpf/%.bpf.c,build/test-bpf/%.bpf.o,$(wildcard test/bpf/*.bpf.c))

# Benchmark helpers (bench/bpf/*.bpf.c, bench/c/*.c).
BENCH_BPF_OBJS := $(patsubst bench/bpf/%.bpf.c,build/bench-bpf/%.bpf.o,$(wildcard bench/bpf/*.bpf.c))
BENCH_BINS := $(patsubst bench/c/%.c,build/bench/%,$(wildcard bench/c/*.c))

ADDON      := native/build/Release/tally_native.node
NATIVE_SRC := $(wildcard native/*.cc native/*.h) native/binding.gyp

TS_SRCS    := $(shell find src test bench -name '*.ts' 2>/dev/null) tsconfig.json
TS_STAMP   := dist/.stamp

# The headers of the node that runs the build, where its installation has
# them (/usr for a distribution package, /usr/local for nodejs.org's tarball
# and the official images): node-gyp would otherwise download them.
NODE_PREFIX := $(patsubst %/bin/node,%,$(realpath $(shell command -v node)))
NODEDIR    := $(shell [ -f $(NODE_PREFIX)/include/node/node.h ] && echo --nodedir=$(NODE_PREFIX))

SYSCALLS   := build/syscalls.json
UNISTD_H   := $(firstword $(wildcard /usr/include/$(shell uname -m)-linux-gnu/asm/unistd_64.h /usr/include/asm/unistd_64.h /usr/include/asm-generic/unistd.h))

.PHONY: all runtime clean
all: $(BPF_OBJS) $(TEST_BPF_OBJS) $(BENCH_BPF_OBJS) $(BENCH_BINS) $(ADDON) $(TS_STAMP) $(SYSCALLS)

# What the agent itself needs at run time (scripts/image/stage.sh copies it
# into the image); the Dockerfile's build stage makes only this.
runtime: $(BPF_OBJS) $(ADDON) $(TS_STAMP) $(SYSCALLS)

# Syscall numbers of this architecture, for hooks that fall back to the raw
# syscall tracepoints (which only know a syscall by its number).
$(SYSCALLS): $(UNISTD_H)
	@echo "[build] $@ from $<"
	@mkdir -p $(dir $@)
	@sed -n 's/^#define __NR_\([a-z0-9_]*\)[[:space:]]\+\([0-9]\+\)$$/"\1": \2/p' $< | paste -sd, | sed 's/^/{/; s/$$/}/' > $@.tmp && mv $@.tmp $@

# libbpf as position-independent static code: Debian's libbpf.a is not PIC and
# cannot be linked into a shared object such as a .node addon.
$(LIBBPF_A): $(LIBBPF_SRC)/libbpf.c
	@echo "[build] libbpf 1.1.2 (static, -fPIC)"
	@mkdir -p $(LIBBPF_OUT)/obj
	@$(MAKE) --no-print-directory -s -C $(LIBBPF_SRC) BUILD_STATIC_ONLY=1 \
	  OBJDIR=$(abspath $(LIBBPF_OUT)/obj) DESTDIR=$(abspath $(LIBBPF_OUT)/root) \
	  PREFIX= LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include \
	  EXTRA_CFLAGS="-fPIC -O2 -g" install install_uapi_headers >/dev/null

# vmlinux.h is generated from the running kernel's BTF; it is never committed.
$(VMLINUX_H): /sys/kernel/btf/vmlinux
	@echo "[build] $@ from /sys/kernel/btf/vmlinux"
	@mkdir -p $(dir $@)
	@$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# libbpf's usdt.bpf.h includes <linux/errno.h>, whose <asm/errno.h> lives in
# the multiarch directory that -target bpf does not search: added last, so it
# never shadows vmlinux.h or libbpf's headers.
BPF_SYS_INC := -idirafter /usr/include/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

build/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf $(BPF_SYS_INC) -c $< -o $@
	@$(STRIP_BPF)

build/bpf/policy-compat.bpf.o: bpf/policy.bpf.c $(BPF_HDRS) $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -DTALLY_COMPAT -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf $(BPF_SYS_INC) -c $< -o $@
	@$(STRIP_BPF)

build/bpf/policy-nokfunc.bpf.o: bpf/policy.bpf.c $(BPF_HDRS) $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -DTALLY_NO_KFUNC -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf $(BPF_SYS_INC) -c $< -o $@
	@$(STRIP_BPF)

build/bpf/policy-usdt.bpf.o: bpf/policy.bpf.c $(BPF_HDRS) $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -DTALLY_COMPAT -DTALLY_USDT -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf $(BPF_SYS_INC) -c $< -o $@
	@$(STRIP_BPF)

build/bench-bpf/%.bpf.o: bench/bpf/%.bpf.c $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf -c $< -o $@

build/bench/%: bench/c/%.c
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@cc -O2 -Wall -Werror -o $@ $<

build/test-bpf/%.bpf.o: test/bpf/%.bpf.c $(VMLINUX_H) $(LIBBPF_A)
	@echo "[build] $@"
	@mkdir -p $(dir $@)
	@$(CLANG) -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	  -I$(dir $(VMLINUX_H)) -I$(LIBBPF_INC) -Ibpf -c $< -o $@

$(ADDON): $(NATIVE_SRC) $(LIBBPF_A) $(BPF_HDRS)
	@echo "[build] native addon"
	@cd native && ../node_modules/.bin/node-gyp $(NODEDIR) --loglevel=error configure build >/dev/null
	@# node-gyp leaves the .node alone when none of its own inputs changed (a bpf/ header
	@# only it includes for layouts may not be one): mark it current, or make rebuilds forever.
	@touch $@

$(TS_STAMP): $(TS_SRCS)
	@echo "[build] TypeScript"
	@rm -rf dist.new && node_modules/.bin/tsc -p tsconfig.json --outDir dist.new --noEmitOnError && rm -rf dist && mv dist.new dist
	@touch $@

clean:
	rm -rf build dist native/build
