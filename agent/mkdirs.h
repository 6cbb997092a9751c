/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mkdir -p, for the pin directory (agent/bpffs.c) and cgroup2 mount points. */
#ifndef KMTLS_MKDIRS_H
#define KMTLS_MKDIRS_H

#include <sys/types.h>

/* @path and every missing parent, with @mode: 0 or -errno. */
int kmtls_mkdirs(const char *path, mode_t mode);

#endif
