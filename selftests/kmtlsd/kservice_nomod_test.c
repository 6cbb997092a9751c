// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd with [kernel NAME] profiles on a machine without kmtls.ko (the
 * host): it says once what is missing and how to fix it, serves its
 * listeners as usual, and a SIGHUP reloads the profiles and looks again
 * without repeating itself. The kernel service itself is tested in the
 * guest (selftests/kmod/kservice_test.c).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define NOT_LOADED "kernel service: kmtls.ko not loaded: modprobe kmtls"

FIXTURE(nomod) {
	struct backend be;
	struct kmtlsd d;
	char conf[256];
};

FIXTURE_SETUP(nomod)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *args[] = { "-c", self->conf, NULL };
	int port;
	FILE *f;

	memset(&self->d, 0, sizeof(self->d));
	if (!access("/dev/kmtls", F_OK))
		SKIP(return, "kmtls.ko is loaded here");
	signal(SIGPIPE, SIG_IGN);
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	port = free_port();
	snprintf(self->conf, sizeof(self->conf), "%s/kservice-nomod.conf", test_tmpdir());
	f = fopen(self->conf, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, "[listener web]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		"cert = %s\nkey = %s\nca = %s\n\n"
		"[kernel default]\ncert = %s\nkey = %s\nca = %s\nallow-uid = 0\n",
		port, self->be.port, pki("server.pem"), pki("server.key"), pki("ca.pem"),
		pki("server.pem"), pki("server.key"), pki("ca.pem"));
	fclose(f);
	ASSERT_EQ(0, kmtlsd_run(&self->d, port, args));
}

FIXTURE_TEARDOWN(nomod)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

TEST_F(nomod, listeners_serve_and_the_module_is_named_once)
{
	struct tls_client_opts o = { .port = self->d.port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	char err[256], buf[4];
	struct tls_end e;

	EXPECT_EQ(1, proc_log_count(&self->d.proc, NOT_LOADED));
	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	EXPECT_EQ(0, memcmp(buf, "ping", 4));
	wolfSSL_shutdown(e.ssl);
	tls_end_close(&e);

	/* SIGHUP: the profile reloads, kmtls.ko is looked for, no repeat. */
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "of 1 kernel profile(s)", 10000));
	usleep(300 * 1000);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, NOT_LOADED));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "[error]"));
}

TEST_HARNESS_MAIN
