# bench/module.mk — the tracing-cost benchmark (issue 7, docs/performance.md).
# Included by the top Makefile; paths are relative to the top.
#
#   $(BUILD)/bench/workload        W1..W4 against :memory: / a file (the target)
#   $(BUILD)/bench/libinproc.so    LD_PRELOAD: sqlite3_trace_v2 -> local store
#   $(BUILD)/bench/pipeline_bench  recorder -> local store, and remote sender ->
#                                  ingest server on loopback; no kernel
#
#   make bench         full run (several minutes); rewrites docs/performance.md
#   make bench-report  `report` over 1 million entries (time, memory); updates
#                      its paragraph of docs/performance.md
#   make bench-quick   under a minute, in-memory databases only; prints the
#                      table (and writes $(BUILD)/bench/quick.md)
#   BENCH_ARGS=...     extra arguments for bench/run.py (e.g. --only W2)
#
# The workload and the preload library are never sanitized (they are what
# gets traced, like the test targets). The core archive's objects are not
# position-independent, so the preload library links a -fPIC twin of it,
# $(BUILD)/bench/libsqltrace-core-pic.a, built from the same sources: the
# linker takes from it only what the library uses (the store, the entry,
# and whatever they come to need), so nothing here lists store internals.

BENCH_DIR      := $(BUILD)/bench
BENCH_WORKLOAD := $(BENCH_DIR)/workload
BENCH_INPROC   := $(BENCH_DIR)/libinproc.so
BENCH_PIPELINE := $(BENCH_DIR)/pipeline_bench
BENCH_BINS     := $(BENCH_WORKLOAD) $(BENCH_INPROC) $(BENCH_PIPELINE)
GOBENCH        := $(addprefix $(BENCH_DIR)/gobench-,static static-stripped nolx-stripped pure pure-stripped)
BENCH_PIC_OBJS := $(patsubst %.c,$(BENCH_DIR)/pic/%.o,$(CORE_SRCS))
BENCH_PIC_LIB  := $(BENCH_DIR)/libsqltrace-core-pic.a
BENCH_PY       ?= python3

$(BENCH_WORKLOAD): bench/workload.c
	@mkdir -p $(dir $@)
	$(call msg,BENCH,$@)
	$(Q)$(CC) -O2 -g $(WARN) $< -lsqlite3 -o $@

$(BENCH_DIR)/pic/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -O2 -g -fPIC $(WARN) -MMD -MP -c $< -o $@

$(BENCH_PIC_LIB): $(BENCH_PIC_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BENCH_INPROC): bench/inproc_preload.c $(BENCH_PIC_LIB)
	@mkdir -p $(dir $@)
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CPPFLAGS) -O2 -g -fPIC -fvisibility=hidden $(WARN) -shared -Wl,-z,defs \
		-Wl,--exclude-libs,ALL $< $(BENCH_PIC_LIB) -Wl,--as-needed $(LDLIBS) -ldl -o $@

$(BENCH_PIPELINE): bench/pipeline_bench.c $(CORE_LIB) $(wildcard store/*.h)
	@mkdir -p $(dir $@)
	$(call msg,BENCH,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) $< $(CORE_LIB) $(LDLIBS) -o $@

-include $(wildcard $(BENCH_DIR)/pic/*/*.d)

bench: $(TOOL) $(BENCH_BINS) $(TARGET_BINS) $(GOBENCH)
	$(BENCH_PY) bench/run.py --build $(BUILD) --write-doc docs/performance.md $(BENCH_ARGS)
	$(BENCH_PY) bench/report_bench.py --build $(BUILD) --update-doc docs/performance.md
	$(BENCH_PY) bench/go_bench.py --build $(BUILD) --update-doc docs/performance.md

# A Go service's database/sql loop, untraced and traced (bench/go_bench.py;
# root). gobench-static: mattn/go-sqlite3 with libsqlite3.a inside;
# gobench-static-stripped: the same built as releases are (-s -w).
$(BENCH_DIR)/gobench-static $(BENCH_DIR)/gobench-static-stripped: bench/go/gobench.go
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd bench/go && $(GO_ENV) GOCACHE=$(abspath $(BUILD))/gocache CGO_LDFLAGS="-lm -ldl -lpthread" \
		go build -ldflags '$(if $(findstring stripped,$@),-s -w )-linkmode external -extldflags "-static"' \
		-o $(abspath $@) gobench.go 2>&1 | $(GO_FILTER)
	@test -x $@

# gobench-nolx-stripped: as releases built with -tags sqlite_omit_load_extension
# are: stripped, with a SQLite that has no extension API table (not the
# system's; tests/sqlite_no_api_table.sh), found through its cgo wrappers.
$(BENCH_DIR)/gobench-nolx-stripped: bench/go/gobench.go tests/sqlite_no_api_table.sh
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(Q)tests/sqlite_no_api_table.sh $(BUILD)
	$(call msg,GO,$@)
	$(Q)cd bench/go && $(GO_ENV) GOCACHE=$(abspath $(BUILD))/gocache \
		CGO_LDFLAGS="-L$(abspath $(BUILD))/targets/cgo-nolx -lm -ldl -lpthread" \
		go build -tags sqlite_omit_load_extension -ldflags '-s -w -linkmode external -extldflags "-static"' \
		-o $(abspath $@) gobench.go 2>&1 | $(GO_FILTER)
	@test -x $@

# gobench-pure: the pure-Go driver of the tests (no C SQLite: database/sql
# probed), CGO_ENABLED=0, stripped or not.
$(BENCH_DIR)/gobench-pure $(BENCH_DIR)/gobench-pure-stripped: bench/go/gobench_pure.go \
		$(wildcard tests/targets/go/puresql/memsqlite/*.go)
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd bench/go && $(GO_ENV) GOCACHE=$(abspath $(BUILD))/gocache CGO_ENABLED=0 \
		go build $(if $(findstring stripped,$@),-ldflags "-s -w") -o $(abspath $@) gobench_pure.go

.PHONY: bench-go
bench-go: $(TOOL) $(GOBENCH)
	$(BENCH_PY) bench/go_bench.py --build $(BUILD) --update-doc docs/performance.md

# `sqltrace-bpf report` over 1 million entries (bench/report_bench.py; no root)
.PHONY: bench-report
bench-report: $(TOOL)
	$(BENCH_PY) bench/report_bench.py --build $(BUILD) --update-doc docs/performance.md

bench-quick: $(TOOL) $(BENCH_BINS)
	$(BENCH_PY) bench/run.py --build $(BUILD) --quick --write-doc $(BENCH_DIR)/quick.md $(BENCH_ARGS)
