// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl latency [--port N] [--interval S [--count N]]: the histograms of
 * hs_hist as bcc-style log2 bars (microseconds), percentiles from the finer
 * buckets, and counts by outcome, per port and direction. Without
 * --interval, everything since attach (or reset); with it, what happened in
 * each interval (the difference of two readings: other readers are not
 * disturbed), until --count intervals or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kmtlsctl.h"
#include "lat.h"

#define BAR_WIDTH	40
#define OCTAVES		(HS_SLOTS / 4 + 1)

/* Histograms of one (port, direction), by outcome. */
struct port_hist {
	__u16 port;
	__u8 active;
	struct hs_hist out[HS_OUTCOME_MAX];
};

struct show_opts {
	int port;		/* -1: all */
	double interval;	/* 0: one reading */
	long count;		/* intervals, 0: until stopped */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void hist_add(struct hs_hist *d, const struct hs_hist *a, int sign)
{
	int i;

	for (i = 0; i < HS_SLOTS; i++)
		d->slots[i] += sign * a->slots[i];
	d->count += sign * a->count;
	d->sum_ns += sign * a->sum_ns;
}

static struct port_hist *find_port(struct port_hist *v, size_t n, __u16 port, __u8 active)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].port == port && v[i].active == active)
			return &v[i];
	return NULL;
}

/* Group the hs_hist entries by (port, direction), sorted. */
static int read_ports(const struct lat_maps *m, int port, struct port_hist **out, size_t *n)
{
	struct port_hist *v = NULL, *p;
	struct lat_hist *raw;
	size_t nraw, i, cnt = 0;
	int ret = lat_hist_read(m, &raw, &nraw);

	if (ret)
		return ret;
	v = calloc(nraw ? nraw : 1, sizeof(*v));
	if (!v) {
		free(raw);
		return -ENOMEM;
	}
	for (i = 0; i < nraw; i++) {
		const struct hs_hist_key *k = &raw[i].key;

		if ((port >= 0 && k->port != port) || k->outcome >= HS_OUTCOME_MAX)
			continue;
		p = find_port(v, cnt, k->port, k->active);
		if (!p) {
			p = &v[cnt++];
			p->port = k->port;
			p->active = k->active;
		}
		hist_add(&p->out[k->outcome], &raw[i].h, 1);
	}
	free(raw);
	/* By port, server side first: a stable order for reading and tests. */
	for (i = 1; i < cnt; i++) {
		struct port_hist t = v[i];
		size_t j = i;

		while (j > 0 && (v[j - 1].port > t.port ||
				 (v[j - 1].port == t.port && v[j - 1].active > t.active))) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = t;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* @now minus @prev, port by port (ports new since @prev count whole). */
static void diff_ports(struct port_hist *now, size_t n, const struct port_hist *prev,
		       size_t nprev)
{
	size_t i;
	int o;

	for (i = 0; i < nprev; i++) {
		struct port_hist *p = find_port(now, n, prev[i].port, prev[i].active);

		for (o = 0; p && o < HS_OUTCOME_MAX; o++)
			hist_add(&p->out[o], &prev[i].out[o], -1);
	}
}

static void octaves(const struct hs_hist *h, __u64 *oct)
{
	int s;

	memset(oct, 0, OCTAVES * sizeof(*oct));
	for (s = 0; s < HS_SLOTS; s++)
		oct[s < 2 ? 0 : s < 4 ? 1 : s / 4 + 1] += h->slots[s];
}

/* bcc's print_log2_hist: "  lo -> hi : count |****|". */
static void print_bars(const struct hs_hist *h, const char *title)
{
	__u64 oct[OCTAVES], max = 0;
	int i, first = -1, last = -1, stars;
	char bar[BAR_WIDTH + 1];

	octaves(h, oct);
	for (i = 0; i < OCTAVES; i++) {
		if (!oct[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (oct[i] > max)
			max = oct[i];
	}
	if (first < 0)
		return;
	printf("%s\n%20s : count     distribution\n", title, "usecs");
	for (i = first; i <= last; i++) {
		unsigned long long lo = i ? 1ull << i : 0, hi = (2ull << i) - 1;

		stars = (int)((oct[i] * BAR_WIDTH + max - 1) / max);
		memset(bar, '*', (size_t)stars);
		bar[stars] = 0;
		printf("%10llu -> %-10llu : %-8llu |%-*s|\n", lo, hi,
		       (unsigned long long)oct[i], BAR_WIDTH, bar);
	}
}

static void fmt_us(double us, char *buf, size_t len)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%.0f us", us);
	else if (us < 1e6)
		snprintf(buf, len, "%.2f ms", us / 1e3);
	else
		snprintf(buf, len, "%.2f s", us / 1e6);
}

static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999 };
static const char *const qnames[] = { "p50", "p90", "p99", "p99.9" };
#define NQ ((int)(sizeof(quantiles) / sizeof(quantiles[0])))

static void print_percentiles(const struct hs_hist *h, const char *what)
{
	char buf[32];
	int i;

	if (!h->count)
		return;
	printf("%s:", what);
	for (i = 0; i < NQ; i++) {
		fmt_us(hs_quantile(h, quantiles[i]), buf, sizeof(buf));
		printf("  %s %s", qnames[i], buf);
	}
	fmt_us((double)h->sum_ns / 1e3 / (double)h->count, buf, sizeof(buf));
	printf("  mean %s\n", buf);
}

static void print_port(const struct port_hist *p)
{
	struct hs_hist failed = { 0 };
	__u64 total = 0;
	char title[128];
	int o;

	for (o = 0; o < HS_OUTCOME_MAX; o++) {
		total += p->out[o].count;
		if (o != HS_OK)
			hist_add(&failed, &p->out[o], 1);
	}
	printf("port %u (%s): %llu handshakes:", p->port,
	       p->active ? "client side" : "server side", (unsigned long long)total);
	for (o = 0; o < HS_OUTCOME_MAX; o++)
		printf(" %s %llu", hs_outcome_name(o), (unsigned long long)p->out[o].count);
	printf("\n");
	snprintf(title, sizeof(title), "ok, port %u:", p->port);
	print_bars(&p->out[HS_OK], title);
	print_percentiles(&p->out[HS_OK], "ok");
	if (failed.count) {
		snprintf(title, sizeof(title), "failed (closed, failed, timeout), port %u:",
			 p->port);
		print_bars(&failed, title);
		print_percentiles(&failed, "failed");
	}
	printf("\n");
}

static json_object *hist_json(const struct hs_hist *h)
{
	json_object *o = json_object_new_object(), *b = json_object_new_array();
	__u64 lo, hi;
	int i;

	json_object_object_add(o, "count", json_object_new_int64((int64_t)h->count));
	json_object_object_add(o, "sum_ns", json_object_new_int64((int64_t)h->sum_ns));
	if (h->count) {
		json_object_object_add(o, "mean_us",
				       json_object_new_double((double)h->sum_ns / 1e3 /
							      (double)h->count));
		for (i = 0; i < NQ; i++) {
			char name[16];

			snprintf(name, sizeof(name), "%s_us", qnames[i]);
			json_object_object_add(o, name,
					       json_object_new_double(hs_quantile(h, quantiles[i])));
		}
	}
	for (i = 0; i < HS_SLOTS; i++) {
		json_object *e;

		if (!h->slots[i])
			continue;
		hs_slot_bounds((__u32)i, &lo, &hi);
		e = json_object_new_object();
		json_object_object_add(e, "low_us", json_object_new_int64((int64_t)lo));
		json_object_object_add(e, "high_us", json_object_new_int64((int64_t)hi));
		json_object_object_add(e, "count", json_object_new_int64((int64_t)h->slots[i]));
		json_object_array_add(b, e);
	}
	json_object_object_add(o, "buckets", b);
	return o;
}

static json_object *report_json(const struct port_hist *v, size_t n, double interval)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	json_object *tot = json_object_new_object();
	__u64 totals[HS_OUTCOME_MAX] = { 0 };
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		json_object *p = json_object_new_object(), *outs = json_object_new_object();

		json_object_object_add(p, "port", json_object_new_int(v[i].port));
		json_object_object_add(p, "side", json_object_new_string(v[i].active ?
							"client" : "server"));
		for (k = 0; k < HS_OUTCOME_MAX; k++) {
			totals[k] += v[i].out[k].count;
			json_object_object_add(outs, hs_outcome_name(k), hist_json(&v[i].out[k]));
		}
		json_object_object_add(p, "outcomes", outs);
		json_object_array_add(ports, p);
	}
	for (k = 0; k < HS_OUTCOME_MAX; k++)
		json_object_object_add(tot, hs_outcome_name(k),
				       json_object_new_int64((int64_t)totals[k]));
	if (interval > 0) {
		json_object_object_add(o, "time", json_object_new_int64((int64_t)time(NULL)));
		json_object_object_add(o, "interval_s", json_object_new_double(interval));
	}
	json_object_object_add(o, "ports", ports);
	json_object_object_add(o, "totals", tot);
	return o;
}

static void report_text(const struct port_hist *v, size_t n, double interval)
{
	char ts[16];
	time_t t = time(NULL);
	size_t i;

	if (interval > 0) {
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
		printf("%s\n", ts);
	}
	if (!n)
		printf("no handshakes%s\n\n", interval > 0 ? " in this interval" : "");
	for (i = 0; i < n; i++)
		print_port(&v[i]);
	fflush(stdout);
}

static int parse_show(struct ctl *c, int argc, char **argv, struct show_opts *o)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *end;
	int opt;

	o->port = -1;
	o->interval = 0;
	o->count = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:i:n:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			o->port = ctl_port(optarg);
			if (o->port < 0)
				return ctl_fail(c, CTL_USAGE, "bad --port '%s'", optarg);
			break;
		case 'i':
			o->interval = strtod(optarg, &end);
			if (*end || !(o->interval > 0) || o->interval > 86400)
				return ctl_fail(c, CTL_USAGE, "bad --interval '%s' (seconds)", optarg);
			break;
		case 'n':
			o->count = strtol(optarg, &end, 10);
			if (*end || o->count < 1)
				return ctl_fail(c, CTL_USAGE, "bad --count '%s'", optarg);
			break;
		case 'h':
			return -1;
		default:
			return ctl_bad_option(c, "latency", argv, "p:i:n:h");
		}
	}
	if (optind != argc)
		return ctl_fail(c, CTL_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o->count && !o->interval)
		return ctl_fail(c, CTL_USAGE, "--count goes with --interval");
	return 0;
}

int lat_show(struct ctl *c, int argc, char **argv)
{
	struct port_hist *cur = NULL, *prev = NULL;
	size_t n = 0, nprev = 0;
	struct show_opts o;
	struct timespec ts;
	struct lat_maps m;
	char err[512];
	long done = 0;
	int ret;

	ret = parse_show(c, argc, argv, &o);
	if (ret < 0) {
		printf("usage: kmtlsctl latency [--port N] [--interval S [--count N]]\n");
		return CTL_OK;
	}
	if (ret)
		return ret;
	ret = lat_maps_open(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (o.interval > 0) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		ret = read_ports(&m, o.port, &prev, &nprev);
	}
	while (!ret) {
		if (o.interval > 0) {
			ts.tv_sec = (time_t)o.interval;
			ts.tv_nsec = (long)((o.interval - (double)ts.tv_sec) * 1e9);
			while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
				;
			if (stop)
				break;
		}
		ret = read_ports(&m, o.port, &cur, &n);
		if (ret)
			break;
		if (o.interval > 0) {
			/* Show the difference; keep the reading for the next one. */
			struct port_hist *shown = malloc((n ? n : 1) * sizeof(*shown));

			if (!shown) {
				ret = -ENOMEM;
				break;
			}
			memcpy(shown, cur, n * sizeof(*shown));
			diff_ports(shown, n, prev, nprev);
			free(prev);
			prev = cur;
			nprev = n;
			cur = shown;
		}
		if (c->json)
			ctl_print_json(report_json(cur, n, o.interval));
		else
			report_text(cur, n, o.interval);
		fflush(stdout);
		free(cur);
		cur = NULL;
		if (o.interval <= 0 || (o.count && ++done >= o.count))
			break;
	}
	free(cur);
	free(prev);
	lat_maps_close(&m);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot read %s/%s: %s", kmtls_pin_dir(), HS_MAP_HIST,
				strerror(-ret));
	return CTL_OK;
}
