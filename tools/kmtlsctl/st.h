/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmtlsctl status and stats: shared by status.c, stats.c and st_*.c. */
#ifndef KMTLS_KMTLSCTL_ST_H
#define KMTLS_KMTLSCTL_ST_H

#include <stddef.h>

#include <json-c/json.h>

struct ctl;

/* The verbs (status.c, stats.c). */
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);

#define ST_CONFIG_DEFAULT	"/etc/kmtls/kmtlsd.conf"
#define ST_ENDPOINT_DEFAULT	"unix:/run/kmtls/status.sock"

/* Where kmtlsd's status endpoint is, and how we know. */
struct st_where {
	char addr[512];
	char from[800];		/* "--endpoint", "status-listen in FILE", ... */
	char hint[800];		/* what to do when nothing answers there */
};

/*
 * The arguments common to status and stats: [--endpoint ADDR]
 * [--config FILE] [--help]. @usage is printed for --help. Returns -1 to go
 * on, or the exit status to return (help, usage error).
 */
int st_args(struct ctl *c, int argc, char **argv, const char *usage, struct st_where *w);

/*
 * GET /status from kmtlsd. The parsed document, or NULL with an operator's
 * sentence in @err (what was tried, and how to enable the endpoint).
 */
json_object *st_fetch(const struct st_where *w, char *err, size_t errlen);

/* kmtlsd's section of the output, made from its /status document. */
typedef json_object *(*st_section_fn)(json_object *doc, const struct st_where *w);

/*
 * kmtlsd's section for status and stats: st_fetch, then @section of the
 * document; when kmtlsd does not answer, {"reachable": false, "endpoint",
 * "error"} with the same sentence in @err. *@up says which.
 */
json_object *st_kmtlsd(const struct st_where *w, st_section_fn section, int *up, char *err,
		       size_t errlen);

/*
 * kmtls.ko in this network namespace: {"loaded": bool, "counters": {Name:
 * value} or null}.
 */
json_object *st_kmod(void);

/*
 * The BPF programs, from their pins: {"pin_dir", "hello_limit": {"state",
 * "attached": [...], "counters"}, "hs_latency": {"state", "attached",
 * "cgroup", "counters"}}; counters only when @counters.
 */
json_object *st_bpf(int counters);

/* Field helpers: a missing field reads as 0, "" or NULL. */
long long st_int(json_object *o, const char *key);
const char *st_str(json_object *o, const char *key);
json_object *st_get(json_object *o, const char *key);

#endif
