# tests/fuzz/fuzz.mk - libFuzzer targets for every decoder and parser in libstream.
#
# Included by the top-level Makefile; also works on its own from the repo root:
#   make -f tests/fuzz/fuzz.mk fuzz-check
#
#   make fuzz            build, then run each target for FUZZ_SECONDS (default 60),
#                        one after the other, growing a corpus kept in build/fuzz/work/
#   make fuzz-check      run each target for FUZZ_CHECK_SECONDS (default 6) from a fresh
#                        copy of the checked-in corpus; one TAP line per target:
#                            ok - fuzz_X N runs in S s
#                            not ok - fuzz_X: crash (tests/fuzz/crashes/fuzz_X-crash-...)
#                        exits 1 when any target failed (after running all of them)
#   make fuzz-build      only build the targets into build/fuzz/
#   make fuzz-seeds      regenerate the seed corpus (tests/fuzz/corpus/*/seed-*)
#   make fuzz FUZZ_TARGETS=fuzz_batch   just one target (also for fuzz-check)
#
# Every target is tests/fuzz/fuzz_NAME.c with one LLVMFuzzerTestOneInput, built by
# clang with -fsanitize=fuzzer,address,undefined against libstream compiled by clang
# with -fsanitize=fuzzer-no-link,address,undefined (coverage-instrumented, and checked
# by the same sanitizers). Corpus: tests/fuzz/corpus/fuzz_NAME/ holds the seeds
# (seed-*, written by tests/fuzz/make_seeds.c) and regression inputs (crash-*,
# one for every crash found and fixed). Crash artifacts are written to
# tests/fuzz/crashes/ (git-ignored). Runs never write into the source tree's corpus.
# A target's dictionary, tests/fuzz/fuzz_NAME.dict, is used when present.
#
# A finding replays with `build/fuzz/fuzz_X tests/fuzz/crashes/fuzz_X-crash-...`;
# once fixed, copy the input to tests/fuzz/corpus/fuzz_X/crash-WHAT so every
# later fuzz-check replays it first.
#
# Needs the Debian packages clang and libclang-rt-14-dev (llvm for symbolized traces).

FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 6
FUZZ_CC            ?= clang

# Defaults for running this file on its own (the Makefile sets them already).
LIB_SRC    ?= $(sort $(wildcard libstream/*/*.c))
PKGS       ?= msgpack libuv liblz4 libzstd zlib snappy raft libcurl openssl
FUZZ_PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

FUZZ_DIR    ?= build/fuzz
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ALL    := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_CORPUS := tests/fuzz/corpus

FUZZ_WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
FUZZ_CPPFLAGS := -D_GNU_SOURCE -DSTREAM_VERSION='"fuzz"' -Ilibstream/include -Ilibstream
FUZZ_CFLAGS := -std=c17 $(FUZZ_WARN) -g -O1 -fno-omit-frame-pointer -pthread \
               -fno-sanitize-recover=undefined $(FUZZ_PKG_CFLAGS)
FUZZ_LIBS   := $(FUZZ_PKG_LIBS) -lreadline -pthread -lm

fuzz_lib_objs := $(patsubst libstream/%.c,$(FUZZ_DIR)/obj/lib/%.o,$(LIB_SRC))
# Kept after linking, so a rebuild recompiles only what changed.
.SECONDARY: $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRC))

.PHONY: fuzz fuzz-check fuzz-build fuzz-seeds

$(FUZZ_DIR)/obj/lib/%.o: libstream/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
	    -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/libstream.a: $(fuzz_lib_objs)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_DIR)/obj/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
	    -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz_%.o $(FUZZ_DIR)/libstream.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(FUZZ_LIBS)

fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))

# The seed generator is an ordinary program (gcc, no sanitizers) over libstream.
$(FUZZ_DIR)/make_seeds: tests/fuzz/make_seeds.c $(LIB_SRC)
	@mkdir -p $(@D)
	$(CC) -std=c17 $(FUZZ_WARN) $(FUZZ_CPPFLAGS) $(FUZZ_PKG_CFLAGS) -O1 -g -pthread \
	    -o $@ $^ $(FUZZ_LIBS)
fuzz-seeds: $(FUZZ_DIR)/make_seeds
	$(FUZZ_DIR)/make_seeds $(FUZZ_CORPUS)

# tests/fuzz/run.sh runs the targets one after the other and prints the TAP
# lines. fuzz-check starts each from a fresh copy of the checked-in corpus;
# fuzz keeps growing its own copy in build/fuzz/work/ across runs.
fuzz-check: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_CHECK_SECONDS) fresh $(FUZZ_TARGETS)
fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) keep $(FUZZ_TARGETS)

-include $(wildcard $(FUZZ_DIR)/obj/*.d $(FUZZ_DIR)/obj/lib/*/*.d)
