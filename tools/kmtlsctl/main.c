// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl - inspect and tune kmtls: kmtlsctl [--json] VERB [ARGS...].
 *
 * One table of verbs; each verb lives in its own file and gets the global
 * options in struct ctl. --json is accepted anywhere on the command line and
 * makes every verb print one JSON object on stdout, errors included
 * ({"error": ...}). Exit status: 0 done, 1 failed, 2 usage.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmtlsctl.h"
#include "pki.h"
#include "st.h"

static const struct ctl_verb verbs[] = {
	{ "status", cmd_status, "kmtlsd, kmtls.ko and BPF state at a glance" },
	{ "stats", cmd_stats, "counters of kmtlsd, kmtls.ko and the BPF programs" },
	{ "latency", cmd_latency, "handshake latency from the hs_latency BPF programs" },
	{ "ratelimit", cmd_ratelimit, "XDP ClientHello flood limiter (hello_limit)" },
	{ "tune", cmd_tune, "check the host for mTLS performance and print what to change" },
	{ "pki", cmd_pki, "certificates for tests and deployments" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: kmtlsctl [--json] VERB [ARGS...]\n\nverbs:\n");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
	fprintf(f, "\n`kmtlsctl VERB --help` for a verb's arguments.\n");
}

int ctl_port(const char *s)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s))
		return -1;	/* strtol would take a sign or spaces */
	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end || v < 1 || v > 65535 ? -1 : (int)v;
}

int ctl_bad_option(struct ctl *c, const char *cmd, char **argv, const char *optstring)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	int len = (int)strcspn(arg, "=");

	if (optopt && strncmp(arg, "--", 2))
		return ctl_fail(c, CTL_USAGE, strchr(optstring, optopt) ?
				"kmtlsctl %s: -%c needs a value (kmtlsctl %s --help)" :
				"kmtlsctl %s: unknown option -%c (kmtlsctl %s --help)", cmd, optopt,
				cmd);
	if (!optopt)
		return ctl_fail(c, CTL_USAGE, "kmtlsctl %s: unknown option '%.*s' (kmtlsctl %s "
				"--help)", cmd, len, arg, cmd);
	return ctl_fail(c, CTL_USAGE, "kmtlsctl %s: %.*s %s (kmtlsctl %s --help)", cmd, len, arg,
			arg[len] ? "takes no value" : "needs a value", cmd);
}

int ctl_fail(struct ctl *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", msg);
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(msg));
		if (c->verb)
			json_object_object_add(o, "verb", json_object_new_string(c->verb));
		ctl_print_json(o);
	}
	return status;
}

void ctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	int i, n = 0;
	size_t v;

	/* Take --json out wherever it is; the verbs see the rest. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			c.json = 1;
		else
			argv[++n] = argv[i];
	}
	argc = n + 1;
	argv[argc] = NULL;
	opterr = 0;	/* the verbs report bad options, in JSON too */

	if (argc < 2) {
		usage(stderr);
		return ctl_fail(&c, CTL_USAGE, "kmtlsctl: which verb? (kmtlsctl --help)");
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CTL_OK;
	}
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (!strcmp(argv[1], verbs[v].name)) {
			c.verb = verbs[v].name;
			return verbs[v].run(&c, argc - 1, argv + 1);
		}
	}
	c.verb = argv[1];
	usage(stderr);
	return ctl_fail(&c, CTL_USAGE, "kmtlsctl: unknown verb '%s'", argv[1]);
}
