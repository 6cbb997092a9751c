// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The report of a load run: a few aligned lines of text, or with --json one
 * JSON object on one line (keys in tools/bench/README.md).
 */
#include <stdio.h>

#include <json-c/json.h>

#include "bench.h"

static const char *const mode_names[] = {
	[BENCH_FULL] = "full",
	[BENCH_RESUMED] = "resumed",
	[BENCH_BULK] = "bulk",
};

static const struct {
	const char *key, *label;
	double q;
} quantiles[] = {
	{ "p50", "p50", 0.50 },
	{ "p90", "p90", 0.90 },
	{ "p99", "p99", 0.99 },
	{ "p999", "p99.9", 0.999 },
};

#define NQUANT ARRAY_SIZE(quantiles)

static double per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

/* ---- text ---- */

static const char *fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000000)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < NSEC_PER_SEC)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
	return buf;
}

static const char *fmt_bytes(double b, char *buf, size_t len)
{
	if (b >= 1e9)
		snprintf(buf, len, "%.2f GB", b / 1e9);
	else if (b >= 1e6)
		snprintf(buf, len, "%.2f MB", b / 1e6);
	else
		snprintf(buf, len, "%.0f B", b);
	return buf;
}

static void text_hist(const char *label, const struct bench_hist *h)
{
	char buf[32];
	unsigned int i;

	printf("  %-13s", label);
	if (!h->count) {
		printf("no samples\n");
		return;
	}
	for (i = 0; i < NQUANT; i++)
		printf("%s %s  ", quantiles[i].label,
		       fmt_ns(hist_percentile(h, quantiles[i].q), buf, sizeof(buf)));
	printf("max %s\n", fmt_ns(h->max, buf, sizeof(buf)));
}

/* "handshake 3, connect 1": where the unfinished connections were. */
static void text_unfinished(const struct bench_stats *st)
{
	const char *sep = "";
	unsigned int i;

	printf("  %-13s%llu still under way at the end (", "unfinished",
	       (unsigned long long)st->unfinished);
	for (i = 0; i < CONN_STATES; i++) {
		if (st->unfinished_in[i]) {
			printf("%s%s %llu", sep, conn_state_names[i],
			       (unsigned long long)st->unfinished_in[i]);
			sep = ", ";
		}
	}
	printf("), the oldest %.1f s old\n", st->unfinished_age / 1e9);
}

static void text_fails(const char *label, const struct bench_fails *f)
{
	unsigned int i;

	for (i = 0; i < f->n; i++)
		printf("  %-13s%llu  %s\n", i ? "" : label,
		       (unsigned long long)f->e[i].count, f->e[i].reason);
	if (f->other)
		printf("  %-13s%llu  other reasons\n", f->n ? "" : label,
		       (unsigned long long)f->other);
}

static void text_report(const struct bench_result *r)
{
	const struct bench_opts *o = r->o;
	const struct bench_stats *st = &r->st;
	char a[32], b[32];
	unsigned int i;

	printf("kmtls-bench: %s against %s, %u connections, %u thread%s, %.1f s after %.1f s warmup, ",
	       mode_names[o->mode], o->target, o->concurrency, o->threads,
	       o->threads == 1 ? "" : "s", o->duration, o->warmup);
	if (o->rate > 0)
		printf("open loop at %.0f/s\n", o->rate);
	else
		printf("closed loop\n");
	printf("  %-13s%llu ok, %llu failed, %.1f/s%s\n", "handshakes",
	       (unsigned long long)st->ok, (unsigned long long)st->failed,
	       per_s(st->ok, r->window_s), o->mode == BENCH_BULK ? " (whole run)" : "");
	if (o->rate > 0)
		printf("  %-13s%.1f/s ended (ok or failed) of %g/s offered\n", "achieved",
		       bench_achieved_rate(r), o->rate);
	if (st->unfinished)
		text_unfinished(st);
	text_hist("latency", &st->hs);
	if (o->payload)
		text_hist("echoed", &st->echo);
	printf("  %-13s%s %s %s\n", "negotiated", st->version[0] ? st->version : "-",
	       st->cipher[0] ? st->cipher : "-", st->group[0] ? st->group : "-");
	printf("  %-13s%llu (psk_dhe_ke %llu, psk_ke %llu)", "resumed",
	       (unsigned long long)st->resumed, (unsigned long long)st->psk_dhe_ke,
	       (unsigned long long)st->psk_ke);
	if (o->mode == BENCH_RESUMED)
		printf(" of %llu that could", (unsigned long long)bench_resumable(st));
	printf("\n");
	if (o->mode == BENCH_BULK) {
		printf("  %-13ssent %s (%s/s), ", "bulk",
		       fmt_bytes(st->bytes_sent, a, sizeof(a)),
		       fmt_bytes(per_s(st->bytes_sent, o->duration), b, sizeof(b)));
		printf("received %s (%s/s)\n", fmt_bytes(st->bytes_recv, a, sizeof(a)),
		       fmt_bytes(per_s(st->bytes_recv, o->duration), b, sizeof(b)));
	}
	if (o->rate > 0 && st->backlog)
		printf("  %-13s%llu starts were still waiting for a free slot\n", "backlog",
		       (unsigned long long)st->backlog);
	if (st->unclosed)
		printf("  %-13s%llu connections: no answer to close_notify within %llu s\n",
		       "unclosed", (unsigned long long)st->unclosed,
		       BENCH_CLOSE_LINGER / NSEC_PER_SEC);
	text_fails("failures", &st->fails);
	text_fails("local errors", &st->local_fails);
	printf("  %-13s%.2f s (%.0f%% of wall time)\n", "client cpu", r->cpu_s,
	       r->wall_s > 0 ? 100 * r->cpu_s / r->wall_s : 0);
	if (!r->nwhy)
		printf("  %-13svalid\n", "verdict");
	for (i = 0; i < r->nwhy; i++)
		printf("  %-13s%s\n", i ? "" : "NOT VALID", r->why[i]);
}

/* ---- JSON ---- */

static json_object *jnum(double v, int decimals)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

static json_object *jint(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

static json_object *jstr(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

static json_object *json_hist(const struct bench_hist *h)
{
	json_object *o = json_object_new_object();
	unsigned int i;

	for (i = 0; i < NQUANT; i++)
		json_object_object_add(o, quantiles[i].key,
				       jnum(hist_percentile(h, quantiles[i].q) / 1e3, 1));
	json_object_object_add(o, "max", jnum(h->max / 1e3, 1));
	json_object_object_add(o, "samples", jint(h->count));
	return o;
}

static json_object *json_fails(const struct bench_fails *f)
{
	json_object *o = json_object_new_object();
	unsigned int i;

	for (i = 0; i < f->n; i++)
		json_object_object_add(o, f->e[i].reason, jint(f->e[i].count));
	if (f->other)
		json_object_object_add(o, "other reasons", jint(f->other));
	return o;
}

static json_object *json_unfinished_in(const struct bench_stats *st)
{
	json_object *o = json_object_new_object();
	unsigned int i;

	for (i = 0; i < CONN_STATES; i++)
		if (st->unfinished_in[i])
			json_object_object_add(o, conn_state_names[i], jint(st->unfinished_in[i]));
	return o;
}

static json_object *json_why(const struct bench_result *r)
{
	json_object *a = json_object_new_array();
	unsigned int i;

	for (i = 0; i < r->nwhy; i++)
		json_object_array_add(a, json_object_new_string(r->why[i]));
	return a;
}

static void json_report(const struct bench_result *r)
{
	const struct bench_opts *o = r->o;
	const struct bench_stats *st = &r->st;
	json_object *j = json_object_new_object();

	json_object_object_add(j, "mode", json_object_new_string(mode_names[o->mode]));
	json_object_object_add(j, "target", json_object_new_string(o->target));
	json_object_object_add(j, "concurrency", jint(o->concurrency));
	json_object_object_add(j, "threads", jint(o->threads));
	json_object_object_add(j, "duration_s", jnum(o->duration, 3));
	json_object_object_add(j, "warmup_s", jnum(o->warmup, 3));
	json_object_object_add(j, "loop", json_object_new_string(o->rate > 0 ? "open" : "closed"));
	json_object_object_add(j, "timeout_s", jnum(o->timeout, 3));
	if (o->rate > 0) {
		json_object_object_add(j, "target_rate_per_s", jnum(o->rate, 3));
		json_object_object_add(j, "achieved_rate_per_s", jnum(bench_achieved_rate(r), 1));
		json_object_object_add(j, "backlog", jint(st->backlog));
	}
	json_object_object_add(j, "valid", json_object_new_boolean(!r->nwhy));
	json_object_object_add(j, "invalid_reasons", json_why(r));
	json_object_object_add(j, "ok", jint(st->ok));
	json_object_object_add(j, "failed", jint(st->failed));
	json_object_object_add(j, "unfinished", jint(st->unfinished));
	json_object_object_add(j, "unfinished_in", json_unfinished_in(st));
	json_object_object_add(j, "unfinished_oldest_s", jnum(st->unfinished_age / 1e9, 3));
	json_object_object_add(j, "local_errors", jint(st->local));
	json_object_object_add(j, "rate_per_s", jnum(per_s(st->ok, r->window_s), 1));
	json_object_object_add(j, "latency_us", json_hist(&st->hs));
	if (o->payload)
		json_object_object_add(j, "echo_latency_us", json_hist(&st->echo));
	json_object_object_add(j, "failures", json_fails(&st->fails));
	json_object_object_add(j, "local_error_reasons", json_fails(&st->local_fails));
	json_object_object_add(j, "version", jstr(st->version));
	json_object_object_add(j, "cipher", jstr(st->cipher));
	json_object_object_add(j, "group", jstr(st->group));
	json_object_object_add(j, "resumed", jint(st->resumed));
	json_object_object_add(j, "resumed_psk_dhe_ke", jint(st->psk_dhe_ke));
	json_object_object_add(j, "resumed_psk_ke", jint(st->psk_ke));
	if (o->mode == BENCH_RESUMED)
		json_object_object_add(j, "resumable", jint(bench_resumable(st)));
	json_object_object_add(j, "unclosed", jint(st->unclosed));
	json_object_object_add(j, "client_cpu_s", jnum(r->cpu_s, 3));
	json_object_object_add(j, "client_cpu_pct",
			       jnum(r->wall_s > 0 ? 100 * r->cpu_s / r->wall_s : 0, 1));
	if (o->mode == BENCH_BULK) {
		json_object_object_add(j, "bytes_per_conn", jint(o->bytes));
		json_object_object_add(j, "bytes_sent", jint(st->bytes_sent));
		json_object_object_add(j, "bytes_received", jint(st->bytes_recv));
		json_object_object_add(j, "send_Bps", jnum(per_s(st->bytes_sent, o->duration), 0));
		json_object_object_add(j, "recv_Bps", jnum(per_s(st->bytes_recv, o->duration), 0));
	}
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

void bench_report(const struct bench_result *r)
{
	if (r->o->json)
		json_report(r);
	else
		text_report(r);
	fflush(stdout);
}
