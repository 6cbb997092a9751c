# SPDX-License-Identifier: GPL-2.0-or-later
#
# mk/kmod.mk - build kmtls.ko out of tree, with every output under
# $(BUILD)/kmod/<release>/. Included by the top-level Makefile, which sets
# BUILD (absolute build directory) and TOP (absolute repository root).
#
#   make modules                  against the 6.12 headers (build/kernel-6.12)
#   make modules KDIR=<dir>       against any kernel build directory
#   make modules KREL=<release>   against /lib/modules/<release>/build
#   make modules-all              against the 6.12 and the 6.1 headers
#   make checkpatch               checkpatch --strict on kmod/*.[ch]
#   make modules-clean            remove $(BUILD)/kmod
#
# Kernels before 6.13 have no MO= (separate output directory for external
# modules), so the module directory given to kbuild (M=) is
# $(BUILD)/kmod/<release>/, populated with symlinks to kmod/Kbuild and
# kmod/*.[ch]. kbuild is incremental: it runs on every make and rebuilds
# what changed. W=1, V=1 and C=1 on the command line reach kbuild.
#
# Module BTF needs the kernel's vmlinux, which Debian ships in the 6.12 headers
# but not in the 6.1 ones: without it, BTF generation is switched off instead
# of letting kbuild print a "Skipping BTF generation" line on every build.

KMOD_SRC	:= $(TOP)/kmod
KMOD_OUT	:= $(BUILD)/kmod
KMOD_CHECKPATCH	:= $(BUILD)/ksrc/scripts/checkpatch.pl

# The release of a kernel build directory. UTS_RELEASE is what uname -r
# prints; Debian's include/config/kernel.release (and so "make
# kernelrelease") can hold the upstream version instead (6.1 headers).
kmod_release_of = $(or \
	$(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"$$/\1/p' \
		$(1)/include/generated/utsrelease.h 2>/dev/null), \
	$(shell cat $(1)/include/config/kernel.release 2>/dev/null))

ifneq ($(filter command line environment,$(origin KDIR)),)
KREL ?= $(call kmod_release_of,$(KDIR))
else
KREL ?= $(shell cat $(BUILD)/kernel-6.12)
KDIR ?= /lib/modules/$(KREL)/build
endif

# $(call kmod_build,<release>,<kernel build dir>)
define kmod_build
	@test -n "$(1)" -a -f "$(2)/Makefile" || { \
		echo "kmod: no kernel build directory '$(2)' (release '$(1)');" \
		     "install linux-headers-$(1) or pass KDIR=" >&2; exit 1; }
	@mkdir -p $(KMOD_OUT)/$(1)
	@find $(KMOD_OUT)/$(1) -maxdepth 1 -xtype l -delete
	@ln -sfn $(KMOD_SRC)/Kbuild $(wildcard $(KMOD_SRC)/*.c $(KMOD_SRC)/*.h) \
		$(KMOD_OUT)/$(1)/
	+$(MAKE) -C $(2) M=$(KMOD_OUT)/$(1) \
		$(if $(W),W=$(W)) $(if $(V),V=$(V)) $(if $(C),C=$(C)) \
		$(if $(wildcard $(2)/vmlinux),,CONFIG_DEBUG_INFO_BTF_MODULES=) \
		modules
	@echo "kmod: $(KMOD_OUT)/$(1)/kmtls.ko"

endef

.PHONY: modules modules-all modules-clean checkpatch

# Command-line variables of the outer make are not handed to kbuild as such,
# so that e.g. CC=clang meant for BPF cannot override the kernel's compiler;
# only W=, V= and C= are passed on explicitly.
modules modules-all: MAKEOVERRIDES :=

modules:
	$(call kmod_build,$(KREL),$(KDIR))

modules-all:
	$(foreach r,$(shell cat $(BUILD)/kernel-6.12 $(BUILD)/kernel-6.1), \
		$(call kmod_build,$(r),/lib/modules/$(r)/build))

checkpatch:
	@test -x $(KMOD_CHECKPATCH) || $(TOP)/scripts/extract-ksrc.sh $(BUILD)
	$(KMOD_CHECKPATCH) --strict --no-tree --quiet --show-types -f $(wildcard $(KMOD_SRC)/*.c $(KMOD_SRC)/*.h)

modules-clean:
	rm -rf $(KMOD_OUT)
