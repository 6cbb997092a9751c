# SPDX-License-Identifier: GPL-2.0-or-later
#
# kmtls top-level build. Everything built goes under $(BUILD).
#   make            kmtlsd, tools, BPF objects + skeletons, kmtls.ko (6.12)
#   make deps       install/build what is missing (Debian 12, root)
#   make check      deps + build + every test; ends with "N passed, N failed"
#   make check-host / check-vm [T=pattern]
#   make check-valgrind  kmtlsd under valgrind memcheck (handshake and relay suites)
#   make soak [SOAK_TIME=600]  kmtlsd at 80% load with reloads, watched for leaks
#   make demo [VM=1]
#   make fuzz [FUZZ_TIME=60]  every libFuzzer target (selftests/fuzz/), seconds each
#   make bench      kmtlsd vs nginx and stunnel: handshakes per server CPU-second;
#                   the XDP limiter vs nftables: drops per softirq CPU-second
#                   hs_latency's run time per connection against 1 us
#   make bench-vm   bulk bytes per server CPU-second with kTLS, in the 6.12 guest
#   make modules [KDIR=...] / modules-all / checkpatch
#   make install / uninstall [DESTDIR=...] [PREFIX=/usr/local]; modules_install [KREL=...]
#   SANITIZE=1      build and test userspace under ASan + UBSan

TOP := $(abspath .)
BUILD ?= $(TOP)/build
export BUILD TOP

ifeq ($(SANITIZE),1)
O := $(BUILD)/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
O := $(BUILD)/out
SANFLAGS :=
endif
BIN := $(O)/bin
export KMTLS_OUT := $(O)
WOLFSSL := $(BUILD)/wolfssl
WOLFSSL_LIB := $(WOLFSSL)/lib/libwolfssl.a
KSRC := $(BUILD)/ksrc
KSFT := $(KSRC)/tools/testing/selftests/kselftest_harness.h

CC := gcc
CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -fno-strict-aliasing \
	  -I$(TOP)/include -I$(TOP)/include/uapi -I$(WOLFSSL)/include -MMD -MP $(SANFLAGS)
LDFLAGS := $(SANFLAGS)
# kmtlsd's upcall client (agent/upcall.c) speaks generic netlink through libnl;
# its [ratelimit] section loads and attaches hello_limit through libbpf.
CFLAGS += $(shell pkg-config --cflags libnl-genl-3.0)
LIBS := $(WOLFSSL_LIB) -linih -ljson-c -lm -lpthread $(shell pkg-config --libs libnl-genl-3.0) \
	-lbpf -lelf -lz
# TLS 1.3 key shares take agent/x25519.c's fixed-base keygen (see there why);
# SHA-256 blocks agent/sha256_shani.c's SHA-NI rounds (scripts/wolfssl-sha256.h).
WOLFSSL_WRAP := -Wl,--wrap=wc_curve25519_make_key -Wl,-u,__wrap_wc_curve25519_make_key \
	-Wl,-u,kmtls_sha256_block -Wl,-u,kmtls_sha256_blocks
LIBS += $(WOLFSSL_WRAP)

AGENT_MAIN := agent/main.c
AGENT_SRCS := $(filter-out $(AGENT_MAIN),$(wildcard agent/*.c))
AGENT_LIB := $(O)/libkmtls-agent.a
TESTLIB_SRCS := $(wildcard selftests/lib/*.c)
TESTLIB := $(O)/libkmtls-test.a
TEST_SRCS := $(wildcard selftests/*/*.c)
TEST_SRCS := $(filter-out $(TESTLIB_SRCS) $(wildcard selftests/progs/*.c),$(TEST_SRCS))
TEST_PROGS := $(patsubst selftests/progs/%.c,$(O)/selftests/progs/%,$(wildcard selftests/progs/*.c))
TEST_BINS := $(TEST_SRCS:selftests/%.c=$(O)/selftests/%)
BENCH_SRCS := $(wildcard tools/bench/*.c)

PROGS := $(BIN)/kmtlsd $(BIN)/kmtls-bench

.PHONY: all userspace deps check check-host check-vm demo clean distclean
all: userspace modules
userspace: $(PROGS) $(TEST_BINS) $(TEST_PROGS)

deps:
	@scripts/deps.sh

# Rebuilt when its flags change (the script keeps the configure line).
$(WOLFSSL_LIB): scripts/wolfssl.sh scripts/wolfssl-getrandom.h scripts/wolfssl-sha256.h \
		$(wildcard scripts/wolfssl-*.patch)
	@scripts/wolfssl.sh $(BUILD) && touch $@

$(KSFT):
	@scripts/extract-ksrc.sh $(BUILD)

$(O)/%.o: %.c | $(WOLFSSL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(O)/selftests/%.o: CFLAGS += -I$(KSRC)/tools/testing/selftests -Wno-unused-parameter -Wno-clobbered
$(O)/selftests/%.o: selftests/%.c | $(WOLFSSL_LIB) $(KSFT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(AGENT_LIB): $(AGENT_SRCS:%.c=$(O)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(TESTLIB): $(TESTLIB_SRCS:%.c=$(O)/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/kmtlsd: $(O)/agent/main.o $(AGENT_LIB) $(WOLFSSL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(O)/agent/main.o $(AGENT_LIB) $(LIBS)

$(BIN)/kmtls-bench: $(BENCH_SRCS:%.c=$(O)/%.o) $(AGENT_LIB) $(WOLFSSL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(BENCH_SRCS:%.c=$(O)/%.o) $(AGENT_LIB) $(LIBS) -ljson-c

$(O)/selftests/%: $(O)/selftests/%.o $(TESTLIB) $(AGENT_LIB) $(WOLFSSL_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB) $(AGENT_LIB) $(LIBS) -ljson-c

# kmtls-bench's latency histogram, on its own.
$(O)/selftests/bench/hist_test: $(O)/selftests/bench/hist_test.o $(O)/tools/bench/hist.o
	$(CC) $(LDFLAGS) -o $@ $^

# A malloc that fails on demand, LD_PRELOADed into kmtlsd by the fault tests.
# Never sanitized: it must own malloc, which ASan's runtime would.
FAILMALLOC := $(O)/selftests/lib/failmalloc.so
userspace: $(FAILMALLOC)
$(FAILMALLOC): selftests/lib/failmalloc/failmalloc.c selftests/lib/failmalloc/failmalloc.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -o $@ $<

# time(2) one second later at every call, for kmtlsctl_ops_test.sh (pki).
STEPTIME := $(O)/selftests/lib/steptime.so
userspace: $(STEPTIME)
$(STEPTIME): selftests/lib/steptime/steptime.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Werror -fPIC -shared -o $@ $<

# BPF programs (bpf/*.bpf.c) with plain UAPI headers, their libbpf skeletons,
# kmtlsctl, and the ClientHello recognizer's libFuzzer target.
CLANG ?= clang
BPFTOOL ?= bpftool
BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror \
	      -I$(TOP)/bpf -idirafter /usr/include/$(shell $(CC) -dumpmachine) -MMD -MP
BPF_LIBS := -lbpf -lelf -lz
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(O)/bpf/%.bpf.o)
BPF_SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(O)/bpf/%.skel.h)
KMTLSCTL_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard tools/kmtlsctl/*.c))
BPF_TEST_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard selftests/bpf/*.c))
HELLO_FUZZ := $(O)/selftests/bpf/fuzz/hello_fuzz

userspace: $(BPF_OBJS) $(BPF_SKELS) $(BIN)/kmtlsctl $(HELLO_FUZZ)

$(O)/bpf/%.bpf.o: bpf/%.bpf.c
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

# The hello_limit library kmtlsd and kmtlsctl share (agent/rl.h).
AGENT_BPF_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard agent/rl_*.c agent/ratelimit.c))
$(KMTLSCTL_OBJS) $(BPF_TEST_OBJS) $(AGENT_BPF_OBJS): $(BPF_SKELS)
$(KMTLSCTL_OBJS) $(AGENT_BPF_OBJS): CFLAGS += -I$(O)/bpf -I$(TOP)/bpf
$(O)/selftests/bpf/%: CFLAGS += -I$(O)/bpf -I$(TOP)/bpf
$(O)/selftests/bpf/%: LIBS += $(BPF_LIBS)

# kmtlsctl tune reads kmtlsd's config with kmtlsd's own parser; pki makes
# certificates with our wolfSSL.
$(BIN)/kmtlsctl: $(KMTLSCTL_OBJS) $(AGENT_LIB) $(WOLFSSL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(BPF_LIBS) -ljson-c -linih -lm -lpthread $(WOLFSSL_WRAP)

$(HELLO_FUZZ): selftests/bpf/fuzz/hello_fuzz.c bpf/hello_parse.h
	@mkdir -p $(dir $@)
	$(CLANG) -O1 -g -Wall -Wextra -Werror -I$(TOP)/bpf \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $<

# tools/lib/kmtls: the library applications use for the kernel service (no
# TLS code, no dependency), and the example programs built on it.
KMTLS_LIB := $(O)/lib/libkmtls.a
KMTLS_LIB_OBJS := $(patsubst %.c,$(O)/%.o,$(wildcard tools/lib/kmtls/*.c))
EXAMPLES := $(patsubst tools/examples/%.c,$(BIN)/%,$(wildcard tools/examples/*.c))

userspace: $(KMTLS_LIB) $(EXAMPLES)

$(KMTLS_LIB): $(KMTLS_LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(EXAMPLES): $(BIN)/%: $(O)/tools/examples/%.o $(KMTLS_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(KMTLS_LIB)

$(filter $(O)/selftests/kmod/%,$(TEST_BINS)): $(KMTLS_LIB)
$(O)/selftests/kmod/%: LIBS += $(KMTLS_LIB)

-include mk/kmod.mk
include mk/fuzz.mk
include mk/install.mk

# The vm:*+asan lines of selftests/TESTS run the ASan + UBSan build.
check: deps
	@$(MAKE) --no-print-directory userspace modules-all
	@$(MAKE) --no-print-directory SANITIZE=1 userspace
	@scripts/check.sh all $(T)

check-host: deps
	@$(MAKE) --no-print-directory userspace
	@scripts/check.sh host $(T)

check-vm: deps
	@$(MAKE) --no-print-directory userspace modules-all
	@$(MAKE) --no-print-directory SANITIZE=1 userspace
	@scripts/check.sh vm $(T)

.PHONY: check-valgrind soak
check-valgrind: deps
	@$(MAKE) --no-print-directory userspace
	@scripts/check.sh host kmtlsd/valgrind.sh

soak: deps
	@$(MAKE) --no-print-directory userspace
	@scripts/soak.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(if $(VM),vm,host)

.PHONY: bench bench-vm
bench: deps
	@$(MAKE) --no-print-directory userspace
	@scripts/bench.sh

bench-vm: deps
	@$(MAKE) --no-print-directory userspace
	@scripts/bench-vm.sh

clean:
	rm -rf $(BUILD)/out $(BUILD)/asan $(BUILD)/kmod $(BUILD)/check

distclean:
	rm -rf $(BUILD)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
