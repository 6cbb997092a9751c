// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl latency --events: one line (or JSON object) per counted
 * handshake, read from the ring buffer hs_events, until --count events,
 * --duration seconds or SIGINT/SIGTERM. Events written before the reader
 * started (the ring keeps them while nobody reads) are skipped. At the end,
 * how many the kernel dropped meanwhile because the ring was full.
 *
 * One reader at a time: a second one would take events from the first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "kmtlsctl.h"
#include "lat.h"

struct ev_run {
	struct ctl *c;
	int port;		/* -1: all */
	long max;		/* events to print, 0: no limit */
	long seen;
	__u64 start_ns;
	time_t start_wall;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static void fmt_addr(const __u8 a[16], char *buf, size_t len)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!memcmp(a, mapped, 12))
		inet_ntop(AF_INET, a + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

static const char *version_name(__u16 v)
{
	switch (v) {
	case 0x0304:
		return "TLSv1.3";
	case 0x0303:
		return "TLSv1.2";
	case 0:
		return "";
	default:
		return "?";
	}
}

static void print_json(const struct hs_event *e, const char *la, const char *ra, char *comm)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ts_ns", json_object_new_int64((int64_t)e->ts_ns));
	json_object_object_add(o, "pid", json_object_new_int64(e->pid));
	json_object_object_add(o, "comm", json_object_new_string(comm));
	json_object_object_add(o, "side", json_object_new_string(
				       e->flags & HS_EV_PASSIVE ? "server" : "client"));
	json_object_object_add(o, "local", json_object_new_string(la));
	json_object_object_add(o, "lport", json_object_new_int(e->lport));
	json_object_object_add(o, "remote", json_object_new_string(ra));
	json_object_object_add(o, "rport", json_object_new_int(e->rport));
	json_object_object_add(o, "latency_ns", json_object_new_int64((int64_t)e->latency_ns));
	json_object_object_add(o, "outcome", json_object_new_string(hs_outcome_name(e->outcome)));
	json_object_object_add(o, "source", json_object_new_string(hs_source_name(e->source)));
	if (e->source == HS_SRC_USDT) {
		json_object_object_add(o, "agent_ns", json_object_new_int64((int64_t)e->agent_ns));
		json_object_object_add(o, "status", json_object_new_int(e->status));
		json_object_object_add(o, "version",
				       json_object_new_string(version_name(e->tls_version)));
		json_object_object_add(o, "cipher", json_object_new_string(e->cipher));
		json_object_object_add(o, "resumed",
				       json_object_new_boolean(!!(e->flags & HS_EV_RESUMED)));
	}
	ctl_print_json(o);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct ev_run *r = ctx;
	struct hs_event e;
	char la[INET6_ADDRSTRLEN], ra[INET6_ADDRSTRLEN], comm[HS_COMM_LEN + 1];
	char lend[INET6_ADDRSTRLEN + 8], rend[INET6_ADDRSTRLEN + 8], ts[16];
	__u16 port;
	time_t t;

	if ((r->max && r->seen >= r->max) || hs_event_read(data, len, &e))
		return 0;
	port = e.flags & HS_EV_PASSIVE ? e.lport : e.rport;
	if (e.ts_ns < r->start_ns || (r->port >= 0 && port != r->port))
		return 0;
	r->seen++;
	fmt_addr(e.laddr, la, sizeof(la));
	fmt_addr(e.raddr, ra, sizeof(ra));
	memcpy(comm, e.comm, HS_COMM_LEN);
	comm[HS_COMM_LEN] = 0;
	e.cipher[HS_CIPHER_LEN - 1] = 0;
	if (r->c->json) {
		print_json(&e, la, ra, comm);
	} else {
		t = r->start_wall + (time_t)((e.ts_ns - r->start_ns) / 1000000000ull);
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
		snprintf(lend, sizeof(lend), strchr(la, ':') ? "[%s]:%u" : "%s:%u", la, e.lport);
		snprintf(rend, sizeof(rend), strchr(ra, ':') ? "[%s]:%u" : "%s:%u", ra, e.rport);
		printf("%-8s %-7u %-15s %-6s %-23s %-23s %10.3f %-7s %-5s %s %s\n", ts, e.pid,
		       comm[0] ? comm : "-", e.flags & HS_EV_PASSIVE ? "server" : "client",
		       lend, rend, (double)e.latency_ns / 1e6, hs_outcome_name(e.outcome),
		       hs_source_name(e.source), version_name(e.tls_version), e.cipher);
	}
	fflush(stdout);
	return 0;
}

int lat_events(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "events", no_argument, NULL, 'e' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct ev_run r = { .c = c, .port = -1 };
	struct hs_stats s0 = { 0 }, s1 = { 0 };
	struct ring_buffer *rb;
	double duration = 0;
	struct lat_maps m;
	char err[512], *end;
	__u64 deadline = 0;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "ep:n:d:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			break;
		case 'p':
			r.port = ctl_port(optarg);
			if (r.port < 0)
				return ctl_fail(c, CTL_USAGE, "bad --port '%s'", optarg);
			break;
		case 'n':
			r.max = strtol(optarg, &end, 10);
			if (*end || r.max < 1)
				return ctl_fail(c, CTL_USAGE, "bad --count '%s'", optarg);
			break;
		case 'd':
			duration = strtod(optarg, &end);
			/* A year at most: inf or 1e300 would not fit the deadline. */
			if (*end || end == optarg || !(duration > 0) || duration > 366 * 86400.0)
				return ctl_fail(c, CTL_USAGE, "bad --duration '%s' (seconds, up to a year)",
						optarg);
			break;
		case 'h':
			printf("usage: kmtlsctl latency --events [--port N] [--count N] "
			       "[--duration S]\n");
			return CTL_OK;
		default:
			return ctl_bad_option(c, "latency --events", argv, "ep:n:d:h");
		}
	}
	if (optind != argc)
		return ctl_fail(c, CTL_USAGE, "unexpected argument '%s'", argv[optind]);
	ret = lat_maps_open(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	rb = ring_buffer__new(m.events, on_event, &r, NULL);
	if (!rb) {
		ret = errno;
		lat_maps_close(&m);
		return ctl_fail(c, CTL_ERR, "cannot read the ring buffer %s: %s", HS_MAP_EVENTS,
				strerror(ret));
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	lat_stats_get(&m, &s0);
	r.start_ns = mono_ns();
	r.start_wall = time(NULL);
	if (duration > 0)
		deadline = r.start_ns + (__u64)(duration * 1e9);
	if (!c->json)
		printf("%-8s %-7s %-15s %-6s %-23s %-23s %10s %-7s %-5s %s\n", "TIME", "PID",
		       "COMM", "SIDE", "LOCAL", "REMOTE", "LAT(ms)", "OUTCOME", "BY", "TLS");
	fflush(stdout);
	ret = 0;
	/*
	 * The programs wake the reader only when the ring fills up (a wakeup
	 * costs more than the rest of a program run): read it after every
	 * poll timeout too, and once more at the end.
	 */
	while (!stop && !(r.max && r.seen >= r.max) && !(deadline && mono_ns() >= deadline)) {
		ret = ring_buffer__poll(rb, 100);
		if (ret >= 0 || ret == -EINTR)
			ret = ring_buffer__consume(rb);
		if (ret < 0 && ret != -EINTR)
			break;
		ret = 0;
	}
	if (!ret && !(r.max && r.seen >= r.max))
		ret = ring_buffer__consume(rb) < 0 ? -EIO : 0;
	lat_stats_get(&m, &s1);
	ring_buffer__free(rb);
	lat_maps_close(&m);
	if (ret < 0)
		return ctl_fail(c, CTL_ERR, "reading %s: %s", HS_MAP_EVENTS, strerror(-ret));
	if (c->json) {
		json_object *o = json_object_new_object(), *sum = json_object_new_object();

		json_object_object_add(sum, "events", json_object_new_int64(r.seen));
		json_object_object_add(sum, "dropped", json_object_new_int64(
					       (int64_t)(s1.events_dropped - s0.events_dropped)));
		json_object_object_add(o, "summary", sum);
		ctl_print_json(o);
	} else {
		fprintf(stderr, "%ld events, %llu dropped (ring buffer full)\n", r.seen,
			(unsigned long long)(s1.events_dropped - s0.events_dropped));
	}
	return CTL_OK;
}
