// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The kernel service end to end: an application (this test, through
 * tools/lib/kmtls) hands sockets to /dev/kmtls, kmtlsd ([kernel NAME]
 * profiles, the sandbox on, as shipped) does the mTLS handshake with real
 * peers and installs kTLS. Runs as root in the guest (tools/vm/kmtls-vm),
 * each test in a network namespace of its own (fresh sysctls, counters,
 * /proc/net/tls_stat, and no other agent).
 *
 * Covered: server role against openssl s_client and client role against
 * openssl s_server, data both ways over kTLS, the identity returned equal
 * to the certificate's (openssl's own reading of it); no agent (ESRCH at
 * once); an agent that starts within agent_wait_ms; an agent whose ACCEPT
 * kmtls.ko refuses (a network namespace of another user namespace: it
 * says so and leaves the group, requests fail at once); a stalled peer
 * (ETIMEDOUT at the request's deadline); allow-uid (EACCES), also once a
 * SIGHUP took a uid out of it, an unknown profile (ENOENT); profile and
 * peer names with a newline (escaped in the log) and a flood of refusals
 * (held to the log limit, counted in a summary); bad client
 * certificates (EKEYEXPIRED, EKEYREJECTED,
 * EKEYREVOKED, EACCES by policy); kmtls.ko loaded after kmtlsd started;
 * kmtlsd SIGKILLed under 100 concurrent requests (every one completes in
 * time, no descriptor or socket left, module references back to 0, rmmod).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "../../agent/tls_ctx.h"
#include "../../tools/lib/kmtls/kmtls.h"
#include "../lib/proc.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"
#include "kmod_util.h"

#define NREQ		100	/* the SIGKILL test */

/* ---- small helpers ------------------------------------------------------- */

#define kstat(name)	stat_get(name)
#define tlsstat(name)	counter("/proc/net/tls_stat", name)

/* A TCP listener on 127.0.0.1, any port; *port set. */
static int tcp_listen(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static int accept_within(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* TCP sockets of this namespace other than listeners and TIME_WAIT. */
static int live_tcp_sockets(void)
{
	const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[256];
	unsigned int st;
	size_t i;
	int n = 0;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");

		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " %*d: %*s %*s %x", &st) == 1 && st != 0x0a && st != 0x06)
				n++;
		fclose(f);
	}
	return n;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One line of a shell command's output, newline stripped. */
static int sh_line(const char *cmd, char *buf, size_t len)
{
	FILE *p = popen(cmd, "r");
	int ok;

	if (!p)
		return -1;
	ok = fgets(buf, (int)len, p) != NULL;
	pclose(p);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Only the URI and DNS entries of openssl's SAN line, which is all we pass. */
static void uri_dns_only(char *sans)
{
	char copy[512], *item, *rest = copy;

	snprintf(copy, sizeof(copy), "%s", sans);
	sans[0] = '\0';
	while ((item = strsep(&rest, ","))) {
		item += strspn(item, " ");
		if (!strncmp(item, "URI:", 4) || !strncmp(item, "DNS:", 4))
			sprintf(sans + strlen(sans), "%s%s", sans[0] ? ", " : "", item);
	}
}

/* What openssl reads in a certificate file (its first certificate). */
struct cert_facts {
	char sha256[80];
	char subject[256];
	char sans[512];
};

static int cert_facts(const char *pem, struct cert_facts *f)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -outform DER | sha256sum | cut -d' ' -f1", pem);
	if (sh_line(cmd, f->sha256, sizeof(f->sha256)))
		return -1;
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -subject -nameopt compat | sed 's/^subject=//'", pem);
	if (sh_line(cmd, f->subject, sizeof(f->subject)))
		return -1;
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -ext subjectAltName | tail -n 1", pem);
	if (sh_line(cmd, f->sans, sizeof(f->sans)))
		return -1;
	uri_dns_only(f->sans);
	return 0;
}

/* "URI:a, DNS:b" as openssl prints it, from a peer. */
static void peer_sans(const struct kmtls_peer *p, char *buf, size_t len)
{
	unsigned int i;

	buf[0] = '\0';
	for (i = 0; i < p->n_san_uri; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%sURI:%s",
			 buf[0] ? ", " : "", p->san_uri[i]);
	for (i = 0; i < p->n_san_dns; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%sDNS:%s",
			 buf[0] ? ", " : "", p->san_dns[i]);
}

/*
 * Read a kTLS socket until @want arrived (kmtls_recv, at most @chunk bytes
 * a call); 0 when it did.
 */
static int recv_until_by(int fd, const char *want, int ms, size_t chunk)
{
	char buf[4096];
	size_t got = 0, want_len;
	long long end = now_ms() + ms;
	ssize_t n;

	while (now_ms() < end && got < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 200) <= 0)
			continue;
		want_len = sizeof(buf) - 1 - got < chunk ? sizeof(buf) - 1 - got : chunk;
		n = kmtls_recv(fd, buf + got, want_len, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, want))
			return 0;
	}
	return -1;
}

static int recv_until(int fd, const char *want, int ms)
{
	return recv_until_by(fd, want, ms, 4096);
}

/* ---- a program with its stdin and stdout on pipes (openssl) --------------- */

struct child {
	pid_t pid;
	int in, out;
	char buf[32768];
	size_t len;
};

static int spawn(struct child *ch, char *const argv[])
{
	int in[2], out[2];

	memset(ch, 0, sizeof(*ch));
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (!ch->pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	ch->in = in[1];
	ch->out = out[0];
	return 0;
}

/* Until the output has @needle; 0 when it does. */
static int child_expect(struct child *ch, const char *needle, int ms)
{
	long long end = now_ms() + ms;
	ssize_t n;

	while (!strstr(ch->buf, needle)) {
		struct pollfd p = { .fd = ch->out, .events = POLLIN };
		int left = (int)(end - now_ms());

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		n = read(ch->out, ch->buf + ch->len, sizeof(ch->buf) - 1 - ch->len);
		if (n <= 0)
			return -1;
		ch->len += (size_t)n;
		ch->buf[ch->len] = '\0';
	}
	return 0;
}

static void child_stop(struct child *ch)
{
	if (ch->pid > 0) {
		kill(ch->pid, SIGTERM);
		waitpid(ch->pid, NULL, 0);
	}
	if (ch->in > 0)
		close(ch->in);
	if (ch->out > 0)
		close(ch->out);
	ch->pid = 0;
	ch->in = ch->out = -1;
}

/* ---- wolfSSL peers in threads --------------------------------------------- */

/* A TLS context for a peer: client (presenting @cert) or server. */
static WOLFSSL_CTX *peer_ctx(int server, const char *cert, const char *key)
{
	struct kmtls_tls_conf tc = {
		.server = server, .cert = cert, .key = key, .ca = pki("ca.pem"),
	};
	char err[256];

	return kmtls_tls_ctx_new(&tc, err, sizeof(err));
}

struct peer {
	pthread_t th;
	WOLFSSL_CTX *ctx;
	int fd;
	int server;		/* wolfSSL_accept: the application has the client role */
	const char *say;	/* sent after the handshake */
	size_t want;		/* bytes to read after the handshake */
	int hs;			/* 1: handshake done, else wolfSSL's error */
	char got[256];
	size_t got_len;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct timeval tv = { .tv_sec = 60 };
	char buf[256];
	WOLFSSL *ssl;
	int ret;

	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssl = wolfSSL_new(p->ctx);
	if (!ssl || wolfSSL_set_fd(ssl, p->fd) != WOLFSSL_SUCCESS) {
		p->hs = -1;
		goto out;
	}
	ret = p->server ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
	if (ret != WOLFSSL_SUCCESS) {
		p->hs = wolfSSL_get_error(ssl, ret);
		goto out;
	}
	p->hs = 1;
	if (p->say)
		wolfSSL_write(ssl, p->say, (int)strlen(p->say));
	while (p->got_len < p->want) {
		ret = wolfSSL_read(ssl, p->got + p->got_len, (int)(p->want - p->got_len));
		if (ret <= 0)
			break;
		p->got_len += (size_t)ret;
	}
	/* Until the application closes: its close_notify, or a shutdown. */
	while (wolfSSL_read(ssl, buf, sizeof(buf)) > 0)
		;
out:
	wolfSSL_free(ssl);
	return NULL;
}

static int peer_start(struct peer *p)
{
	return pthread_create(&p->th, NULL, peer_main, p);
}

/* Join, then close the peer's socket. */
static void peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
	close(p->fd);
	p->fd = -1;
}

/* A connected pair: *app (accepted, or connected if @app_client), *peer. */
static int app_pair(int app_client, int *app, int *peer)
{
	int port, lfd = tcp_listen(&port), c, s;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	if (lfd < 0)
		return -1;
	sa.sin_port = htons(port);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
		close(lfd);
		return -1;
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (s < 0) {
		close(c);
		return -1;
	}
	*app = app_client ? c : s;
	*peer = app_client ? s : c;
	return 0;
}

/* ---- kmtlsd ---------------------------------------------------------------- */

struct agent {
	struct proc proc;
	char conf[256];
};

/* The profiles every test has; @extra is appended (more sections). */
static int agent_write_conf(struct agent *a, const char *extra)
{
	FILE *f;

	snprintf(a->conf, sizeof(a->conf), "%s/kmtlsd-%d.conf", test_tmpdir(), getpid());
	f = fopen(a->conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[kmtlsd]\nworkers = 2\n\n"
		"[kernel default]\ncert = %s\nkey = %s\nca = %s\n\n"
		"[kernel client]\ncert = %s\nkey = %s\nca = %s\n\n%s",
		pki("server.pem"), pki("server.key"), pki("ca.pem"),
		pki("client.pem"), pki("client.key"), pki("ca.pem"), extra ? extra : "");
	return fclose(f);
}

/* Start kmtlsd; with @wait_for, until its log says so. */
static int agent_start(struct agent *a, const char *extra, const char *wait_for)
{
	char *argv[] = {
		(char *)out_path("bin/kmtlsd"), "-c", a->conf, "--foreground",
		"--log-level", "debug", NULL,
	};
	char name[64];

	if (agent_write_conf(a, extra))
		return -1;
	snprintf(name, sizeof(name), "kmtlsd-%d.log", getpid());
	if (proc_start(&a->proc, name, argv))
		return -1;
	if (!wait_for)
		return 0;
	return proc_wait_log(&a->proc, wait_for, 20000);
}

#define SERVING "kernel service: serving"

static void agent_dump(struct agent *a)
{
	char line[1024];
	FILE *f = a->proc.log[0] ? fopen(a->proc.log, "r") : NULL;

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "# kmtlsd: %s", line);
	if (f)
		fclose(f);
}

/* SIGTERM, and the exit status (0: clean). */
static int agent_stop(struct agent *a)
{
	int st;

	if (a->proc.pid <= 0)
		return 0;
	st = proc_stop(&a->proc, 10000);
	a->proc.pid = 0;
	return st;
}

/* ---- the fixture ------------------------------------------------------------- */

FIXTURE(ks) {
	struct agent agent;
	int failed_before;
};

FIXTURE_SETUP(ks)
{
	static int wolf;

	memset(&self->agent, 0, sizeof(self->agent));
	if (access("/dev/kmtls", F_OK))
		SKIP(return, "no /dev/kmtls: run in the guest (tools/vm/kmtls-vm) with kmtls.ko");
	if (!wolf++)
		ASSERT_EQ(0, kmtls_tls_global_init());
	signal(SIGPIPE, SIG_IGN);	/* peers write to sockets the kernel shut down */
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
}

FIXTURE_TEARDOWN(ks)
{
	int st = agent_stop(&self->agent);

	if (st != 0 || _metadata->exit_code == KSFT_FAIL)
		agent_dump(&self->agent);
	EXPECT_EQ(0, st) TH_LOG("kmtlsd did not exit cleanly");
}

#define AGENT_UP(extra) \
	ASSERT_EQ(0, agent_start(&self->agent, extra, SERVING)) agent_dump(&self->agent)

/* ---- openssl as the peer ---------------------------------------------------- */

TEST_F_TIMEOUT(ks, server_role_openssl_s_client, 120)
{
	char port_s[32], connect_to[64], sans[600];
	struct kmtls_opts o = { .timeout_ms = 30000 };
	struct cert_facts want;
	struct kmtls_peer peer;
	struct child ch;
	long tx, rx;
	int lfd, port, fd;

	ASSERT_EQ(0, cert_facts(pki("client.pem"), &want));
	AGENT_UP(NULL);
	tx = tlsstat("TlsTxSw");
	rx = tlsstat("TlsRxSw");
	lfd = tcp_listen(&port);
	ASSERT_LE(0, lfd);
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(connect_to, sizeof(connect_to), "127.0.0.1:%d", port);
	{
		char *argv[] = {
			"openssl", "s_client", "-connect", connect_to,
			"-cert", (char *)pki("client.pem"), "-key", (char *)pki("client.key"),
			"-cert_chain", (char *)pki("intermediate.pem"),
			"-CAfile", (char *)pki("ca.pem"), "-quiet", NULL,
		};
		ASSERT_EQ(0, spawn(&ch, argv));
	}
	fd = accept_within(lfd, 20000);
	ASSERT_LE(0, fd);
	close(lfd);

	ASSERT_EQ(0, kmtls_handshake(fd, KMTLS_ROLE_SERVER, &o, &peer))
		TH_LOG("%s; openssl: %s", kmtls_strerror(peer.status), ch.buf);
	/* The identity is the certificate's, as openssl reads it. */
	EXPECT_EQ(1, peer.has_cert);
	EXPECT_STREQ(want.sha256, peer.fingerprint_hex);
	EXPECT_STREQ(want.subject, peer.subject);
	peer_sans(&peer, sans, sizeof(sans));
	EXPECT_STREQ(want.sans, sans);
	EXPECT_EQ(0x0304, peer.tls_version);
	EXPECT_STREQ("TLSv1.3", peer.version_name);
	EXPECT_STRNE("unknown", peer.cipher_name) TH_LOG("cipher 0x%04x", peer.cipher);
	EXPECT_EQ(0, peer.resumed);

	/* kTLS both ways, and data both ways. */
	EXPECT_EQ(tx + 1, tlsstat("TlsTxSw"));
	EXPECT_EQ(rx + 1, tlsstat("TlsRxSw"));
	EXPECT_EQ(1, tlsstat("TlsCurrTxSw"));
	ASSERT_EQ(24, send(fd, "application says hello\r\n", 24, MSG_NOSIGNAL));
	EXPECT_EQ(0, child_expect(&ch, "application says hello", 20000)) TH_LOG("%s", ch.buf);
	ASSERT_EQ(19, write(ch.in, "openssl says hello\n", 19));
	EXPECT_EQ(0, recv_until(fd, "openssl says hello", 20000));
	EXPECT_EQ(0, kmtls_close_notify(fd));
	close(fd);
	child_stop(&ch);
	EXPECT_EQ(1, kstat("Completed"));
	EXPECT_EQ(0, kstat("Failed"));
}

TEST_F_TIMEOUT(ks, client_role_openssl_s_server, 120)
{
	char accept_on[32], sans[600];
	struct kmtls_opts o = { .peer_name = "localhost", .profile = "client", .timeout_ms = 30000 };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct cert_facts want;
	struct kmtls_peer peer;
	struct child ch;
	int fd, port = free_port();

	ASSERT_EQ(0, cert_facts(pki("server.pem"), &want));
	AGENT_UP(NULL);
	snprintf(accept_on, sizeof(accept_on), "127.0.0.1:%d", port);
	{
		/* -cert_chain: a server sends its intermediate, as it should. */
		char *argv[] = {
			"openssl", "s_server", "-accept", accept_on, "-Verify", "1",
			"-cert", (char *)pki("server.pem"), "-key", (char *)pki("server.key"),
			"-cert_chain", (char *)pki("intermediate.pem"),
			"-CAfile", (char *)pki("ca.pem"), NULL,
		};
		ASSERT_EQ(0, spawn(&ch, argv));
	}
	ASSERT_EQ(0, child_expect(&ch, "ACCEPT", 20000)) TH_LOG("%s", ch.buf);
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_EQ(0, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));

	ASSERT_EQ(0, kmtls_handshake(fd, KMTLS_ROLE_CLIENT, &o, &peer))
		TH_LOG("%s; openssl: %s", kmtls_strerror(peer.status), ch.buf);
	EXPECT_STREQ(want.sha256, peer.fingerprint_hex);
	EXPECT_STREQ(want.subject, peer.subject);
	peer_sans(&peer, sans, sizeof(sans));
	EXPECT_STREQ(want.sans, sans);
	EXPECT_EQ(0x0304, peer.tls_version);

	/* s_server verified our (the profile's) certificate and talks. */
	ASSERT_EQ(20, send(fd, "application to peer\n", 20, MSG_NOSIGNAL));
	EXPECT_EQ(0, child_expect(&ch, "application to peer", 20000)) TH_LOG("%s", ch.buf);
	ASSERT_EQ(15, write(ch.in, "server to app!\n", 15));
	/*
	 * The session tickets s_server sent first are skipped by kmtls_recv(),
	 * also a byte at a time (each ticket read whole, not judged by the
	 * first byte of every piece).
	 */
	EXPECT_EQ(0, recv_until_by(fd, "server to app!", 20000, 1));
	EXPECT_EQ(1, tlsstat("TlsCurrRxSw"));
	EXPECT_EQ(0, kmtls_close_notify(fd));
	close(fd);
	child_stop(&ch);
	EXPECT_EQ(1, kstat("Completed"));
}

/* ---- the queue and the agent ------------------------------------------------ */

TEST_F(ks, no_agent_esrch)
{
	struct kmtls_peer peer;
	int app, other;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 0));
	ASSERT_EQ(0, app_pair(0, &app, &other));
	EXPECT_EQ(-ESRCH, kmtls_handshake(app, KMTLS_ROLE_SERVER, NULL, &peer));
	EXPECT_EQ(1, kstat("NoAgent"));
	/* Nothing happened to the socket: it still works in plaintext. */
	EXPECT_EQ(2, send(app, "ok", 2, 0));
	close(app);
	close(other);
}

TEST_F_TIMEOUT(ks, agent_starts_within_agent_wait, 90)
{
	struct peer p = { .server = 0 };
	struct kmtls_peer peer;
	uint64_t id;
	long long t0;
	int dev, app;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 20000));
	p.ctx = peer_ctx(0, pki("client.pem"), pki("client.key"));
	ASSERT_NE(NULL, p.ctx);
	ASSERT_EQ(0, app_pair(0, &app, &p.fd));
	dev = kmtls_open(0);
	ASSERT_LE(0, dev);
	t0 = now_ms();
	ASSERT_EQ(0, kmtls_submit(dev, app, KMTLS_ROLE_SERVER, NULL, 7, &id));
	ASSERT_EQ(0, peer_start(&p));
	usleep(500 * 1000);
	EXPECT_EQ(1, kstat("PendingNow"));
	AGENT_UP(NULL);
	ASSERT_EQ(0, kmtls_wait(dev, id, &peer));
	EXPECT_EQ(0, peer.status) TH_LOG("%s", kmtls_strerror(peer.status));
	EXPECT_EQ(7, (int)peer.user_data);
	EXPECT_LE(500, (now_ms() - t0));
	EXPECT_STREQ("/CN=client/O=kmtls test", peer.subject);
	close(app);
	peer_join(&p);
	EXPECT_EQ(1, p.hs);
	close(dev);
	wolfSSL_CTX_free(p.ctx);
}

/*
 * Into a user namespace with root mapped to root and a network namespace
 * it owns, as `unshare -U -r -n`. The guest runs its commands chrooted,
 * and a chrooted process may not make a user namespace: step out to PID
 * 1's root for the unshare, then back. 0, or -errno.
 */
static int enter_userns_netns(void)
{
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int ret = 0, self;

	if (root < 0 || cwd < 0)
		return -errno;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
		if (errno != EPERM || chroot("/proc/1/root") || chdir("/") ||
		    unshare(CLONE_NEWUSER | CLONE_NEWNET) || fchdir(root) || chroot("."))
			ret = -errno;
	}
	if (fchdir(cwd) && !ret)
		ret = -errno;
	close(root);
	close(cwd);
	if (ret)
		return ret;
	self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	ret = write_at(self, "uid_map", "0 0 1");
	if (!ret)
		ret = write_at(self, "setgroups", "deny");
	if (!ret)
		ret = write_at(self, "gid_map", "0 0 1");
	close(self);
	return ret;
}

/*
 * kmtlsd in a network namespace owned by another user namespace: root
 * there may join kmtls.ko's group (CAP_NET_ADMIN in the namespace's
 * owner) but not ACCEPT (CAP_NET_ADMIN in the initial one). kmtlsd says
 * so once and leaves the group, so that a request fails at once by the
 * no-agent rule instead of waiting for its deadline; it keeps looking,
 * less and less often, without saying it again.
 */
TEST_F_TIMEOUT(ks, accept_refused_in_a_user_namespace, 60)
{
	struct kmtls_opts o = { .timeout_ms = 4000 };
	struct kmtls_peer peer;
	long long t0, took;
	int app, other, ret, n;

	ret = enter_userns_netns();
	if (ret == -EPERM || ret == -EINVAL || ret == -ENOSPC)
		SKIP(return, "cannot make a user namespace here: %s", strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("%s", strerror(-ret));
	ASSERT_EQ(0, lo_up());
	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 0));
	/* It joins the group, so it says it serves; then its first ACCEPT fails. */
	AGENT_UP(NULL);
	EXPECT_EQ(0, proc_wait_log(&self->agent.proc, "refuses this kmtlsd's ACCEPT", 10000));
	EXPECT_EQ(1, proc_log_count(&self->agent.proc, "needs CAP_NET_ADMIN in the initial user namespace"));

	ASSERT_EQ(0, app_pair(0, &app, &other));
	t0 = now_ms();
	EXPECT_EQ(-ESRCH, kmtls_handshake(app, KMTLS_ROLE_SERVER, &o, &peer));
	took = now_ms() - t0;
	EXPECT_GT(1000, took)
		TH_LOG("took %lld ms: the request waited for an agent that cannot take it", took);
	EXPECT_EQ(1, kstat("NoAgent"));
	close(app);
	close(other);
	/*
	 * It looks again after 1 s, 2 s more, 4 s more...: refused again, said
	 * only at debug level, and no claim to serve in between.
	 */
	EXPECT_EQ(0, proc_wait_log(&self->agent.proc, "ACCEPT refused again", 5000));
	sleep(2);
	n = proc_log_count(&self->agent.proc, "ACCEPT refused again");
	EXPECT_LE(1, n);
	EXPECT_GE(3, n) TH_LOG("looked %d times in about 4 s", n);
	EXPECT_EQ(1, proc_log_count(&self->agent.proc, "refuses this kmtlsd's ACCEPT"));
	EXPECT_EQ(1, proc_log_count(&self->agent.proc, SERVING));
}

TEST_F_TIMEOUT(ks, stalled_peer_times_out, 60)
{
	struct kmtls_opts o = { .timeout_ms = 1500 };
	struct kmtls_peer peer;
	long long t0, took;
	int app, other;

	AGENT_UP(NULL);
	ASSERT_EQ(0, app_pair(0, &app, &other));
	t0 = now_ms();
	/* The peer never sends its ClientHello. */
	EXPECT_EQ(-ETIMEDOUT, kmtls_handshake(app, KMTLS_ROLE_SERVER, &o, &peer));
	took = now_ms() - t0;
	EXPECT_LE(1500, took);
	EXPECT_GT(1500 + 1000, took) TH_LOG("took %lld ms", took);
	EXPECT_EQ(1, peer.shut_down);
	EXPECT_EQ(1, kstat("TimedOut") + kstat("FailedConn"));
	close(app);
	close(other);
	/* kmtlsd let go of it too, and says why. */
	EXPECT_EQ(0, proc_wait_log(&self->agent.proc, "handshake timeout", 5000));
}

/* ---- profiles and policy ------------------------------------------------------ */

TEST_F_TIMEOUT(ks, allow_uid_and_unknown_profile, 60)
{
	struct kmtls_opts denied = { .profile = "only-12345" };
	struct kmtls_opts missing = { .profile = "nosuch" };
	struct kmtls_opts root = { .profile = "root-only", .timeout_ms = 30000 };
	struct peer p = { .server = 0 };
	struct kmtls_peer peer;
	char extra[1024];
	int app, other;

	snprintf(extra, sizeof(extra),
		 "[kernel only-12345]\ncert = %s\nkey = %s\nca = %s\nallow-uid = 12345\n\n"
		 "[kernel root-only]\ncert = %s\nkey = %s\nca = %s\nallow-uid = 54321, root\n",
		 pki("server.pem"), pki("server.key"), pki("ca.pem"),
		 pki("server.pem"), pki("server.key"), pki("ca.pem"));
	AGENT_UP(extra);
	ASSERT_EQ(0, app_pair(0, &app, &other));
	EXPECT_EQ(-EACCES, kmtls_handshake(app, KMTLS_ROLE_SERVER, &denied, &peer));
	EXPECT_EQ(1, peer.shut_down);
	close(app);
	close(other);

	ASSERT_EQ(0, app_pair(0, &app, &other));
	EXPECT_EQ(-ENOENT, kmtls_handshake(app, KMTLS_ROLE_SERVER, &missing, &peer));
	close(app);
	close(other);

	/* A listed uid gets through. */
	p.ctx = peer_ctx(0, pki("client.pem"), pki("client.key"));
	ASSERT_NE(NULL, p.ctx);
	ASSERT_EQ(0, app_pair(0, &app, &p.fd));
	p.say = "from the peer";
	ASSERT_EQ(0, peer_start(&p));
	EXPECT_EQ(0, kmtls_handshake(app, KMTLS_ROLE_SERVER, &root, &peer))
		TH_LOG("%s", kmtls_strerror(peer.status));
	EXPECT_EQ(0, recv_until(app, "from the peer", 20000));
	kmtls_close_notify(app);
	close(app);
	peer_join(&p);
	wolfSSL_CTX_free(p.ctx);
	EXPECT_EQ(1, kstat("FailedAuth"));
	EXPECT_EQ(1, kstat("FailedOther") + kstat("FailedConn") + kstat("FailedProto"));
}

/* One server-role handshake with @profile against client.pem: 0 or -errno. */
static int serve_once(const char *profile)
{
	struct kmtls_opts o = { .profile = profile, .timeout_ms = 30000 };
	struct peer p = { .server = 0 };
	struct kmtls_peer peer;
	int app, ret;

	p.ctx = peer_ctx(0, pki("client.pem"), pki("client.key"));
	if (!p.ctx || app_pair(0, &app, &p.fd))
		return -ENOMEM;
	p.say = "from the peer";
	if (peer_start(&p))
		return -ENOMEM;
	ret = kmtls_handshake(app, KMTLS_ROLE_SERVER, &o, &peer);
	if (!ret)
		kmtls_close_notify(app);
	close(app);	/* refused: the kernel shut it down already */
	peer_join(&p);
	wolfSSL_CTX_free(p.ctx);
	return ret;
}

/* SIGHUP with root taken out of allow-uid: root's next request is refused. */
TEST_F_TIMEOUT(ks, allow_uid_narrowed_by_reload, 60)
{
	char extra[512];
	const char *fmt = "[kernel root-only]\ncert = %s\nkey = %s\nca = %s\nallow-uid = %s\n";

	snprintf(extra, sizeof(extra), fmt, pki("server.pem"), pki("server.key"),
		 pki("ca.pem"), "54321, root");
	AGENT_UP(extra);
	EXPECT_EQ(0, serve_once("root-only"));
	snprintf(extra, sizeof(extra), fmt, pki("server.pem"), pki("server.key"),
		 pki("ca.pem"), "54321");
	ASSERT_EQ(0, agent_write_conf(&self->agent, extra));
	ASSERT_EQ(0, proc_signal(&self->agent.proc, SIGHUP));
	ASSERT_EQ(0, proc_wait_log(&self->agent.proc,
				   "reload: [kernel root-only] allow-uid = \"54321\" (was \"54321, 0\")",
				   10000));
	EXPECT_EQ(-EACCES, serve_once("root-only"));
	EXPECT_EQ(0, proc_wait_log(&self->agent.proc, "uid 0 is not in allow-uid of [kernel root-only]", 5000));
	/* The other profiles are as they were. */
	EXPECT_EQ(0, serve_once("default"));
}

/* ---- what any local user sends ---------------------------------------------- */

#define FORGED "2026-01-01T00:00:00.000Z kmtlsd[error]: FORGED"
#define NO_PROFILE "kernel request for no profile of ours"

/* The sum of N over kmtlsd's lines "N more \"@kind\" line(s)". */
static long held_back(struct agent *a, const char *kind)
{
	char line[1024], want[256];
	FILE *f = fopen(a->proc.log, "r");
	long sum = 0;
	char *at;

	snprintf(want, sizeof(want), " more \"%s\" line(s)", kind);
	while (f && fgets(line, sizeof(line), f)) {
		at = strstr(line, want);
		if (!at)
			continue;
		while (at > line && at[-1] >= '0' && at[-1] <= '9')
			at--;
		sum += atol(at);
	}
	if (f)
		fclose(f);
	return sum;
}

/*
 * /dev/kmtls is 0666 and kmtls.ko only checks that the profile and peer
 * names end: their bytes reach kmtlsd's log escaped, so a newline cannot
 * forge a line; and the refusals anyone can cause at will are held to the
 * log limit: the first ones written, the others counted in a summary
 * (which the main thread writes once the window is over).
 */
TEST_F_TIMEOUT(ks, request_strings_neither_forge_nor_flood_the_log, 120)
{
	struct kmtls_opts bad = { .profile = "x\n" FORGED };
	struct kmtls_opts name = { .profile = "client", .peer_name = "localhost\n" FORGED,
				   .timeout_ms = 10000 };
	const char *refused = "profile \"x\\x0a" FORGED "\" cannot be one of ours";
	struct kmtls_peer peer;
	int app, other, i, n = 200, logged = 0, t;

	AGENT_UP(NULL);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, app_pair(0, &app, &other));
		ASSERT_EQ(-ENOENT, kmtls_handshake(app, KMTLS_ROLE_SERVER, &bad, &peer));
		close(app);
		close(other);
	}
	/* Every refusal written or counted; the summary comes after its window. */
	for (t = 0; t < 300; t++) {
		logged = proc_log_count(&self->agent.proc, refused);
		if (logged + held_back(&self->agent, NO_PROFILE) >= n)
			break;
		usleep(100000);
	}
	TH_LOG("%d refusals written, %ld counted in summaries", logged,
	       held_back(&self->agent, NO_PROFILE));
	EXPECT_LE(1, logged);
	EXPECT_GT(n / 2, logged);
	EXPECT_EQ(n, logged + held_back(&self->agent, NO_PROFILE));

	/* A client-role request's peer name, in the line of its failure. */
	ASSERT_EQ(0, app_pair(1, &app, &other));
	/* The "server" answers in plain text: the handshake fails. */
	ASSERT_EQ(17, send(other, "HTTP/1.0 400 no\r\n", 17, MSG_NOSIGNAL));
	EXPECT_GT(0, kmtls_handshake(app, KMTLS_ROLE_CLIENT, &name, &peer));
	close(app);
	close(other);
	EXPECT_EQ(0, proc_wait_log(&self->agent.proc, "client role for localhost\\x0a" FORGED, 5000));

	EXPECT_EQ(0, proc_log_count(&self->agent.proc, "\n" FORGED));
}

FIXTURE(bad) {
	struct agent agent;
};

FIXTURE_VARIANT(bad) {
	const char *cert;	/* under the PKI */
	int expect;
	const char *profile;
};

FIXTURE_VARIANT_ADD(bad, expired) { .cert = "bad/expired", .expect = -EKEYEXPIRED };
FIXTURE_VARIANT_ADD(bad, notyet) { .cert = "bad/notyet", .expect = -EKEYEXPIRED };
FIXTURE_VARIANT_ADD(bad, otherca) { .cert = "bad/otherca", .expect = -EKEYREJECTED };
FIXTURE_VARIANT_ADD(bad, selfsigned) { .cert = "bad/selfsigned", .expect = -EKEYREJECTED };
FIXTURE_VARIANT_ADD(bad, badsig) { .cert = "bad/badsig", .expect = -EKEYREJECTED };
FIXTURE_VARIANT_ADD(bad, revoked) { .cert = "bad/revoked", .expect = -EKEYREVOKED, .profile = "crl" };
FIXTURE_VARIANT_ADD(bad, policy) { .cert = "bad/policy", .expect = -EACCES, .profile = "strict" };

FIXTURE_SETUP(bad)
{
	static int wolf;

	memset(&self->agent, 0, sizeof(self->agent));
	if (access("/dev/kmtls", F_OK))
		SKIP(return, "no /dev/kmtls: run in the guest (tools/vm/kmtls-vm) with kmtls.ko");
	if (!wolf++)
		ASSERT_EQ(0, kmtls_tls_global_init());
	signal(SIGPIPE, SIG_IGN);	/* peers write to sockets the kernel shut down */
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
}

FIXTURE_TEARDOWN(bad)
{
	int st = agent_stop(&self->agent);

	if (st != 0 || _metadata->exit_code == KSFT_FAIL)
		agent_dump(&self->agent);
	EXPECT_EQ(0, st);
}

TEST_F_TIMEOUT(bad, refused, 60)
{
	struct kmtls_opts o = { .profile = variant->profile, .timeout_ms = 30000 };
	struct peer p = { .server = 0 };
	struct kmtls_peer peer;
	char extra[1024], cert[128], key[128];
	int app;

	snprintf(extra, sizeof(extra),
		 "[kernel crl]\ncert = %s\nkey = %s\nca = %s\ncrl = %s\n\n"
		 "[kernel strict]\ncert = %s\nkey = %s\nca = %s\nallow-uri = spiffe://example.org/client\n",
		 pki("server.pem"), pki("server.key"), pki("ca.pem"), pki("crl.pem"),
		 pki("server.pem"), pki("server.key"), pki("ca.pem"));
	ASSERT_EQ(0, agent_start(&self->agent, extra, SERVING)) agent_dump(&self->agent);
	snprintf(cert, sizeof(cert), "%s.pem", variant->cert);
	snprintf(key, sizeof(key), "%s.key", variant->cert);
	p.ctx = peer_ctx(0, pki(cert), pki(key));
	ASSERT_NE(NULL, p.ctx);
	ASSERT_EQ(0, app_pair(0, &app, &p.fd));
	ASSERT_EQ(0, peer_start(&p));
	EXPECT_EQ(variant->expect, kmtls_handshake(app, KMTLS_ROLE_SERVER, &o, &peer))
		TH_LOG("got %d: %s", peer.status, kmtls_strerror(peer.status));
	EXPECT_EQ(1, peer.shut_down);
	EXPECT_EQ(1, kstat("FailedAuth"));
	close(app);
	peer_join(&p);
	wolfSSL_CTX_free(p.ctx);
}

/* ---- the module and the agent come and go ------------------------------------- */

/* Unload kmtls.ko (nothing may use it), in up to @ms. */
static int rmmod_within(int ms)
{
	long long end = now_ms() + ms;

	while (module_refcnt() != 0 && now_ms() < end)
		usleep(20000);
	return run("rmmod kmtls 2>&1");
}

static int insmod(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "insmod %s 2>&1", module_path());
	return run(cmd);
}

TEST_F_TIMEOUT(ks, module_loaded_after_kmtlsd, 90)
{
	struct peer p = { .server = 0 };
	struct kmtls_opts o = { .timeout_ms = 30000 };
	struct kmtls_peer peer;
	int app;

	ASSERT_EQ(0, rmmod_within(5000));
	/* kmtlsd says what is missing once and waits. */
	ASSERT_EQ(0, agent_start(&self->agent, NULL, "kmtls.ko not loaded: modprobe kmtls"))
		agent_dump(&self->agent);
	ASSERT_EQ(0, insmod());
	/* nlctrl tells it: no SIGHUP or restart needed. */
	ASSERT_EQ(0, proc_wait_log(&self->agent.proc, SERVING, 20000));
	EXPECT_EQ(1, proc_log_count(&self->agent.proc, "not loaded"));
	ASSERT_EQ(0, lo_up());
	p.ctx = peer_ctx(0, pki("client.pem"), pki("client.key"));
	ASSERT_NE(NULL, p.ctx);
	ASSERT_EQ(0, app_pair(0, &app, &p.fd));
	ASSERT_EQ(0, peer_start(&p));
	EXPECT_EQ(0, kmtls_handshake(app, KMTLS_ROLE_SERVER, &o, &peer))
		TH_LOG("%s", kmtls_strerror(peer.status));
	close(app);
	peer_join(&p);
	wolfSSL_CTX_free(p.ctx);
}

struct req {
	int app;
	int stalled;		/* the peer never starts its handshake */
	struct peer p;
	uint64_t id;
	long long submitted;
	int status, done;
	long long took;
};

TEST_F_TIMEOUT(ks, sigkill_under_100_requests, 300)
{
	static struct req r[NREQ];
	struct kmtls_opts o = { .timeout_ms = 60000 };
	WOLFSSL_CTX *ctx;
	struct kmtls_peer peer;
	int dev, i, fds_before, pending, ok = 0, aborted = 0, nogent = 0;
	long long end;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 3000));
	ASSERT_EQ(0, set_sysctl("max_pending", 1000));
	ASSERT_EQ(0, set_sysctl("handshake_timeout_ms", o.timeout_ms));
	ctx = peer_ctx(0, pki("client.pem"), pki("client.key"));
	ASSERT_NE(NULL, ctx);
	AGENT_UP(NULL);
	fds_before = count_fds();
	dev = kmtls_open(1);
	ASSERT_LE(0, dev);
	for (i = 0; i < NREQ; i++) {
		r[i].p.ctx = ctx;
		ASSERT_EQ(0, app_pair(0, &r[i].app, &r[i].p.fd));
		/* A quarter stay in flight until the kill, however fast the rest go. */
		r[i].stalled = i % 4 == 3;
		if (!r[i].stalled)
			ASSERT_EQ(0, peer_start(&r[i].p));
		r[i].submitted = now_ms();
		ASSERT_EQ(0, kmtls_submit(dev, r[i].app, KMTLS_ROLE_SERVER, &o, i, &r[i].id));
	}
	TH_LOG("submitted in %lld ms", now_ms() - r[0].submitted);
	/* Let some finish and some be under way, then kill it. */
	end = now_ms() + 60000;
	while (kstat("Completed") < 5 && now_ms() < end)
		usleep(20000);
	EXPECT_LT(0, kstat("InFlightNow") + kstat("PendingNow"));
	ASSERT_EQ(0, proc_signal(&self->agent.proc, SIGKILL));
	waitpid(self->agent.proc.pid, NULL, 0);
	self->agent.proc.pid = 0;

	/* Every request completes, each within its own timeout. */
	for (pending = NREQ, end = now_ms() + o.timeout_ms + 5000; pending && now_ms() < end;) {
		struct pollfd pf = { .fd = dev, .events = POLLIN };

		if (poll(&pf, 1, 500) <= 0)
			continue;
		while (!kmtls_complete(dev, &peer)) {
			struct req *q = &r[peer.user_data];

			ASSERT_GT(NREQ, (int)peer.user_data);
			ASSERT_EQ(0, q->done);
			q->done = 1;
			q->status = peer.status;
			q->took = now_ms() - q->submitted;
			pending--;
		}
	}
	EXPECT_EQ(0, pending);
	for (i = 0; i < NREQ; i++) {
		EXPECT_GE(o.timeout_ms + 1000, r[i].took) TH_LOG("request %d took %lld ms", i, r[i].took);
		if (r[i].status == 0)
			ok++;
		else if (r[i].status == -ECONNABORTED)
			aborted++;
		else if (r[i].status == -ESRCH)
			nogent++;
		else
			TH_LOG("request %d: %d (%s)", i, r[i].status, kmtls_strerror(r[i].status));
		close(r[i].app);
	}
	TH_LOG("%d served, %d aborted with kmtlsd, %d without an agent", ok, aborted, nogent);
	EXPECT_EQ(NREQ, ok + aborted + nogent);
	EXPECT_LE(5, ok);
	EXPECT_LE(1, aborted);
	EXPECT_EQ(0, kstat("InFlightNow"));
	EXPECT_EQ(0, kstat("PendingNow"));
	EXPECT_EQ(NREQ, kstat("Submitted"));
	EXPECT_EQ(aborted, kstat("AgentLost"));

	/* Nothing left behind: threads, descriptors, sockets, references. */
	for (i = 0; i < NREQ; i++) {
		if (r[i].stalled)
			close(r[i].p.fd);
		else
			peer_join(&r[i].p);
	}
	close(dev);
	EXPECT_EQ(fds_before, count_fds());
	for (end = now_ms() + 10000; live_tcp_sockets() && now_ms() < end;)
		usleep(50000);
	EXPECT_EQ(0, live_tcp_sockets());
	wolfSSL_CTX_free(ctx);
	EXPECT_EQ(0, rmmod_within(5000));
	EXPECT_EQ(-1, module_refcnt());
	EXPECT_EQ(0, insmod());
}

TEST_HARNESS_MAIN
