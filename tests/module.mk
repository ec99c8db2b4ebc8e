# tests/module.mk — test targets that need more than the generic C rule:
# a Go program using github.com/mattn/go-sqlite3 (Debian's
# golang-github-mattn-go-sqlite3-dev), built with SQLite linked statically
# inside the executable, as a service built with CGO and -static would be.

GO_TARGET := $(BUILD)/targets/goapp-static

$(GO_TARGET): tests/targets/go/goapp.go
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd tests/targets/go && GOPATH=/usr/share/gocode GO111MODULE=off \
		GOCACHE=$(abspath $(BUILD))/gocache CGO_ENABLED=1 CGO_LDFLAGS="-lm -ldl -lpthread" \
		go build -ldflags '-linkmode external -extldflags "-static"' \
		-o $(abspath $@) goapp.go 2>&1 | { grep -v -e "statically linked applications requires" \
			-e "in function .unixDlOpen" -e "^# command-line-arguments" || true; }
	@test -x $@

MODULE_TEST_DEPS += $(GO_TARGET)

# mattnwork: a database/sql workload on mattn/go-sqlite3 as Go services ship
# it: linked statically (libsqlite3.a inside) or dynamically (libsqlite3.so),
# each also stripped as release builds are (-ldflags "-s -w").
GO_ENV := GOPATH=/usr/share/gocode GO111MODULE=off CGO_ENABLED=1
GO_FILTER := { grep -v -e "statically linked applications requires" -e "in function .unixDlOpen" \
	-e "^\# command-line-arguments" || true; }
MATTN_TARGETS := $(addprefix $(BUILD)/targets/mattnwork-,static static-stripped dynamic dynamic-stripped)

$(BUILD)/targets/mattnwork-static $(BUILD)/targets/mattnwork-static-stripped: tests/targets/go/mattnwork.go
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd tests/targets/go && $(GO_ENV) GOCACHE=$(abspath $(BUILD))/gocache CGO_LDFLAGS="-lm -ldl -lpthread" \
		go build -ldflags '$(if $(findstring stripped,$@),-s -w )-linkmode external -extldflags "-static"' \
		-o $(abspath $@) mattnwork.go 2>&1 | $(GO_FILTER)
	@test -x $@

$(BUILD)/targets/mattnwork-dynamic $(BUILD)/targets/mattnwork-dynamic-stripped: tests/targets/go/mattnwork.go
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd tests/targets/go && $(GO_ENV) GOCACHE=$(abspath $(BUILD))/gocache \
		go build $(if $(findstring stripped,$@),-ldflags '-s -w') -o $(abspath $@) mattnwork.go 2>&1 | $(GO_FILTER)
	@test -x $@

MODULE_TEST_DEPS += $(MATTN_TARGETS)

# SQLite linked statically with an extension's entry point (ext.c) linked
# before the program's code (main.c).
STATICEXT_TARGET := $(BUILD)/targets/static_ext

$(STATICEXT_TARGET): tests/targets/staticext/ext.c tests/targets/staticext/main.c
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) -O2 -g $(WARN) $^ -l:libsqlite3.a -lm -ldl -lpthread -o $@

MODULE_TEST_DEPS += $(STATICEXT_TARGET)

# Targets with Debian's libsqlite3.a linked into the executable (another
# build than the tool's libsqlite3): explicit rules, which take precedence
# over the generic one (that links -lsqlite3 dynamically).
SQLITE_STATIC_A := $(shell $(CC) -print-file-name=libsqlite3.a)

$(BUILD)/targets/static_errors: tests/targets/static_errors.c
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) -O2 -g $(WARN) $< $(SQLITE_STATIC_A) -lm -ldl -lpthread -o $@

# layout_check links the tool's core library (calibration and decoding).
$(BUILD)/targets/layout_check: tests/targets/layout_check.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) $(CPPFLAGS) -O2 -g $(WARN) $(SANFLAGS) $< $(CORE_LIB) $(SQLITE_STATIC_A) -ldw -lelf -lz -lcapstone -lm -ldl \
		-lpthread -o $@

# Loads libsqlite3 only with dlopen (not linked with it).
DLLOOP_TARGET := $(BUILD)/targets/dlloop

$(DLLOOP_TARGET): tests/targets/dl/dlloop.c
	@mkdir -p $(dir $@)
	$(call msg,TARGET,$@)
	$(Q)$(CC) -O2 -g $(WARN) $< -ldl -o $@

MODULE_TEST_DEPS += $(DLLOOP_TARGET)

# A Go program using database/sql with a pure-Go driver of our own
# (tests/targets/go/puresql: no C SQLite at all, as with modernc.org/sqlite),
# static (CGO_ENABLED=0), built with symbols and stripped (-s -w).
PUREGO_SRCS := $(wildcard tests/targets/go/puresql/*.go tests/targets/go/puresql/memsqlite/*.go)
PUREGO_TARGETS := $(BUILD)/targets/go-puresql $(BUILD)/targets/go-puresql-stripped

$(BUILD)/targets/go-puresql $(BUILD)/targets/go-puresql-stripped: $(PUREGO_SRCS)
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd tests/targets/go/puresql && GOPATH=/usr/share/gocode GO111MODULE=off \
		GOCACHE=$(abspath $(BUILD))/gocache CGO_ENABLED=0 \
		go build $(if $(findstring stripped,$@),-ldflags "-s -w") -o $(abspath $@) main.go

# The same, position-independent (-buildmode=pie): loaded at a random
# address, its itabs moved by the load bias.
$(BUILD)/targets/go-puresql-pie: $(PUREGO_SRCS)
	@mkdir -p $(dir $@) $(BUILD)/gocache
	$(call msg,GO,$@)
	$(Q)cd tests/targets/go/puresql && GOPATH=/usr/share/gocode GO111MODULE=off \
		GOCACHE=$(abspath $(BUILD))/gocache CGO_ENABLED=0 \
		go build -buildmode=pie -o $(abspath $@) main.go

PUREGO_TARGETS += $(BUILD)/targets/go-puresql-pie
MODULE_TEST_DEPS += $(PUREGO_TARGETS)
