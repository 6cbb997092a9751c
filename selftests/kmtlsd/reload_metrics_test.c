// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the status endpoint says of reloads: kmtls_reload_time_seconds is
 * the last SIGHUP that applied in full, kmtls_reload_failures_total counts
 * those that did not (a corrupt certificate), and neither stops kmtlsd
 * serving.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/status_http.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

/* @dst: a copy of @src, or @bytes when @bytes is not NULL. */
static int put_file(const char *dst, const char *src, const char *bytes)
{
	char buf[16384];
	FILE *in = bytes ? NULL : fopen(src, "r"), *out;
	size_t n = 0;

	if (!bytes && !in)
		return -1;
	if (in) {
		n = fread(buf, 1, sizeof(buf), in);
		fclose(in);
	}
	out = fopen(dst, "w");
	if (!out)
		return -1;
	if (bytes)
		fputs(bytes, out);
	else
		fwrite(buf, 1, n, out);
	return fclose(out);
}

static long scrape(int port, const char *name)
{
	char *m = status_get(port, "/metrics");
	long v = m ? status_metric(m, name) : -2;

	free(m);
	return v;
}

/*
 * A reload that did not apply (a corrupt certificate) leaves the time as
 * it was and counts; the repaired file's reload sets the time; a failure
 * after it keeps that time. kmtlsd serves throughout.
 */
TEST(reload_metrics_say_which_reload_applied)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char cert[512], key[512], listen[64], backend[64], status[64];
	const char *args[] = {
		"--listen", listen, "--backend", backend, "--cert", cert, "--key", key,
		"--ca", pki("ca.pem"), "--status-listen", status, NULL,
	};
	int port = free_port(), sport = free_port();
	struct backend be;
	struct kmtlsd d;
	long before, t;

	signal(SIGPIPE, SIG_IGN);
	snprintf(cert, sizeof(cert), "%s/server.pem", test_tmpdir());
	snprintf(key, sizeof(key), "%s/server.key", test_tmpdir());
	ASSERT_EQ(0, put_file(cert, pki("server.pem"), NULL));
	ASSERT_EQ(0, put_file(key, pki("server.key"), NULL));
	ASSERT_EQ(0, chmod(key, 0600));
	ASSERT_EQ(0, backend_start(&be, be_args));
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", be.port);
	snprintf(status, sizeof(status), "127.0.0.1:%d", sport);
	ASSERT_EQ(0, kmtlsd_run(&d, port, args));
	EXPECT_EQ(0, scrape(sport, "kmtls_reload_time_seconds"));
	EXPECT_EQ(0, scrape(sport, "kmtls_reload_failures_total"));

	ASSERT_EQ(0, put_file(cert, NULL, "-----BEGIN CERTIFICATE-----\nnot base64\n"));
	ASSERT_EQ(0, proc_signal(&d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&d, "keeping the previous certificates", 5000));
	usleep(100000);	/* READY=1 and the counter come right after the line */
	EXPECT_EQ(0, scrape(sport, "kmtls_reload_time_seconds"));
	EXPECT_EQ(1, scrape(sport, "kmtls_reload_failures_total"));
	EXPECT_EQ(1, client_ping(port, pki("client.pem"), pki("client.key")));

	ASSERT_EQ(0, put_file(cert, pki("server.pem"), NULL));
	before = time(NULL);
	ASSERT_EQ(0, kmtlsd_reload(&d, 1));
	usleep(100000);
	t = scrape(sport, "kmtls_reload_time_seconds");
	EXPECT_LE(before, t);
	EXPECT_GE(time(NULL), t);
	EXPECT_EQ(1, scrape(sport, "kmtls_reload_failures_total"));

	/* Another failure after it: the time of the good one stays. */
	ASSERT_EQ(0, put_file(cert, NULL, "garbage\n"));
	ASSERT_EQ(0, proc_signal(&d.proc, SIGHUP));
	for (before = 0; before < 100 && proc_log_count(&d.proc, "keeping the previous certificates") < 2; before++)
		usleep(50000);
	usleep(100000);
	EXPECT_EQ(t, scrape(sport, "kmtls_reload_time_seconds"));
	EXPECT_EQ(2, scrape(sport, "kmtls_reload_failures_total"));
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&d);
	EXPECT_EQ(0, kmtlsd_stop(&d));
	backend_stop(&be);
}

TEST_HARNESS_MAIN
