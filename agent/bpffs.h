/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The BPF pin directory shared by kmtlsd and kmtlsctl (agent/bpffs.c):
 * maps, programs and links of hello_limit and hs_latency live there.
 */
#ifndef KMTLS_BPFFS_H
#define KMTLS_BPFFS_H

#include <stddef.h>

#define KMTLS_PIN_DIR_DEFAULT	"/sys/fs/bpf/kmtls"
#define KMTLS_BPFFS_ROOT	"/sys/fs/bpf"

/* $KMTLS_BPF_PIN_DIR, or /sys/fs/bpf/kmtls. */
const char *kmtls_pin_dir(void);

/* "<pin dir>/<name>" into @buf; -1 when it does not fit. */
int kmtls_pin_path(char *buf, size_t len, const char *name);

/*
 * Make sure the pin directory exists on a bpf filesystem: mounts bpffs on
 * /sys/fs/bpf when the directory is below it and nothing is mounted there,
 * then creates the directory. 0, or -1 with a sentence in @err.
 */
int kmtls_pin_dir_prepare(char *err, size_t errlen);

/* 1 when the pin directory exists on bpffs (never mounts anything). */
int kmtls_pin_dir_exists(void);

/*
 * Serialize kmtlsctl and kmtlsd on the pin directory (flock): an fd to
 * close, or -1 (no directory yet).
 */
int kmtls_pin_dir_lock(void);

#endif
