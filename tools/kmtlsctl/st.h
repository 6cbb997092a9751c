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

/* Why kmtlsd's status could not be had; each asks the operator for another thing. */
enum st_problem {
	ST_FINE,
	ST_DOWN,	/* nothing listens there: kmtlsd not running, or no endpoint */
	ST_DENIED,	/* we may not connect to it */
	ST_STALLED,	/* no (complete) answer within the deadline */
	ST_FOREIGN,	/* an answer, but not as kmtlsd's endpoint gives one */
	ST_BAD_DOC,	/* kmtlsd's document, not of the shape this kmtlsctl reads */
	ST_FAILED,	/* anything else: no route, out of memory, ... */
};

struct st_fail {
	enum st_problem problem;
	const char *name;	/* of the problem, for --json: "down", "denied", ... */
	char line[2048];	/* one line for the text output */
	char err[4096];		/* for stderr and --json: what happened, what to do */
};

/* Deadline of one GET /status, from connect to the last byte. */
#define ST_TIMEOUT_MS	5000

/*
 * GET /status from @addr (st_http.c): the JSON object of the answer, or
 * NULL with *@problem set and what happened in @why.
 */
json_object *st_http_get(const char *addr, enum st_problem *problem, char *why, size_t whylen);

/*
 * GET /status from kmtlsd, checked by st_doc_check(). The document, or
 * NULL with @f filled in.
 */
json_object *st_fetch(const struct st_where *w, struct st_fail *f);

/* kmtlsd's section of the output, made from its /status document. */
typedef json_object *(*st_section_fn)(json_object *doc, const struct st_where *w);

/*
 * kmtlsd's section for status and stats: st_fetch, then @section of the
 * document; when that fails, {"reachable": false, "endpoint", "problem",
 * "error"} with @f filled in (f->problem is ST_FINE otherwise).
 */
json_object *st_kmtlsd(const struct st_where *w, st_section_fn section, struct st_fail *f);

/*
 * A copy of kmtlsd's /status document @doc with the fields kmtlsctl reads,
 * each checked for its type (counts: whole, 0 or more); NULL with the
 * first field that is not so in @err ("listeners is not a list").
 */
json_object *st_doc_check(json_object *doc, char *err, size_t errlen);

/*
 * @s for a terminal: bytes outside printable ASCII as \xNN, cut with
 * "..." past 1000 bytes. One of 8 static buffers, reused in turn.
 */
const char *st_text(const char *s);

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
