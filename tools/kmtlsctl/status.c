// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl status [--endpoint ADDR] [--config FILE]: kmtlsd, kmtls.ko and
 * the BPF programs at a glance. Each part that is absent says so ("not
 * running", "not loaded"); only an unreachable kmtlsd makes the exit
 * status 1, since kmtls.ko and the BPF programs are optional.
 */
#include <stdio.h>
#include <string.h>

#include "kmtlsctl.h"
#include "st.h"

static const char usage[] =
	"usage: kmtlsctl [--json] status [--endpoint ADDR] [--config FILE]\n"
	"kmtlsd (from its status endpoint), kmtls.ko and the BPF programs at a glance.\n"
	"ADDR: unix:/path or IP:PORT; default: status-listen of FILE (default "
	ST_CONFIG_DEFAULT ")\n"
	"if it sets one, else " ST_ENDPOINT_DEFAULT ".\n"
	"Exit status 1 when kmtlsd's status cannot be had there, with the reason.\n";

static void fmt_uptime(long long s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "unknown (the clock went back since kmtlsd started)");
	else if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh%02lldm", s / 86400, s / 3600 % 24, s / 60 % 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm%02llds", s / 3600, s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
}

static double ratio(long long part, long long whole)
{
	return whole > 0 ? (double)part / (double)whole : 0.0;
}

/* @keys of @from into @to, as strings (@str) or integers. */
static void copy(json_object *to, json_object *from, const char *const *keys, int str)
{
	json_object *v;

	for (; *keys; keys++) {
		v = str ? json_object_new_string(st_str(from, *keys)) :
		    json_object_new_int64(st_int(from, *keys));
		json_object_object_add(to, *keys, v);
	}
}

/* What status shows of kmtlsd's /status document. */
static json_object *kmtlsd_json(json_object *doc, const struct st_where *w)
{
	static const char *const nums[] = {
		"uptime_s", "workers", "active", "ktls", "fallback", "ktls_refused", NULL
	};
	static const char *const hs_nums[] = { "ok", "failed", "resumed", NULL };
	static const char *const l_strs[] = { "name", "mode", "listen", "backend", NULL };
	static const char *const l_nums[] = { "active", NULL };
	json_object *o = json_object_new_object(), *hs = json_object_new_object();
	json_object *dhs = st_get(doc, "handshakes"), *ls = json_object_new_array();
	json_object *dls = st_get(doc, "listeners"), *ks = st_get(doc, "kernel_service");
	double resumed = ratio(st_int(dhs, "resumed"), st_int(dhs, "ok"));
	size_t i;

	json_object_object_add(o, "reachable", json_object_new_boolean(1));
	json_object_object_add(o, "endpoint", json_object_new_string(w->addr));
	json_object_object_add(o, "version", json_object_new_string(st_str(doc, "version")));
	copy(o, doc, nums, 0);
	copy(hs, dhs, hs_nums, 0);
	json_object_object_add(hs, "resumed_ratio", json_object_new_double(resumed));
	json_object_object_add(o, "handshakes", hs);
	for (i = 0; dls && i < json_object_array_length(dls); i++) {
		json_object *d = json_object_array_get_idx(dls, i), *l = json_object_new_object();

		copy(l, d, l_strs, 1);
		copy(l, d, l_nums, 0);
		json_object_array_add(ls, l);
	}
	json_object_object_add(o, "listeners", ls);
	json_object_object_add(o, "kernel_service", json_object_get(ks));
	return o;
}

/* Who serves kmtls.ko's requests, as far as this kmtlsd tells. */
static const char *agent_of(json_object *kd)
{
	json_object *ks;

	if (!kd || !st_int(kd, "reachable"))
		return "unknown (no status from kmtlsd)";
	ks = st_get(kd, "kernel_service");
	if (!ks)
		return "none (kmtlsd has no [kernel NAME] profile)";
	if (st_int(ks, "attached"))
		return "kmtlsd";
	return "none";
}

/* Strings from kmtlsd go through st_text(): a terminal gets no control bytes. */
static void print_kmtlsd(json_object *kd, const struct st_where *w, const struct st_fail *f)
{
	json_object *hs = st_get(kd, "handshakes"), *ls = st_get(kd, "listeners"), *ks, *names;
	char up[64];
	size_t i;

	if (f->problem) {
		printf("kmtlsd     %s\n", f->line);
		return;
	}
	fmt_uptime(st_int(kd, "uptime_s"), up, sizeof(up));
	printf("kmtlsd     up: version %s, uptime %s, %lld worker%s (status from %s)\n",
	       st_text(st_str(kd, "version")), up, st_int(kd, "workers"),
	       st_int(kd, "workers") == 1 ? "" : "s", st_text(w->addr));
	printf("           handshakes: %lld ok, %lld failed, %.1f%% resumed\n",
	       st_int(hs, "ok"), st_int(hs, "failed"),
	       100.0 * ratio(st_int(hs, "resumed"), st_int(hs, "ok")));
	printf("           record layer: %lld kTLS, %lld wolfSSL fallback, %lld refused (ktls = require)\n",
	       st_int(kd, "ktls"), st_int(kd, "fallback"), st_int(kd, "ktls_refused"));
	printf("           %lld active connections\n", st_int(kd, "active"));
	for (i = 0; ls && i < json_object_array_length(ls); i++) {
		json_object *l = json_object_array_get_idx(ls, i);

		printf("  listener %-12s %-9s %s -> %s, %lld active\n", st_text(st_str(l, "name")),
		       st_text(st_str(l, "mode")), st_text(st_str(l, "listen")),
		       st_text(st_str(l, "backend")), st_int(l, "active"));
	}
	ks = st_get(kd, "kernel_service");
	if (!ks)
		return;
	names = st_get(ks, "profiles");
	printf("  kernel service: %s (profiles", st_text(st_str(ks, "state")));
	for (i = 0; names && i < json_object_array_length(names); i++)
		printf("%s %s", i ? "," : "",
		       st_text(json_object_get_string(json_object_array_get_idx(names, i))));
	printf("), handshakes %lld ok, %lld failed\n", st_int(st_get(ks, "handshakes"), "ok"),
	       st_int(st_get(ks, "handshakes"), "failed"));
}

static void print_kmod(json_object *km)
{
	json_object *cnt = st_get(km, "counters");

	if (!st_int(km, "loaded")) {
		printf("kmtls.ko   not loaded (modprobe kmtls)\n");
		return;
	}
	printf("kmtls.ko   loaded; agent: %s\n", st_str(km, "agent"));
	if (!cnt) {
		printf("           no /proc/net/kmtls_stat in this network namespace\n");
		return;
	}
	printf("           requests: %lld submitted, %lld completed, %lld failed, %lld timed out, "
	       "%lld without agent; now %lld pending, %lld in flight\n",
	       st_int(cnt, "Submitted"), st_int(cnt, "Completed"), st_int(cnt, "Failed"),
	       st_int(cnt, "TimedOut"), st_int(cnt, "NoAgent"), st_int(cnt, "PendingNow"),
	       st_int(cnt, "InFlightNow"));
}

static void print_bpf(json_object *b)
{
	json_object *hl = st_get(b, "hello_limit"), *hs = st_get(b, "hs_latency");
	json_object *links = st_get(hl, "attached");
	size_t i, n = links ? json_object_array_length(links) : 0;

	printf("BPF        hello_limit: %s", st_str(hl, "state"));
	if (links && !n)
		printf(", not attached (kmtlsctl ratelimit attach IFACE)");
	for (i = 0; i < n; i++) {
		json_object *l = json_object_array_get_idx(links, i);

		printf("%s %s (%s)", i ? "," : ", attached to", st_str(l, "iface"),
		       st_str(l, "mode"));
	}
	printf("\n           hs_latency: %s", st_str(hs, "state"));
	if (st_get(hs, "attached") && st_int(hs, "attached"))
		printf(", attached to cgroup %s", st_str(hs, "cgroup"));
	else if (st_get(hs, "attached"))
		printf(", not attached (kmtlsctl latency attach)");
	printf("\n           (pins in %s)\n", st_str(b, "pin_dir"));
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	json_object *o, *kd, *km;
	struct st_where w;
	struct st_fail f;
	int ret;

	ret = st_args(c, argc, argv, usage, &w);
	if (ret >= 0)
		return ret;
	kd = st_kmtlsd(&w, kmtlsd_json, &f);
	km = st_kmod();
	json_object_object_add(km, "agent", json_object_new_string(agent_of(kd)));
	o = json_object_new_object();
	json_object_object_add(o, "kmtlsd", kd);
	json_object_object_add(o, "kmtls_ko", km);
	json_object_object_add(o, "bpf", st_bpf(0));
	if (c->json) {
		if (f.problem)
			json_object_object_add(o, "error", json_object_new_string(f.err));
		ctl_print_json(o);
	} else {
		print_kmtlsd(kd, &w, &f);
		print_kmod(km);
		print_bpf(st_get(o, "bpf"));
		json_object_put(o);
	}
	if (f.problem) {
		fprintf(stderr, "%s\n", f.err);
		return CTL_ERR;
	}
	return CTL_OK;
}
