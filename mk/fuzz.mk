# SPDX-License-Identifier: GPL-2.0-or-later
#
# mk/fuzz.mk - the libFuzzer targets of selftests/fuzz/ (see its README).
# Included by the top-level Makefile (O, TOP, CLANG, WOLFSSL, HELLO_FUZZ).
#
#   make fuzz [FUZZ_TIME=60] [FUZZ_TARGETS="config identity ..."]
#
# Every target is built by clang with -fsanitize=fuzzer,address,undefined
# from its file in selftests/fuzz/targets/ and the project's own sources it
# exercises, compiled here the same way (so coverage and the sanitizers
# reach into them); wolfSSL, libnl and libinih are linked uninstrumented.
# `make userspace` builds them: `make check` runs selftests/fuzz/fuzz_smoke.sh.

FUZZ_TIME ?= 60
FUZZ_OUT := $(O)/selftests/fuzz
FUZZ_OBJ := $(FUZZ_OUT)/obj
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -fno-strict-aliasing -Wall -Wextra \
	       -I$(TOP)/include -I$(TOP)/include/uapi -I$(WOLFSSL)/include \
	       $(shell pkg-config --cflags libnl-genl-3.0 2>/dev/null) \
	       -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	       -MMD -MP

# What each target links besides its own file.
FUZZ_SRCS_config := agent/config.c agent/addr.c
FUZZ_LIBS_config := -linih
FUZZ_SRCS_proxy_v2 := agent/proxy_v2.c selftests/lib/proxy_parse.c
FUZZ_SRCS_identity := agent/identity.c agent/policy.c agent/ca_digest.c agent/sha256_shani.c
FUZZ_LIBS_identity := $(WOLFSSL_LIB) -lm -lpthread
FUZZ_SRCS_netlink := agent/upcall.c agent/log.c
FUZZ_LIBS_netlink := $(shell pkg-config --libs libnl-genl-3.0 2>/dev/null || echo -lnl-genl-3 -lnl-3)
FUZZ_SRCS_completion := tools/lib/kmtls/kmtls.c

FUZZ_NAMES := $(patsubst selftests/fuzz/targets/%_fuzz.c,%,$(wildcard selftests/fuzz/targets/*_fuzz.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_OUT)/%_fuzz)

userspace: $(FUZZ_BINS)

# The targets themselves must be warning-free; the project's sources are
# held to that by the gcc build.
$(FUZZ_OBJ)/selftests/fuzz/%.o: FUZZ_WERROR := -Werror
$(FUZZ_OBJ)/%.o: %.c | $(WOLFSSL_LIB)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_WERROR) -c $< -o $@

define FUZZ_TARGET
$(FUZZ_OUT)/$(1)_fuzz: $(FUZZ_OBJ)/selftests/fuzz/targets/$(1)_fuzz.o \
		$(FUZZ_SRCS_$(1):%.c=$(FUZZ_OBJ)/%.o) $(filter %.a,$(FUZZ_LIBS_$(1)))
	$$(CLANG) $(FUZZ_SAN) -o $$@ $$(filter %.o,$$^) $(FUZZ_LIBS_$(1))
endef
$(foreach t,$(FUZZ_NAMES),$(eval $(call FUZZ_TARGET,$(t))))

.PHONY: fuzz
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS) $(HELLO_FUZZ)
	@selftests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_TARGETS)
