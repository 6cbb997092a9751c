/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_KMTLSCTL_H
#define KMTLS_KMTLSCTL_H

#include <stddef.h>

#include <json-c/json.h>

#include "../../agent/bpffs.h"

/* Exit statuses of every verb. */
#define CTL_OK		0
#define CTL_ERR		1	/* the operation failed */
#define CTL_USAGE	2	/* bad command line */

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

/*
 * getopt_long() returned '?' (main() turned its own messages off): a usage
 * error that names the option and what is wrong with it, and points at
 * "kmtlsctl @cmd --help". @optstring is the one given to getopt_long().
 * Returns CTL_USAGE.
 */
int ctl_bad_option(struct ctl *c, const char *cmd, char **argv, const char *optstring);

/* A TCP port, 1 to 65535 in plain decimal digits: it, or -1. */
int ctl_port(const char *s);

/* Print @o compactly on stdout and drop the reference. */
void ctl_print_json(json_object *o);

#endif
