// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's life as operators see it: the status endpoint (Prometheus text
 * and JSON) counts what happened; SIGTERM stops accepting (on TCP and unix
 * listeners alike) but lets open connections finish, up to the drain
 * timeout, which a SIGHUP does not cut short.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/status_http.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

FIXTURE(life) {
	struct backend be;
	struct kmtlsd d;
	struct kmtlsd orig;	/* originate mode in front of d, when a test needs one */
	int sport;
};

FIXTURE_SETUP(life)
{
	const char *be_args[] = { "--mode", "echo", NULL };
	char status[64];
	const char *args[] = { "--status-listen", status, NULL };

	signal(SIGPIPE, SIG_IGN);
	self->orig.proc.pid = 0;
	self->sport = free_port();
	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, args));
}

FIXTURE_TEARDOWN(life)
{
	if (!__test_passed(_metadata)) {
		kmtlsd_dump_log(&self->orig);
		kmtlsd_dump_log(&self->d);
	}
	kmtlsd_stop(&self->orig);
	kmtlsd_stop(&self->d);
	backend_stop(&self->be);
}

TEST_F(life, metrics_and_status_count_what_happened)
{
	char *m, *js;
	json_object *o, *hs;
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, client_ping(self->d.port, pki("client.pem"), pki("client.key")));
	EXPECT_EQ(0, client_ping(self->d.port, pki("bad/expired.pem"), pki("bad/expired.key")));
	usleep(200000);
	m = status_get(self->sport, "/metrics");
	ASSERT_NE(NULL, m);
	EXPECT_EQ(3, status_metric(m, "kmtls_handshakes_total{outcome=\"ok\"}"));
	EXPECT_EQ(1, status_metric(m, "kmtls_handshakes_total{outcome=\"failed\"}"));
	EXPECT_EQ(3, status_metric(m, "kmtls_handshake_duration_seconds_count"));
	EXPECT_EQ(12, status_metric(m, "kmtls_bytes_total{direction=\"client_to_backend\"}"));
	EXPECT_EQ(0, status_metric(m, "kmtls_connections_active"));
	EXPECT_NE(NULL, strstr(m, "# TYPE kmtls_handshake_duration_seconds histogram"));
	free(m);
	js = status_get(self->sport, "/status");
	ASSERT_NE(NULL, js);
	o = json_tokener_parse(js);
	ASSERT_NE(NULL, o);
	ASSERT_TRUE(json_object_object_get_ex(o, "handshakes", &hs));
	EXPECT_EQ(3, jint(hs, "ok"));
	EXPECT_EQ(1, jint(hs, "failed"));
	EXPECT_EQ(4, jint(o, "accepted"));
	json_object_put(o);
	free(js);
	EXPECT_EQ(NULL, status_get(self->sport, "/nothing"));
}

TEST_F(life, sigterm_drains_open_connections)
{
	struct tls_client_opts o = { .port = self->d.port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	char err[256], buf[4];
	struct tls_end e;
	int fd, status;

	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	proc_signal(&self->d.proc, SIGTERM);
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "draining", 5000));
	usleep(300000);
	/* New connections are refused, the open one still relays. */
	EXPECT_EQ(-ECONNREFUSED, tcp_connect_port(self->d.port, &fd));
	EXPECT_EQ(4, wolfSSL_write(e.ssl, "pong", 4));
	EXPECT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	EXPECT_EQ(0, memcmp(buf, "pong", 4));
	wolfSSL_shutdown(e.ssl);
	tls_end_close(&e);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "drained: all connections finished", 5000));
	ASSERT_EQ(self->d.proc.pid, waitpid(self->d.proc.pid, &status, 0));
	self->d.proc.pid = 0;
	EXPECT_EQ(0, WEXITSTATUS(status));
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Listening sockets bound to @path (/proc/net/unix, flag __SO_ACCEPTCON); -1 unreadable. */
static int unix_listening(const char *path)
{
	char line[512], name[256];
	unsigned int flags;
	FILE *f = fopen("/proc/net/unix", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %255s", &flags, name) == 2 &&
		    (flags & 0x10000) && !strcmp(name, path))
			n++;
	fclose(f);
	return n;
}

/*
 * A unix listener, its socket shared by two workers: once the drain
 * begins, a connect fails at once (the file is gone) instead of waiting in
 * a queue nobody accepts from any more, while the open connection relays.
 */
TEST_F(life, sigterm_unix_listener_refuses_at_once)
{
	char listen[160], backend[64], buf[4];
	const char *args[] = { "--mode", "originate", "--listen", listen, "--backend", backend,
			       "--server-name", "localhost", "--cert", pki("client.pem"),
			       "--key", pki("client.key"), "--ca", pki("ca.pem"),
			       "--workers", "2", NULL };
	struct timeval tv = { .tv_sec = 5 };
	const char *path = listen + 5;
	int fd, late, status;

	snprintf(listen, sizeof(listen), "unix:%s/drain.sock", test_tmpdir());
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", self->d.port);
	ASSERT_EQ(0, kmtlsd_run(&self->orig, 0, args));
	fd = unix_connect(path);
	ASSERT_LE(0, fd) TH_LOG("connect %s: %s", path, strerror(-fd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ASSERT_EQ(4, send(fd, "ping", 4, MSG_NOSIGNAL));
	ASSERT_EQ(4, recv(fd, buf, 4, MSG_WAITALL));
	EXPECT_EQ(1, unix_listening(path));
	proc_signal(&self->orig.proc, SIGTERM);
	ASSERT_EQ(0, kmtlsd_wait_log(&self->orig, "draining", 5000));
	usleep(300000);
	/* Closed in every worker, not just unreachable. */
	EXPECT_EQ(0, unix_listening(path));
	late = unix_connect(path);
	EXPECT_TRUE(late == -ENOENT || late == -ECONNREFUSED)
		TH_LOG("connect during the drain: %s", late >= 0 ? "accepted into the queue" :
		       strerror(-late));
	if (late >= 0)
		close(late);
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s still there during the drain", path);
	EXPECT_EQ(4, send(fd, "pong", 4, MSG_NOSIGNAL));
	EXPECT_EQ(4, recv(fd, buf, 4, MSG_WAITALL));
	EXPECT_EQ(0, memcmp(buf, "pong", 4));
	close(fd);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->orig, "drained: all connections finished", 5000));
	ASSERT_EQ(self->orig.proc.pid, waitpid(self->orig.proc.pid, &status, 0));
	self->orig.proc.pid = 0;
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * A new kmtlsd that took the path over (restart with the old one still
 * running) keeps it: the old one removes only the file it bound.
 */
TEST_F(life, unix_listener_leaves_a_successors_file)
{
	char listen[160], backend[64];
	const char *args[] = { "--mode", "originate", "--listen", listen, "--backend", backend,
			       "--server-name", "localhost", "--cert", pki("client.pem"),
			       "--key", pki("client.key"), "--ca", pki("ca.pem"), NULL };
	const char *path = listen + 5;
	struct kmtlsd next;
	int fd;

	snprintf(listen, sizeof(listen), "unix:%s/next.sock", test_tmpdir());
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", self->d.port);
	ASSERT_EQ(0, kmtlsd_run(&self->orig, 0, args));
	EXPECT_EQ(0, kmtlsd_run(&next, 0, args));
	EXPECT_EQ(0, kmtlsd_stop(&self->orig));
	fd = unix_connect(path);
	EXPECT_LE(0, fd) TH_LOG("the new kmtlsd's %s: %s", path, strerror(-fd));
	if (fd >= 0)
		close(fd);
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&next);
	EXPECT_EQ(0, kmtlsd_stop(&next));
	EXPECT_NE(0, access(path, F_OK)) TH_LOG("%s left behind", path);
}

/*
 * A reload during the drain (systemctl reload, the watch-files thread)
 * leaves it running; a second SIGTERM still ends it at once.
 */
TEST_F(life, sighup_does_not_cut_the_drain)
{
	struct tls_client_opts o = { .port = self->d.port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	char err[256], buf[4];
	struct tls_end e;
	int status;

	ASSERT_EQ(0, tls_client_open(&o, &e, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	proc_signal(&self->d.proc, SIGTERM);
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "draining", 5000));
	proc_signal(&self->d.proc, SIGHUP);
	usleep(500000);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "second signal"));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "reloaded certificates"));
	ASSERT_EQ(4, wolfSSL_write(e.ssl, "pong", 4));
	ASSERT_EQ(4, wolfSSL_read(e.ssl, buf, 4));
	EXPECT_EQ(0, memcmp(buf, "pong", 4));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "SIGHUP while draining"));
	proc_signal(&self->d.proc, SIGTERM);
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "second signal: closing 1 connections now", 5000));
	ASSERT_EQ(self->d.proc.pid, waitpid(self->d.proc.pid, &status, 0));
	self->d.proc.pid = 0;
	EXPECT_EQ(0, WEXITSTATUS(status));
	tls_end_close(&e);
}

TEST_HARNESS_MAIN
