# sat — Show, Attend and Tell as Unix tools.
#
#   make                 build every program into bin/ and the encoder model into models/
#   make test            unit tests (cmocka) + shell tests of the tools, in parallel
#   make check           the fast tier, without ../shared: unit tests, fuzz corpora, tests on tests/data
#   make check-sanitize  the whole test suite built with ASan + UBSan
#   make check-valgrind  the shell tests with every program under valgrind memcheck
#   make fuzz            libFuzzer targets, FUZZ_SECONDS each
#   make bench           speed benchmarks (medians, ratios to the anchors)
#   make install PREFIX=/usr/local
#
# Every libcommon/*.c goes into build/libsat.a, every cmd/sat-*.c becomes a
# program, every tests/unit/test_*.c a cmocka test; adding a file needs no edit here.
# Each source is compiled to an object of its own with the headers it read
# recorded beside it (-MMD -MP), so touching a header recompiles only what
# includes it.
#
# Warnings are errors (WERROR=-Werror, the default, which CI and `make test`
# build with); `make WERROR=` turns that off for a compiler that warns more.
# `make programs` needs nothing from ../shared (only the encoder model does).

SHELL      := /bin/bash
# Only the rules below: make's built-in ones would try to remake the .d files.
MAKEFLAGS  += --no-builtin-rules
.SUFFIXES:
VERSION    := $(shell cat VERSION)
PREFIX     ?= /usr/local
SAT_SHARED ?= $(abspath ../shared)

BUILD  ?= build
BINDIR ?= bin
SAN    ?=

PKGS      := libjpeg libpng msgpack openblas libcrypto freetype2 jansson
TEST_PKGS := cmocka

CC       ?= cc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CPPFLAGS += -Ilibcommon -D_GNU_SOURCE -DSAT_VERSION='"$(VERSION)"' \
            -DSAT_DATADIR='"$(PREFIX)/share/sat"'
WERROR   ?= -Werror
WARN     := -std=c11 -Wall -Wextra $(WERROR) -Wshadow -Wno-unused-parameter \
            -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla
ALL_CFLAGS = $(WARN) $(CFLAGS) -pthread $(shell pkg-config --cflags $(PKGS))
# libstemmer and libwordnet (METEOR, libcommon/meteor.c) and libnetpbm (netpbm
# images, libcommon/image.c) ship no pkg-config files.
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lnetpbm -lstemmer -lwordnet -lm -pthread

# Leaks inside other projects' libraries that the sanitizer builds ignore.
export LSAN_OPTIONS ?= suppressions=$(abspath tests/lsan.supp)

ifeq ($(FUZZ),1)
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
endif
ifeq ($(SAN),1)
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS    += -fsanitize=address,undefined
endif

LIB_SRC   := $(wildcard libcommon/*.c)
LIB_OBJ   := $(LIB_SRC:libcommon/%.c=$(BUILD)/lib/%.o)
LIB       := $(BUILD)/libsat.a
CMD_SRC   := $(wildcard cmd/sat-*.c)
PROGRAMS  := $(CMD_SRC:cmd/%.c=$(BINDIR)/%)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
REPLAYS   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(BUILD)/tests/test_fuzz_%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCHES   := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
ENCODER   := models/mobilenet_v2_1.0_224_quant.satm
# Every other source's object: $(BUILD)/obj/<its path>.o; replay.c once per
# fuzz target (its corpus is compiled in).
OBJ       := $(BUILD)/obj
REPLAY_OBJ := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=$(OBJ)/replay/fuzz_%.o)
ALL_OBJ   := $(LIB_OBJ) $(REPLAY_OBJ) $(OBJ)/tests/fuzz/seeds.o \
             $(patsubst %.c,$(OBJ)/%.o,$(CMD_SRC) $(TEST_SRC) $(FUZZ_SRC) $(BENCH_SRC))

.PHONY: all programs models test check check-sanitize check-valgrind bench install clean fuzz fuzzers \
        fuzz-seeds
all: programs models

programs: $(PROGRAMS)

# -MMD: the headers a source read, beside its object (-MP: a header that goes
# away breaks nothing).  Objects depend on this Makefile too: its flags are
# theirs, and an object made before the .d files existed is made again.
COMPILE = $(PROGRAM_CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<
-include $(ALL_OBJ:.o=.d)

$(BUILD)/lib/%.o: libcommon/%.c Makefile
	@mkdir -p $(@D)
	$(COMPILE)

$(LIB): $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(OBJ)/%.o: %.c Makefile
	@mkdir -p $(@D)
	$(COMPILE)

# The tests' objects see cmocka (pkg-config asked only when they are built).
$(OBJ)/tests/%.o $(OBJ)/replay/%.o: CPPFLAGS += $(shell pkg-config --cflags $(TEST_PKGS))

$(PROGRAMS): $(BINDIR)/%: $(OBJ)/cmd/%.o $(LIB)
	@mkdir -p $(@D)
	$(PROGRAM_CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# sat-train alone is built with Open MPI's wrapper, when there is one that
# finds mpi.h (openmpi-bin has the wrapper, libopenmpi-dev the header), around
# the same CC, for data-parallel training under mpirun; without it, it is
# built with CC and trains in one process.
MPICC      ?= $(shell w=$$(command -v mpicc) && echo '\#include <mpi.h>' | $$w -E -x c - >/dev/null 2>&1 && echo $$w)
PROGRAM_CC  = $(CC)
ifneq ($(MPICC),)
$(BINDIR)/sat-train $(OBJ)/cmd/sat-train.o: private PROGRAM_CC = OMPI_CC=$(CC) $(MPICC)
$(OBJ)/cmd/sat-train.o: private CPPFLAGS += -DSAT_HAVE_MPI
endif

# The unit tests read their data files (tests/data) from anywhere.
$(OBJ)/tests/unit/%.o: CPPFLAGS += -DSAT_TEST_DATA='"$(abspath tests/data)"'
$(TESTS): $(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS))

# Each fuzz target again, as a cmocka test over its committed corpus.
$(OBJ)/replay/fuzz_%.o: CPPFLAGS += -DSAT_FUZZ_CORPUS='"$(abspath tests/fuzz/corpus)/fuzz_$*"'
$(OBJ)/replay/fuzz_%.o: tests/fuzz/replay.c Makefile
	@mkdir -p $(@D)
	$(COMPILE)
$(REPLAYS): $(BUILD)/tests/test_fuzz_%: $(OBJ)/replay/fuzz_%.o $(OBJ)/tests/fuzz/fuzz_%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(TEST_PKGS))

$(BENCHES): $(BUILD)/bench/%: $(OBJ)/tests/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZERS): $(BUILD)/fuzz/%: $(OBJ)/tests/fuzz/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# The encoder's weights are imported from the public TFLite file in ../shared
# (see README: where to get it); the result is a build product, never committed.
models: $(ENCODER)
$(SAT_SHARED)/models/mobilenet_v2_1.0_224_quant.tflite:
	@echo "make: $@ not found: the encoder's weights come from ../shared (README.md, section" \
	  "'The data in ../shared', says where to get them), or set SAT_SHARED=DIR;" \
	  "make programs and make check need neither" >&2; exit 1
$(ENCODER): $(SAT_SHARED)/models/mobilenet_v2_1.0_224_quant.tflite $(BINDIR)/sat-import
	@mkdir -p $(dir $@)
	$(BINDIR)/sat-import --labels $(SAT_SHARED)/models/imagenet_labels.txt -o $@ $<

test: all $(TESTS) $(REPLAYS)
	SAT_SHARED=$(SAT_SHARED) SAT_BIN=$(abspath $(BINDIR)) SAT_MODEL_DIR=$(abspath models) \
	  SAT_TEST_BIN=$(abspath $(BUILD)/tests) tests/run.sh

# The edit-compile-test loop, which needs nothing outside the repository (no
# ../shared, no encoder model): the unit tests (fuzz corpora included; those
# of the real encoder and photos skip without them), every program's command
# line, the golden outputs and the programs on the fixtures of tests/data.
CHECK_TESTS := ^unit:|cli/(usage|golden|tiny|layers)\.sh
check: programs $(TESTS) $(REPLAYS)
	SAT_SHARED=$(SAT_SHARED) SAT_BIN=$(abspath $(BINDIR)) SAT_MODEL_DIR=$(abspath models) \
	  SAT_TEST_BIN=$(abspath $(BUILD)/tests) SAT_TEST_ONLY='$(CHECK_TESTS)' tests/run.sh

# The same suite, every program and test built with AddressSanitizer and
# UndefinedBehaviorSanitizer into a separate tree.
check-sanitize:
	$(MAKE) SAN=1 BUILD=build/san BINDIR=build/san/bin OPT=-O1 test

# The shell tests once more, every program run under valgrind's memcheck.
check-valgrind: all
	scripts/valgrind-bin.sh $(BINDIR) build/valgrind
	SAT_SHARED=$(SAT_SHARED) SAT_BIN=$(abspath build/valgrind) SAT_MODEL_DIR=$(abspath models) \
	  SAT_TEST_BIN=/nonexistent SAT_VALGRIND=1 tests/run.sh

bench: all $(BENCHES)
	SAT_SHARED=$(SAT_SHARED) SAT_BIN=$(abspath $(BINDIR)) SAT_MODEL_DIR=$(abspath models) \
	  SAT_BENCH_BIN=$(abspath $(BUILD)/bench) scripts/bench.sh

# libFuzzer targets (clang), each run FUZZ_SECONDS on its corpus in
# tests/fuzz/corpus/NAME plus seeds made from ../shared; crashes are kept in
# build/fuzz/crashes/ to be turned into regression tests.  A campaign whose
# finds are committed (see scripts/fuzz.sh):
#   make fuzz FUZZ_SECONDS=900 FUZZ_MAX_LEN=65536 FUZZ_SHARED_SEEDS=0 FUZZ_MERGE=1
FUZZ_SECONDS ?= 60
fuzzers: $(FUZZERS)

# The small seeds of tests/fuzz/corpus (every record type, tiny images),
# written by tests/fuzz/seeds.c with the library's own writers.
fuzz-seeds: $(BUILD)/fuzz-seeds
	$(BUILD)/fuzz-seeds tests/fuzz/corpus
$(BUILD)/fuzz-seeds: $(OBJ)/tests/fuzz/seeds.o $(LIB)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz:
	$(MAKE) CC=clang FUZZ=1 BUILD=build/fuzz BINDIR=build/fuzz/bin OPT=-O1 fuzzers
	SAT_SHARED=$(SAT_SHARED) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh build/fuzz/fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/sat
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 models/*.satm $(DESTDIR)$(PREFIX)/share/sat

clean:
	rm -rf build bin $(ENCODER)
