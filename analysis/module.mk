# analysis/module.mk — `sqltrace-bpf report` and `top` (analysis/), included
# by the top Makefile: its objects join the core library (so unit tests
# link them), it adds ncurses, and it builds the fingerprinter's libFuzzer
# target.
#
#   make fuzz                        also builds $(BUILD)/fuzz/fuzz_fingerprint
#   make fuzz-run-fingerprint        fuzzes it for FUZZ_TIME seconds (60)
# Seeds: tests/fuzz/corpus/fingerprint/ (replayed by test_fuzz_corpus).

ANALYSIS_SRCS := $(wildcard analysis/*.c)
ANALYSIS_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(ANALYSIS_SRCS))
CPPFLAGS      += -Ianalysis
LDLIBS        += -lncursesw -ltinfo

$(CORE_LIB): $(ANALYSIS_OBJS)

FP_FUZZ_BIN := $(BUILD)/fuzz/fuzz_fingerprint

$(FP_FUZZ_BIN): tests/fuzz/fuzz_fingerprint.c analysis/fingerprint.c analysis/fingerprint.h
	@mkdir -p $(dir $@)
	$(call msg,FUZZ,$@)
	$(Q)$(CLANG) $(CPPFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		$(WARN) $< analysis/fingerprint.c -o $@

.PHONY: fuzz fuzz-run-fingerprint
fuzz: $(FP_FUZZ_BIN)

fuzz-run-fingerprint: $(FP_FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus-fingerprint
	cd $(BUILD)/fuzz && ./fuzz_fingerprint -max_total_time=$(or $(FUZZ_TIME),60) -max_len=4096 \
		$(FUZZ_ARGS) corpus-fingerprint $(CURDIR)/tests/fuzz/corpus/fingerprint

ifneq ($(wildcard $(shell $(CLANG) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)),)
MODULE_TEST_DEPS += $(FP_FUZZ_BIN)
endif
