# Makefile — builds sqltrace-bpf (CO-RE BPF skeleton + user space), its tests,
# targets and benchmarks into one folder, $(BUILD). `make help` lists targets.
#
# Layout of the build folder:
#   build/sqltrace-bpf          the tool (BPF object embedded as a skeleton)
#   build/bpf/                  BPF objects and the generated skeleton header
#   build/obj/                  user-space objects; build/libsqltrace-core.a
#   build/tests/                unit test binaries; build/targets/ test targets
#
# Variables: V=1 prints every command; SAN=1 builds with ASan+UBSan into
# build-san/ (make SAN=1 test runs the whole suite against that build).

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

# `make` with no target builds everything (the tool, its tests and targets),
# whatever rule an included module.mk or this file happens to list first.
.DEFAULT_GOAL := all

ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := x86
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS += -D_GNU_SOURCE -I$(BUILD)/bpf -Ibpf -Iuser -Iuser/find -Iuser/attach -Iuser/consume -Istore -Ishim -Icommon
LDLIBS   := -lbpf -ldw -lelf -lz -lsqlite3 -lcurl -lcjson -lmicrohttpd -lcapstone -lpthread -lm

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# ---- BPF -------------------------------------------------------------------
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux -Ibpf -I/usr/include/$(shell $(CC) -dumpmachine) -Wall -Werror

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) vmlinux/vmlinux.h | $(BUILD)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# ---- user space ------------------------------------------------------------
# Every .c in user/ and store/ except user/main.c goes into one static
# library, so unit tests link exactly the code the tool runs.
CORE_SRCS := $(filter-out user/main.c,$(wildcard user/*.c user/find/*.c user/attach/*.c user/consume/*.c store/*.c common/*.c))
CORE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRCS))
CORE_LIB  := $(BUILD)/libsqltrace-core.a
TOOL      := $(BUILD)/sqltrace-bpf

$(BUILD)/obj/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) -MMD -MP -c $< -o $@

$(CORE_LIB): $(CORE_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(TOOL): $(BUILD)/obj/user/main.o $(CORE_LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $^ $(LDLIBS) -o $@

# ---- tests -----------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TARGET_SRCS := $(wildcard tests/targets/*.c)
TARGET_BINS := $(patsubst tests/targets/%.c,$(BUILD)/targets/%,$(TARGET_SRCS))

$(BUILD)/tests/%: tests/unit/%.c tests/harness.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(WARN) $(SANFLAGS) $< $(CORE_LIB) $(LDLIBS) -o $@

# Targets are plain programs that use SQLite; never sanitized (they are what
# gets traced, and ASan's allocator would change what we observe).
$(BUILD)/targets/%: tests/targets/%.c
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) -O2 -g $(WARN) -Ishim $< -lsqlite3 -lpthread -o $@

$(BUILD)/bpf:
	@mkdir -p $@

-include $(wildcard */module.mk)
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- fuzz targets of the file-handling code ---------------------------------
# libFuzzer targets for what the tool reads from files other users own:
# ELF files (user/find/elfsym.c), /proc/PID/maps (user/find/procmaps.c), function
# code (user/find/probepos.c; user/find/codewalk.c and user/find/layout_decode.c), config
# files (user/config.c). Like the ingest decoder's (store/module.mk):
#   make fuzz                      builds them all into $(BUILD)/fuzz/
#   make fuzz-run-files            runs each for FUZZ_TIME seconds (60)
# New inputs go to $(BUILD)/fuzz/corpus-NAME/; the seeds in
# tests/fuzz/corpus/NAME/ are only read, and replayed on every `make unit`
# by tests/unit/test_fuzz_corpus.c. A crash lands in $(BUILD)/fuzz/crash-*:
# once fixed, copy it into the seeds.
FILE_FUZZ_NAMES  := elfsym procmaps probepos codewalk config gosym
FILE_FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FILE_FUZZ_NAMES))
FILE_FUZZ_SRCS   := user/find/elfsym.c user/find/procmaps.c user/find/probepos.c user/find/codewalk.c \
	user/find/layout_decode.c user/find/ehframe.c user/find/apitable.c user/find/cgofind.c user/find/gosym.c user/find/godwarf.c \
	user/find/gosql.c user/config.c common/safefile.c
FILE_FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FILE_FUZZ_TIME   ?= $(or $(FUZZ_TIME),60)

$(FILE_FUZZ_BINS): $(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FILE_FUZZ_SRCS) \
		$(wildcard $(FILE_FUZZ_SRCS:.c=.h)) user/find/gosql_find.h
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) $(FILE_FUZZ_CFLAGS) $(WARN) $< $(FILE_FUZZ_SRCS) \
		-ldw -lelf -lz -lcapstone -o $@

.PHONY: fuzz fuzz-run-files
fuzz: $(FILE_FUZZ_BINS)

fuzz-run-files: $(FILE_FUZZ_BINS)
	@rc=0; for n in $(FILE_FUZZ_NAMES); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		echo "fuzz_$$n for $(FILE_FUZZ_TIME) s"; \
		( cd $(BUILD)/fuzz && ./fuzz_$$n -max_total_time=$(FILE_FUZZ_TIME) -max_len=65536 \
			$(FUZZ_ARGS) corpus-$$n $(CURDIR)/tests/fuzz/corpus/$$n ) || rc=1; \
	done; exit $$rc

# Built with the tests (the corpora are replayed by test_fuzz_corpus) so
# the targets cannot rot unnoticed; left out without clang's libFuzzer.
ifneq ($(wildcard $(shell $(CLANG) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)),)
MODULE_TEST_DEPS += $(FILE_FUZZ_BINS)
endif

# ---- top-level targets -------------------------------------------------------
.PHONY: all tool tests-build deps test unit demo bench bench-quick clean vmlinux help install uninstall deb

all: $(TOOL) tests-build $(MODULE_ALL)

tool: $(TOOL)

tests-build: $(UNIT_BINS) $(TARGET_BINS) $(MODULE_TEST_DEPS)

# Debian packages needed to build, test and run the demo. Installs only what
# is missing, so repeated `make test` runs do not touch the network.
DEB_PKGS := build-essential clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev \
	libsqlite3-dev sqlite3 libcurl4-openssl-dev libcjson-dev libmicrohttpd-dev \
	systemtap-sdt-dev libcapstone-dev pkg-config python3 bpftrace \
	libprotobuf-c-dev protobuf-c-compiler \
	golang-go golang-github-mattn-go-sqlite3-dev libclang-rt-14-dev util-linux procps fossil \
	libncurses-dev tmux chromium mandoc man-db lintian dpkg-dev systemd
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

test: deps
	$(MAKE) all
	BUILD=$(BUILD) tests/run.sh

# Unit tests only (no root, no BPF).
unit: tests-build
	BUILD=$(BUILD) tests/run.sh --unit

demo: deps
	$(MAKE) all
	BUILD=$(BUILD) tests/demo.sh

# Regenerate vmlinux/vmlinux.h from the running kernel's BTF.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

clean:
	rm -rf $(BUILD)

help:
	@echo "make            build everything into $(BUILD)/"
	@echo "make deps       install the Debian packages (apt-get)"
	@echo "make test       deps + build + all tests (BPF tests need root)"
	@echo "make unit       unit tests only (no root)"
	@echo "make demo       deps + build + trace a demo program into traces.db"
	@echo "make bench      benchmarks (see docs/performance.md)"
	@echo "make fuzz       libFuzzer targets; fuzz-run, fuzz-run-files run them"
	@echo "make SAN=1 ...  ASan/UBSan build in build-san/"
	@echo "make vmlinux    regenerate vmlinux/vmlinux.h from this kernel"
	@echo "make install    the tool, man pages, completion, systemd units, shim"
	@echo "                [PREFIX=/usr/local] [DESTDIR=]; make uninstall removes them"
	@echo "make deb        a Debian package in $(BUILD)/deb/ (see dist/module.mk)"
