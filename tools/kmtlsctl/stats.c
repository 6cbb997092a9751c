// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl stats [--endpoint ADDR] [--config FILE]: every counter there is,
 * by source: kmtlsd (totals, and each listener by outcome), kmtls.ko
 * (/proc/net/kmtls_stat), hello_limit (hl_stats) and hs_latency (hs_stats).
 * --json: one object with a section per source. Exit status 1 when kmtlsd
 * does not answer (the other sections are still printed).
 */
#include <stdio.h>
#include <string.h>

#include "kmtlsctl.h"
#include "st.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char usage[] =
	"usage: kmtlsctl [--json] stats [--endpoint ADDR] [--config FILE]\n"
	"Counters of kmtlsd (total and per listener), kmtls.ko, hello_limit and hs_latency.\n"
	"ADDR: unix:/path or IP:PORT; default: status-listen of FILE (default "
	ST_CONFIG_DEFAULT ")\n"
	"if it sets one, else " ST_ENDPOINT_DEFAULT ".\n"
	"Exit status 1 when kmtlsd's status cannot be had there, with the reason.\n";

/* Keys of kmtlsd's document that describe it rather than count. */
static const char *const about[] = { "version", "started", "uptime_s", "workers" };

/* kmtlsd's /status document as st_doc_check() kept it, regrouped: about, totals, listeners. */
static json_object *kmtlsd_section(json_object *doc, const struct st_where *w)
{
	json_object *o = json_object_new_object(), *v;
	size_t i;

	json_object_object_add(o, "reachable", json_object_new_boolean(1));
	json_object_object_add(o, "endpoint", json_object_new_string(w->addr));
	for (i = 0; i < ARRAY_SIZE(about); i++) {
		if (!json_object_object_get_ex(doc, about[i], &v))
			continue;
		json_object_object_add(o, about[i], json_object_get(v));
		json_object_object_del(doc, about[i]);
	}
	json_object_object_add(o, "listeners", json_object_get(st_get(doc, "listeners")));
	json_object_object_del(doc, "listeners");
	json_object_object_add(o, "kernel_service", json_object_get(st_get(doc, "kernel_service")));
	json_object_object_del(doc, "kernel_service");
	json_object_object_add(o, "totals", json_object_get(doc));
	return o;
}

static void row(const char *name, json_object *c)
{
	json_object *hs = st_get(c, "handshakes");

	printf("  %-14s %9lld %9lld %7lld %8lld %8lld %8lld %7lld %7lld %6lld %7lld %6lld\n",
	       st_text(name), st_int(c, "accepted"), st_int(hs, "ok"), st_int(hs, "failed"),
	       st_int(hs, "resumed"), st_int(c, "ktls"), st_int(c, "fallback"),
	       st_int(c, "ktls_refused"), st_int(c, "backend_failed"), st_int(c, "capped"),
	       st_int(c, "closes_unacked"), st_int(c, "active"));
}

static void print_kmtlsd(json_object *kd, const struct st_where *w, const struct st_fail *f)
{
	json_object *t = st_get(kd, "totals"), *ls = st_get(kd, "listeners");
	size_t i;

	if (f->problem) {
		printf("kmtlsd: %s\n", f->line);
		return;
	}
	printf("kmtlsd %s (%s), %lld worker%s, up %lld s%s\n", st_text(st_str(kd, "version")),
	       st_text(w->addr), st_int(kd, "workers"), st_int(kd, "workers") == 1 ? "" : "s",
	       st_int(kd, "uptime_s"), st_int(kd, "uptime_s") < 0 ?
	       " (the clock went back since kmtlsd started)" : "");
	printf("  %-14s %9s %9s %7s %8s %8s %8s %7s %7s %6s %7s %6s\n", "listener", "accepted",
	       "ok", "failed", "resumed", "kTLS", "fallback", "refused", "backend", "capped",
	       "unacked", "active");
	row("(all)", t);
	for (i = 0; ls && i < json_object_array_length(ls); i++) {
		json_object *l = json_object_array_get_idx(ls, i);

		row(st_str(l, "name"), l);
	}
	if (st_get(kd, "kernel_service"))
		row("(kernel)", st_get(kd, "kernel_service"));
	printf("  bytes: %lld client -> backend, %lld backend -> client; %lld connections ended "
	       "by a KeyUpdate\n", st_int(t, "bytes_client_to_backend"),
	       st_int(t, "bytes_backend_to_client"), st_int(t, "key_updates"));
}

/* "title: not loaded", or the title and one counter per line. */
static void print_counters(const char *title, const char *state, json_object *cnt)
{
	if (!cnt) {
		printf("%s: %s\n", title, state);
		return;
	}
	printf("%s:\n", title);
	json_object_object_foreach(cnt, k, v)
		printf("  %-20s %lld\n", st_text(k), (long long)json_object_get_int64(v));
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
	json_object *o, *kd, *km, *b, *hl, *hs;
	struct st_where w;
	struct st_fail f;
	int ret;

	ret = st_args(c, argc, argv, usage, &w);
	if (ret >= 0)
		return ret;
	kd = st_kmtlsd(&w, kmtlsd_section, &f);
	km = st_kmod();
	b = st_bpf(1);
	hl = json_object_get(st_get(b, "hello_limit"));
	hs = json_object_get(st_get(b, "hs_latency"));
	o = json_object_new_object();
	json_object_object_add(o, "kmtlsd", kd);
	json_object_object_add(o, "kmtls_ko", km);
	json_object_object_add(o, "hello_limit", hl);
	json_object_object_add(o, "hs_latency", hs);
	json_object_object_add(o, "pin_dir", json_object_get(st_get(b, "pin_dir")));
	json_object_put(b);
	if (c->json) {
		if (f.problem)
			json_object_object_add(o, "error", json_object_new_string(f.err));
		ctl_print_json(o);
	} else {
		print_kmtlsd(kd, &w, &f);
		print_counters("kmtls.ko (/proc/net/kmtls_stat)",
			       st_int(km, "loaded") ? "no counters in this network namespace" :
			       "not loaded", st_get(km, "counters"));
		print_counters("hello_limit (hl_stats)", st_str(hl, "state"),
			       st_get(hl, "counters"));
		print_counters("hs_latency (hs_stats)", st_str(hs, "state"),
			       st_get(hs, "counters"));
		json_object_put(o);
	}
	if (f.problem) {
		fprintf(stderr, "%s\n", f.err);
		return CTL_ERR;
	}
	return CTL_OK;
}
