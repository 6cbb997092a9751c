# SPDX-License-Identifier: GPL-2.0-or-later
#
# mk/install.mk - install kmtlsd, kmtlsctl, their man pages and the system
# integration. Included by the top-level Makefile (BIN, TOP).
#
#   make install   [DESTDIR=/tmp/stage] [PREFIX=/usr/local]
#   make uninstall [DESTDIR=...] [PREFIX=...]   removes exactly what install wrote
#   make modules_install [KREL=<release>]       kmtls.ko, see below
#
# Layout (defaults):
#   $(PREFIX)/sbin/kmtlsd
#   $(PREFIX)/bin/kmtlsctl, $(PREFIX)/bin/kmtls-bench (when built)
#   $(MANDIR)/man8/kmtlsd.8, kmtlsctl.8, $(MANDIR)/man5/kmtlsd.conf.5
#   $(PREFIX)/lib/libkmtls.a, $(PREFIX)/include/kmtls.h and the kernel ABI it
#   includes, $(PREFIX)/include/linux/kmtls.h; $(PREFIX)/lib/pkgconfig/kmtls.pc
#   $(SYSCONFDIR)/kmtls/kmtlsd.conf.example     SYSCONFDIR=/etc, whatever PREFIX
#   $(SYSTEMDUNITDIR)/kmtlsd.service            $(PREFIX)/lib/systemd/system
#   $(MODULESLOADDIR)/kmtls.conf                $(PREFIX)/lib/modules-load.d
#   $(SYSCTLDIR)/90-kmtls.conf                  $(PREFIX)/lib/sysctl.d
#
# The unit and the two snippets go below $(PREFIX)/lib because systemd reads
# /usr/local/lib/{systemd/system,modules-load.d,sysctl.d} as well as /usr/lib:
# everything stays under PREFIX (for PREFIX=/usr they land in /usr/lib, which
# is /lib on merged-/usr systems), and /etc stays the administrator's. With
# another PREFIX, point SYSTEMDUNITDIR, MODULESLOADDIR and SYSCTLDIR at
# directories systemd reads. The unit names $(PREFIX)/sbin/kmtlsd and
# $(SYSCONFDIR)/kmtls/kmtlsd.conf.
#
# kmtls.ko is built for one kernel release, so `make install` leaves it
# alone: `make modules KREL=$(uname -r) && make modules_install
# KREL=$(uname -r)` copies it to /lib/modules/<release>/updates/ and, when
# DESTDIR is empty, runs depmod.

PREFIX		?= /usr/local
SYSCONFDIR	?= /etc
MANDIR		?= $(PREFIX)/share/man
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
MODULESLOADDIR	?= $(PREFIX)/lib/modules-load.d
SYSCTLDIR	?= $(PREFIX)/lib/sysctl.d
INSTALL		?= install

INST_BIN	:= $(BIN)/kmtlsctl $(wildcard $(BIN)/kmtls-bench)
INST_MAN8	:= kmtlsd.8 kmtlsctl.8
INST_MAN5	:= kmtlsd.conf.5
INST_FILES	:= $(PREFIX)/sbin/kmtlsd $(INST_BIN:$(BIN)/%=$(PREFIX)/bin/%) \
		   $(INST_MAN8:%=$(MANDIR)/man8/%) $(INST_MAN5:%=$(MANDIR)/man5/%) \
		   $(SYSCONFDIR)/kmtls/kmtlsd.conf.example \
		   $(SYSTEMDUNITDIR)/kmtlsd.service $(MODULESLOADDIR)/kmtls.conf \
		   $(SYSCTLDIR)/90-kmtls.conf \
		   $(PREFIX)/lib/libkmtls.a $(PREFIX)/include/kmtls.h \
		   $(PREFIX)/include/linux/kmtls.h $(PREFIX)/lib/pkgconfig/kmtls.pc
KMTLS_PC_VERSION = $(shell sed -n 's/^\#define KMTLS_VERSION "\(.*\)"/\1/p' $(TOP)/agent/version.h)

.PHONY: install uninstall modules_install

install: $(BIN)/kmtlsd $(BIN)/kmtlsctl $(KMTLS_LIB)
	$(INSTALL) -D -m 0755 $(BIN)/kmtlsd $(DESTDIR)$(PREFIX)/sbin/kmtlsd
	$(INSTALL) -d -m 0755 $(DESTDIR)$(PREFIX)/bin
	$(INSTALL) -m 0755 $(INST_BIN) $(DESTDIR)$(PREFIX)/bin/
	$(INSTALL) -d -m 0755 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	$(INSTALL) -m 0644 $(INST_MAN8:%=$(TOP)/man/%) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 $(INST_MAN5:%=$(TOP)/man/%) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -D -m 0644 $(TOP)/packaging/kmtlsd.conf.example \
		$(DESTDIR)$(SYSCONFDIR)/kmtls/kmtlsd.conf.example
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		$(TOP)/packaging/kmtlsd.service > $(DESTDIR)$(SYSTEMDUNITDIR)/kmtlsd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/kmtlsd.service
	$(INSTALL) -D -m 0644 $(TOP)/packaging/kmtls.conf $(DESTDIR)$(MODULESLOADDIR)/kmtls.conf
	$(INSTALL) -D -m 0644 $(TOP)/packaging/90-kmtls.conf $(DESTDIR)$(SYSCTLDIR)/90-kmtls.conf
	$(INSTALL) -D -m 0644 $(KMTLS_LIB) $(DESTDIR)$(PREFIX)/lib/libkmtls.a
	$(INSTALL) -D -m 0644 $(TOP)/tools/lib/kmtls/kmtls.h $(DESTDIR)$(PREFIX)/include/kmtls.h
	$(INSTALL) -D -m 0644 $(TOP)/include/uapi/linux/kmtls.h \
		$(DESTDIR)$(PREFIX)/include/linux/kmtls.h
	$(INSTALL) -d -m 0755 $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(KMTLS_PC_VERSION)|' \
		$(TOP)/packaging/kmtls.pc > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kmtls.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/kmtls.pc
	@echo "install: done; kmtls.ko is installed separately: make modules_install KREL=<release>"

uninstall:
	rm -f $(INST_FILES:%=$(DESTDIR)%) $(DESTDIR)$(PREFIX)/bin/kmtls-bench
	-rmdir $(DESTDIR)$(SYSCONFDIR)/kmtls 2>/dev/null

modules_install:
	@test -f $(KMOD_OUT)/$(KREL)/kmtls.ko || { \
		echo "modules_install: no $(KMOD_OUT)/$(KREL)/kmtls.ko: make modules KREL=$(KREL)" >&2; exit 1; }
	$(INSTALL) -D -m 0644 $(KMOD_OUT)/$(KREL)/kmtls.ko $(DESTDIR)/lib/modules/$(KREL)/updates/kmtls.ko
	$(if $(DESTDIR),,depmod -a $(KREL))
