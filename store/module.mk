# store/module.mk — extra rules for store/: the libFuzzer target of the
# ingest decoder (tests/fuzz/fuzz_ingest_decode.c), included by the top
# Makefile.
#
#   make fuzz                       build $(BUILD)/fuzz/fuzz_ingest_decode
#   make fuzz-run                   fuzz for FUZZ_TIME seconds (default 60)
#   make fuzz-run FUZZ_TIME=1800    half an hour; -jobs/-workers: FUZZ_ARGS
#
# New interesting inputs go to $(BUILD)/fuzz/corpus-ingest/ (the seeds in
# tests/fuzz/corpus/ingest/ are only read); a crash is written to
# $(BUILD)/fuzz/crash-*: reproduce it with
#   $(BUILD)/fuzz/fuzz_ingest_decode $(BUILD)/fuzz/crash-...
# and keep it as a seed once fixed (copy it into tests/fuzz/corpus/ingest/:
# test_fuzz_corpus replays every seed on each `make unit`). To shrink the
# grown corpus back into the seeds: fuzz_ingest_decode -merge=1
# tests/fuzz/corpus/ingest $(BUILD)/fuzz/corpus-ingest.
#
# cJSON is Debian's shared library, not instrumented: coverage guides the
# fuzzer through our code, and ASan still checks every access we make.

FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_BIN    := $(FUZZ_DIR)/fuzz_ingest_decode
FUZZ_SRCS   := store/json_encode.c store/json_decode.c store/json_arena.c store/entry.c
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_TIME   ?= 60
FUZZ_ARGS   ?=

$(FUZZ_BIN): tests/fuzz/fuzz_ingest_decode.c $(FUZZ_SRCS) $(wildcard store/json*.h) store/entry.h
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) $(WARN) $< $(FUZZ_SRCS) -lcjson -o $@

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_BIN)

fuzz-run: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_DIR)/corpus-ingest
	cd $(FUZZ_DIR) && ./fuzz_ingest_decode -max_total_time=$(FUZZ_TIME) -max_len=16384 \
		-dict=$(CURDIR)/tests/fuzz/ingest.dict $(FUZZ_ARGS) \
		corpus-ingest $(CURDIR)/tests/fuzz/corpus/ingest

# Built with the tests (not run: test_fuzz_corpus replays the corpus) so the
# target cannot rot unnoticed; left out where clang's libFuzzer runtime
# (Debian's libclang-rt-14-dev, in `make deps`) is missing.
FUZZ_RT := $(wildcard $(shell $(CLANG) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null))
ifneq ($(FUZZ_RT),)
MODULE_TEST_DEPS += $(FUZZ_BIN)
endif

# ---- the OpenTelemetry exporter's protobuf code (store/otlp_encode.c) ------
# protoc-c (Debian's protobuf-c-compiler) turns store/otlp/trace.proto into
# C under $(BUILD)/gen/otlp/ only; the object joins the core library.
OTLP_GEN   := $(BUILD)/gen/otlp
OTLP_PB_O  := $(BUILD)/obj/gen/otlp/trace.pb-c.o
CPPFLAGS   += -I$(OTLP_GEN)
LDLIBS     += -lprotobuf-c

$(OTLP_GEN)/%.pb-c.c $(OTLP_GEN)/%.pb-c.h: store/otlp/%.proto
	@mkdir -p $(OTLP_GEN)
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --c_out=$(OTLP_GEN) -Istore/otlp $<

$(OTLP_PB_O): $(OTLP_GEN)/trace.pb-c.c $(OTLP_GEN)/trace.pb-c.h
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) -c $< -o $@

$(CORE_LIB): $(OTLP_PB_O)
$(BUILD)/obj/store/otlp_encode.o $(BUILD)/obj/store/otlp_sink.o: $(OTLP_GEN)/trace.pb-c.h

# ---- fuzz targets of what the OTLP exporter reads ---------------------------
# tests/fuzz/fuzz_otlp_response.c: the collector's answers (partial success);
# tests/fuzz/fuzz_sqltext_otlp.c: SQL text as the traced program wrote it
# (traceparent comments, span naming). Seeds in tests/fuzz/corpus/
# otlp_response/ and sqltext/, replayed by test_fuzz_corpus.
#   make fuzz-run-otlp [FUZZ_TIME=60]
OTLP_FUZZ_BINS := $(FUZZ_DIR)/fuzz_otlp_response $(FUZZ_DIR)/fuzz_sqltext_otlp
OTLP_FUZZ_SRCS := store/otlp_encode.c $(OTLP_GEN)/trace.pb-c.c store/json_arena.c \
	store/json_encode.c store/entry.c user/consume/traceparent.c

$(OTLP_FUZZ_BINS): $(FUZZ_DIR)/%: tests/fuzz/%.c $(OTLP_FUZZ_SRCS) store/otlp_encode.h \
		user/consume/traceparent.h
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) $(FUZZ_CFLAGS) $(WARN) $< $(OTLP_FUZZ_SRCS) -lcjson -lprotobuf-c -o $@

.PHONY: fuzz-run-otlp
fuzz: $(OTLP_FUZZ_BINS)

fuzz-run-otlp: $(OTLP_FUZZ_BINS)
	@rc=0; for n in otlp_response sqltext; do \
		b=$$( [ $$n = sqltext ] && echo fuzz_sqltext_otlp || echo fuzz_$$n ); \
		mkdir -p $(FUZZ_DIR)/corpus-$$n; \
		( cd $(FUZZ_DIR) && ./$$b -max_total_time=$(FUZZ_TIME) -max_len=4096 $(FUZZ_ARGS) \
			corpus-$$n $(CURDIR)/tests/fuzz/corpus/$$n ) || rc=1; \
	done; exit $$rc

ifneq ($(FUZZ_RT),)
MODULE_TEST_DEPS += $(OTLP_FUZZ_BINS)
endif
