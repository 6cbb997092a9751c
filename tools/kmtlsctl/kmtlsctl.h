/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_KMTLSCTL_H
#define KMTLS_KMTLSCTL_H

#include <stddef.h>

#include <json-c/json.h>

/* Exit statuses of every verb. */
#define CTL_OK		0
#define CTL_ERR		1	/* the operation failed */
#define CTL_USAGE	2	/* bad command line, or a verb not implemented yet */

/* What every verb gets: the global options. */
struct ctl {
	int json;		/* --json: one JSON object on stdout */
	const char *verb;
};

/* One verb: kmtlsctl VERB [ARGS...]; argv[0] is the verb itself. */
struct ctl_verb {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *help;
};

int cmd_ratelimit(struct ctl *c, int argc, char **argv);
int cmd_latency(struct ctl *c, int argc, char **argv);
int cmd_tune(struct ctl *c, int argc, char **argv);

/*
 * Report a failure: the message on stderr, and with --json an object
 * {"error": ..., "verb": ...} on stdout. Returns @status.
 */
int ctl_fail(struct ctl *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print @o compactly on stdout and drop the reference. */
void ctl_print_json(json_object *o);

/* ---- bpffs (bpffs.c) ---------------------------------------------------- */

#define CTL_PIN_DIR_DEFAULT	"/sys/fs/bpf/kmtls"
#define CTL_BPFFS_ROOT		"/sys/fs/bpf"

/* $KMTLS_BPF_PIN_DIR, or /sys/fs/bpf/kmtls. */
const char *ctl_pin_dir(void);

/* "<pin dir>/<name>" into @buf; -1 when it does not fit. */
int ctl_pin_path(char *buf, size_t len, const char *name);

/*
 * Make sure the pin directory exists on a bpf filesystem: mounts bpffs on
 * /sys/fs/bpf when the directory is below it and nothing is mounted there,
 * then creates the directory. 0, or -1 with a sentence in @err.
 */
int ctl_pin_dir_prepare(char *err, size_t errlen);

/* 1 when the pin directory exists on bpffs (never mounts anything). */
int ctl_pin_dir_exists(void);

/* Serialize kmtlsctl runs on the pin directory: an fd to close, or -1. */
int ctl_pin_dir_lock(void);

#endif
