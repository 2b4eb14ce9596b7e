# stream - a partitioned, durable log for real-time data, as small Unix programs.
#
#   make            libstream.a, libstream.so and the programs into build/
#   make check      deps, then unit (cmocka) and CLI (bats) tests under ASan+UBSan,
#                   the fuzz targets briefly and a 1-minute soak
#   make soak       SOAK_MINUTES (5) of producers, a churning consumer group,
#                   retention and broker restarts, then a check that nothing was lost
#   make run        deps, build, start stream-broker with zero configuration
#   make deps       install the Debian packages that are missing
#   make bench      benchmarks (never part of check), the cost of GET /metrics among them
#   make bench-scale  broker memory and idle CPU with many clients; topic admin at scale
#   make bench-peers  the same workloads against Redis Streams and NATS JetStream
#   make bench-cluster  replication's cost (RF=3 vs one broker) and failover time
#   make soak-cluster   CLUSTER_SOAK_KILLS (50) leader kills under load, then the checkers
#   make soak-offsets   OFFSETS_SOAK_SECONDS (600) of groups committing every 50 ms:
#                   __consumer_offsets stays under a fixed size
#   make soak-proc  PROC_SOAK_KILLS (25) kill -9s of stream-proc under load, each
#                   followed by a check, then the final checker
#   make soak-source  SOURCE_SOAK_KILLS (25) kill -9s of stream-pub --url --follow
#                   --resume under load, then a check that every event is there once
#   make soak-cleaner  test_cleaner (ASan) with CLEANER_KILL_RUNS (200) kill -9s
#                   during cleaning (make check runs 25)
#   make soak-http-sink HTTP_SINK_SOAK_KILLS (25) kill -9s of stream-sub --post -g under
#                   load, then the checkers
#   make soak-connect   the connectors' soaks: soak-proc, soak-source and soak-http-sink
#   make fuzz       every libFuzzer target for FUZZ_SECONDS (check runs each briefly)
#   make install    PREFIX=/usr/local DESTDIR= (systemd units into PREFIX/lib/systemd/system)
#                   ; make uninstall ; make clean
#   make format     clang-format every C file

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    := $(PREFIX)/bin
LIBDIR    := $(PREFIX)/lib
INCDIR    := $(PREFIX)/include
MANDIR    := $(PREFIX)/share/man
DOCDIR    := $(PREFIX)/share/doc/stream
PCDIR     := $(LIBDIR)/pkgconfig
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  := $(PREFIX)/share/zsh/site-functions
# systemd searches /usr/local/lib/systemd/system as well as /lib/systemd/system.
SYSTEMDUNITDIR := $(PREFIX)/lib/systemd/system
SYSTEMD_UNITS  := stream-broker.service stream-broker@.service

CC        ?= cc
# Builds inside `make check` use every core.
NPROC     := $(shell nproc 2>/dev/null || echo 1)
# Debian packages every target needs (build, check, run). Later issues' libraries
# are listed too so a machine set up once has them all. prometheus is for tests
# only: promtool checks every scrape, and one test runs a Prometheus server.
DEPS_PKGS := build-essential pkg-config libmsgpack-dev libuv1-dev libraft-dev \
             libreadline-dev libcurl4-openssl-dev liblz4-dev libzstd-dev libsnappy-dev \
             zlib1g-dev libcmocka-dev bats bats-assert bats-support mandoc \
             clang libclang-rt-14-dev python3 jq tmux zsh fiu-utils libfiu-dev dmsetup \
             kcat python3-confluent-kafka python3-kafka nodejs nghttp2-server \
             libmicrohttpd-dev prometheus libssl-dev openssl \
             libsystemd-dev systemd libncurses-dev
# npm installs kafkajs for tests/cli/kafka-groups.bats (into tests/.npm, never
# committed): Debian's npm package only when no npm came with nodejs (a
# nodejs from elsewhere bundles its own, and conflicts with Debian's).
DEPS_NPM  := npm

PKGS      := msgpack libuv liblz4 libzstd zlib snappy raft libcurl libmicrohttpd openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# Only stream-broker links libsystemd (sd_notify, under a systemd service):
# libstream.a/.so and their pkg-config file stay free of it.
CMD_LDLIBS_broker := $(shell pkg-config --libs libsystemd 2>/dev/null || echo -lsystemd)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS  += -D_GNU_SOURCE -DSTREAM_VERSION='"$(VERSION)"' -Ilibstream/include -Ilibstream
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c17 $(WARN) -fPIC -pthread $(PKG_CFLAGS)
LDLIBS    += $(PKG_LIBS) -lreadline -pthread -lm
# ncurses for stream-top's live view only (libstream never draws).
CURSES_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null || echo -lncursesw)

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined \
             -fno-omit-frame-pointer

LIB_SRC   := $(sort $(wildcard libstream/*/*.c))
CMD_SRC   := $(sort $(wildcard cmd/stream-*.c))
CMD_COMMON_SRC := $(filter-out $(CMD_SRC),$(sort $(wildcard cmd/*.c)))
TEST_SRC  := $(sort $(wildcard tests/unit/test_*.c))
# test_metadata fails each allocation in turn through wrappers of its own.
TEST_LDFLAGS_test_metadata := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
# Headers shared by the unit tests (wire.h, client_kit.h): a change rebuilds them.
TEST_H    := $(wildcard tests/unit/*.h)
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
# What the benchmarks share (bench_util.h): a change rebuilds them.
BENCH_H   := $(wildcard tests/bench/*.h)
PROGRAMS  := $(patsubst cmd/%.c,%,$(CMD_SRC))
MAN_PAGES := $(sort $(wildcard share/man/man*/*.[0-9]))

# Two variants from one rule set: build/ (optimised) and build/asan/ (sanitizers).
B         := build
A         := build/asan

lib_objs   = $(patsubst libstream/%.c,$(1)/obj/lib/%.o,$(LIB_SRC))
cmdc_objs  = $(patsubst cmd/%.c,$(1)/obj/cmd/%.o,$(CMD_COMMON_SRC))

.PHONY: all check run run-cluster deps bench bench-scale bench-cluster soak-cluster soak-offsets soak-proc soak-source soak-cleaner soak-http-sink soak-connect install uninstall clean format unit cli asan soak
.DELETE_ON_ERROR:

all: $(B)/libstream.a $(B)/libstream.so $(addprefix $(B)/,$(PROGRAMS)) $(B)/libstream.pc

# ---- optimised build -------------------------------------------------------
$(B)/obj/lib/%.o: libstream/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<
$(B)/obj/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<
$(B)/libstream.a: $(call lib_objs,$(B))
	@rm -f $@
	ar rcs $@ $^
$(B)/libstream.so: $(call lib_objs,$(B))
	$(CC) -shared -Wl,-soname,libstream.so.0 -o $@ $^ $(LDLIBS)
$(B)/stream-%: $(B)/obj/cmd/stream-%.o $(call cmdc_objs,$(B)) $(B)/libstream.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(CMD_LDLIBS_$*)
$(B)/tests/%: tests/unit/%.c $(TEST_H) $(B)/libstream.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $(filter-out %.h,$^) $(TEST_LDFLAGS_$*) $(LDLIBS) -lcmocka
$(B)/bench/%: tests/bench/%.c $(BENCH_H) $(B)/libstream.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

$(B)/libstream.pc: Makefile
	@mkdir -p $(@D)
	printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: libstream\nDescription: %s\nVersion: %s\nRequires.private: %s\nLibs: -L$${libdir} -lstream\nLibs.private: -lreadline -pthread -lm\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(LIBDIR)' '$(INCDIR)' 'stream: partitioned durable logs for real-time data' \
	    '$(VERSION)' '$(PKGS)' > $@

# ---- sanitizer build (make check) ------------------------------------------
$(A)/obj/lib/%.o: libstream/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<
$(A)/obj/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<
$(A)/libstream.a: $(call lib_objs,$(A))
	@rm -f $@
	ar rcs $@ $^
$(A)/stream-%: $(A)/obj/cmd/stream-%.o $(call cmdc_objs,$(A)) $(A)/libstream.a
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) $(CMD_LDLIBS_$*)
$(A)/tests/%: tests/unit/%.c $(TEST_H) $(A)/libstream.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter-out %.h,$^) $(TEST_LDFLAGS_$*) $(LDLIBS) -lcmocka

$(A)/bench/%: tests/bench/%.c $(BENCH_H) $(A)/libstream.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

$(B)/stream-top $(A)/stream-top: LDLIBS += $(CURSES_LIBS)

UNIT_A    := $(patsubst tests/unit/%.c,$(A)/tests/%,$(TEST_SRC))
# tests/cli/scale.bats drives the broker with bench/idle_consumers.
asan: $(A)/libstream.a $(addprefix $(A)/,$(PROGRAMS)) $(UNIT_A) $(A)/bench/idle_consumers

# The runner prints the single closing line "N passed, N failed".
# The optimised build is made too: it must compile cleanly at -O2 and the
# install test installs it. The fuzz targets run FUZZ_CHECK_SECONDS each.
# The soak in check runs 1 minute unless SOAK_MINUTES is given (0: none).
check: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all asan fuzz-build
	@STREAM_FUZZ_DIR=$(FUZZ_DIR) FUZZ_CHECK_SECONDS=$(FUZZ_CHECK_SECONDS) \
	    SOAK_MINUTES=$(CHECK_SOAK_MINUTES) tests/run-tests.sh $(A)

# Only one half, for quick iteration.
unit: asan
	@tests/run-tests.sh $(A) unit
cli: asan
	@tests/run-tests.sh $(A) cli

# tests/soak/soak.sh against the optimised build (B=DIR for another build);
# SOAK_SEED=N repeats a run's decisions, SOAK_DIR=DIR keeps its files there.
SOAK_MINUTES ?= 5
CHECK_SOAK_MINUTES = $(if $(filter command line environment,$(origin SOAK_MINUTES)),$(SOAK_MINUTES),1)
soak: all
	@tests/soak/soak.sh $(B) $(SOAK_MINUTES)

# tests/soak/offsets-soak.sh: groups committing every 50 ms for
# OFFSETS_SOAK_SECONDS; __consumer_offsets must stay under a fixed size.
OFFSETS_SOAK_SECONDS ?= 600
soak-offsets: all
	@tests/soak/offsets-soak.sh $(B) $(OFFSETS_SOAK_SECONDS)

# test_cleaner's seeded kill -9 loop, CLEANER_KILL_RUNS times (issue 15 asks
# for at least 50; make check runs 25 to keep its budget): each run kills a
# cleaning child at a random point and checks the recovered log.
CLEANER_KILL_RUNS ?= 200
soak-cleaner: $(A)/tests/test_cleaner
	@STREAM_CLEANER_KILL_RUNS=$(CLEANER_KILL_RUNS) $(A)/tests/test_cleaner

# tests/soak/cluster-soak.sh: CLUSTER_SOAK_KILLS leader kills and pauses on a
# 3-broker cluster under acks=all load, then the checkers.
CLUSTER_SOAK_KILLS ?= 50
soak-cluster: all
	@tests/soak/cluster-soak.sh $(B) $(CLUSTER_SOAK_KILLS)

# tests/soak/proc-soak.sh: PROC_SOAK_KILLS kill -9s of stream-proc under load
# (tests/cli/stream-proc.bats runs 2 in make check), then the checkers.
PROC_SOAK_KILLS ?= 25
soak-proc: all
	@tests/soak/proc-soak.sh $(B) $(PROC_SOAK_KILLS)

# tests/soak/source-soak.sh: SOURCE_SOAK_KILLS kill -9s of stream-pub --url
# --follow --resume under load, then a checker: every event exactly once.
SOURCE_SOAK_KILLS ?= 25
soak-source: all
	@tests/soak/source-soak.sh $(B) $(SOURCE_SOAK_KILLS)

# tests/soak/http-sink-soak.sh: HTTP_SINK_SOAK_KILLS kill -9s of stream-sub
# --post -g under load (make check runs 3, in tests/cli/http-sink.bats).
HTTP_SINK_SOAK_KILLS ?= 25
soak-http-sink: all
	@tests/soak/http-sink-soak.sh $(B) $(HTTP_SINK_SOAK_KILLS)

# The connectors' soaks (issue 19), one after the other.
soak-connect: soak-proc soak-source soak-http-sink

run: deps
	@$(MAKE) --no-print-directory all
	exec $(B)/stream-broker

# Three brokers of one cluster on this machine until Ctrl-C (clients on
# 9292, 9392, 9492; Raft on 9301-9303); data in ./cluster-data or DIR=...
run-cluster: deps
	@$(MAKE) --no-print-directory all
	@STREAM_BUILD=$(abspath $(B)) exec share/run-cluster.sh $(or $(DIR),./cluster-data)

deps:
	@missing=; for p in $(DEPS_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null || missing="$$missing $(DEPS_NPM)"; \
	if [ -n "$$missing" ]; then \
	    sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: all $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRC))
	@tests/bench/run.sh $(B)

# Replication's cost and failover time on a 3-broker cluster on this machine
# (also the last part of `make bench-peers`).
bench-cluster: all $(B)/bench/disk_writer
	@tests/bench/cluster.sh $(B)

# Broker memory under 100 producers + 100 consumers, idle CPU with 1,000
# long-polling consumers (also part of `make bench`); then topic admin at
# scale: create/delete of 9,000 partitions during an e2e, restart times
# (tests/bench/admin.sh); then the cluster's metadata at scale, simulated
# up to 100,000 partitions and with three real brokers (tests/bench/cluster-scale.sh).
bench-scale: all $(B)/bench/idle_consumers $(B)/bench/idle_floor $(B)/bench/scale_load \
             $(B)/bench/meta_scale
	@tests/bench/scale.sh $(B)
	@tests/bench/admin.sh $(B)
	@tests/bench/cluster-scale.sh $(B)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/stream $(DESTDIR)$(PCDIR)
	install -m 755 $(addprefix $(B)/,$(PROGRAMS)) $(DESTDIR)$(BINDIR)/
	install -m 644 $(B)/libstream.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libstream.so $(DESTDIR)$(LIBDIR)/libstream.so.0
	ln -sf libstream.so.0 $(DESTDIR)$(LIBDIR)/libstream.so
	install -m 644 libstream/include/stream/*.h $(DESTDIR)$(INCDIR)/stream/
	install -m 644 $(B)/libstream.pc $(DESTDIR)$(PCDIR)/
	for m in $(MAN_PAGES); do \
	    s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	install -d $(DESTDIR)$(DOCDIR)
	install -m 644 README.md share/doc/*.md share/stream-broker.conf $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(DOCDIR)/prometheus
	install -m 644 share/prometheus/*.yml $(DESTDIR)$(DOCDIR)/prometheus/
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	if [ -f completions/stream.bash ]; then \
	    for p in $(PROGRAMS); do install -m 644 completions/stream.bash $(DESTDIR)$(BASHCOMPDIR)/$$p; done; fi
	if [ -f completions/_stream ]; then install -m 644 completions/_stream $(DESTDIR)$(ZSHCOMPDIR)/_stream; fi
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in $(SYSTEMD_UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' share/systemd/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; \
	    chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGRAMS))
	rm -f $(DESTDIR)$(LIBDIR)/libstream.a $(DESTDIR)$(LIBDIR)/libstream.so $(DESTDIR)$(LIBDIR)/libstream.so.0
	rm -rf $(DESTDIR)$(INCDIR)/stream $(DESTDIR)$(DOCDIR)
	rm -f $(DESTDIR)$(PCDIR)/libstream.pc
	for m in $(MAN_PAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	rm -f $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(PROGRAMS)) $(DESTDIR)$(ZSHCOMPDIR)/_stream
	rm -f $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(SYSTEMD_UNITS))

format:
	clang-format -i $(LIB_SRC) $(wildcard libstream/*/*.h) libstream/include/stream/*.h $(wildcard cmd/*.c cmd/*.h) $(TEST_SRC) $(BENCH_SRC)

clean:
	rm -rf build

FUZZ_DIR := $(B)/fuzz
include tests/fuzz/fuzz.mk
include tests/bench/peers.mk

-include $(shell find $(B) $(A) -name '*.d' 2>/dev/null)
