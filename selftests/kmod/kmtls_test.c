// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls.ko as a handshake service: /dev/kmtls on one side, a fake agent
 * (kmtls_nl.h: raw generic netlink, kTLS with a made-up key instead of a
 * handshake) on the other. Runs as root in the guest (tools/vm/kmtls-vm),
 * each test in a network namespace of its own, so that sysctls, counters
 * and agents start fresh and the counters can be checked exactly.
 *
 * Covered: the round trip with the identity intact (client and server
 * role, IPv4 and IPv6); blocking and asynchronous completion; no agent
 * (ESRCH at once, or after agent_wait_ms, or served by an agent that comes
 * in time); max_pending; deadlines before and after ACCEPT; an agent killed
 * under 100 requests; cancellation by close and by exit; bad netlink input
 * and bad ioctls without side effects; tracepoints; namespaces; unload.
 */
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "kmod_util.h"
#include "kmtls_nl.h"
#include "kselftest_harness.h"

#define TRACEFS		"/sys/kernel/tracing"
#define NOBODY		65534

/* ---- the fake agent's identity ------------------------------------------ */

static const uint8_t test_fp[KMTLS_FINGERPRINT_LEN] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static const struct kdone test_identity = {
	.status = 0,
	.tls_version = 0x0304,
	.cipher = 0x1301,
	.resumed = true,
	.subject = "CN=peer.example,O=kmtls test,C=DE",
	.uri = { "spiffe://example.org/ns/prod/sa/web", "urn:kmtls:test",
		 "https://peer.example/id" },
	.dns = { "peer.example", "alt.peer.example" },
	.fingerprint = test_fp,
};

/* The completion carries test_identity exactly */
static bool identity_ok(const struct kmtls_completion *c)
{
	static const char uris[] = "spiffe://example.org/ns/prod/sa/web\0"
				   "urn:kmtls:test\0https://peer.example/id";
	static const char dns[] = "peer.example\0alt.peer.example";

	return c->status == 0 && c->tls_version == 0x0304 &&
	       c->cipher == 0x1301 &&
	       c->flags == (KMTLS_COMPLETION_F_RESUMED |
			    KMTLS_COMPLETION_F_PEER_CERT) &&
	       !strcmp(c->subject, test_identity.subject) &&
	       c->san_uri_count == 3 && c->san_dns_count == 2 &&
	       !memcmp(c->san_uri, uris, sizeof(uris)) &&
	       c->san_uri[sizeof(uris)] == 0 &&
	       !memcmp(c->san_dns, dns, sizeof(dns)) &&
	       !memcmp(c->fingerprint, test_fp, sizeof(test_fp));
}

/* The agent's side of a successful handshake on an accepted fd */
static int serve_ok(struct knl *k, int fd)
{
	int ret = fake_ktls(fd);

	return ret ? ret : knl_done(k, fd, &test_identity);
}

/* ---- a fake agent in a child process ----------------------------------- */

struct agent_opts {
	int accept_max;		/* stop after this many ACCEPTs; 0: never */
	bool no_done;		/* accept and sit on the requests */
	uint32_t status;	/* reported status (positive errno) */
	int notify_fd;		/* one byte per ACCEPT, if >= 0 */
	int delay_ms;		/* before opening the socket */
};

static void __attribute__((noreturn)) agent_main(const struct agent_opts *o)
{
	struct kdone fail = { .status = o->status };
	struct kaccept acc;
	struct knl k;
	int n = 0, ret;

	if (o->delay_ms)
		usleep(o->delay_ms * 1000);
	if (knl_open(&k) || knl_join(&k))
		_exit(2);
	for (;;) {
		/* Join first, then drain: nothing queued is missed */
		while (!o->accept_max || n < o->accept_max) {
			ret = knl_accept(&k, &acc);
			if (ret == -EAGAIN)
				break;
			if (ret)
				_exit(3);
			n++;
			if (o->notify_fd >= 0 && write(o->notify_fd, "a", 1) != 1)
				_exit(4);
			if (o->no_done)
				continue;
			ret = o->status ? knl_done(&k, acc.sockfd, &fail) :
					  serve_ok(&k, acc.sockfd);
			close(acc.sockfd);
		}
		if (o->accept_max && n >= o->accept_max)
			pause();
		else
			knl_wait_ready(&k, 1000);
	}
}

static pid_t agent_start(const struct agent_opts *o)
{
	pid_t pid = fork();

	if (!pid)
		agent_main(o);
	return pid;
}

static void agent_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* ---- fixture: a fresh namespace, /dev/kmtls open in it --------------------- */

FIXTURE(kmod) {
	int dev;
};

FIXTURE_SETUP(kmod)
{
	self->dev = -1;
	if (geteuid())
		SKIP(return, "needs root (run in the guest: tools/vm/kmtls-vm)");
	if (access(DEV, F_OK))
		SKIP(return, DEV " missing: kmtls.ko not loaded");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(kmod)
{
	if (self->dev >= 0)
		close(self->dev);
}

FIXTURE(kmod_rt) {
	int dev;
};

FIXTURE_VARIANT(kmod_rt) {
	int family;
	uint32_t role;
};

FIXTURE_VARIANT_ADD(kmod_rt, client_ipv4) {
	.family = AF_INET,
	.role = KMTLS_ROLE_CLIENT,
};

FIXTURE_VARIANT_ADD(kmod_rt, server_ipv6) {
	.family = AF_INET6,
	.role = KMTLS_ROLE_SERVER,
};

FIXTURE_SETUP(kmod_rt)
{
	self->dev = -1;
	if (geteuid())
		SKIP(return, "needs root (run in the guest: tools/vm/kmtls-vm)");
	if (access(DEV, F_OK))
		SKIP(return, DEV " missing: kmtls.ko not loaded");
	ASSERT_EQ(0, unshare(CLONE_NEWNET));
	ASSERT_EQ(0, lo_up());
	self->dev = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(kmod_rt)
{
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * The whole conversation, step by step: READY, ACCEPT with every attribute,
 * the same socket behind the agent's fd, DONE, the completion with the
 * identity intact, kTLS on the application's fd.
 */
TEST_F(kmod_rt, roundtrip)
{
	struct kmtls_completion c;
	struct kaccept acc;
	uint64_t id;
	int cfd, sfd;
	struct knl k;

	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, knl_join(&k));
	ASSERT_EQ(0, tcp_pair_af(variant->family, &cfd, &sfd));

	ASSERT_EQ(0, submit(self->dev, cfd, variant->role, 5000, 42, &id));
	EXPECT_NE(0ULL, id);
	EXPECT_EQ(1, knl_wait_ready(&k, 2000));
	EXPECT_EQ(1, stat_get("PendingNow"));

	ASSERT_EQ(0, knl_accept(&k, &acc));
	EXPECT_EQ(0xffcU, acc.seen);	/* all 2..11 (1 is padding) */
	EXPECT_NE(cfd, acc.sockfd);
	EXPECT_EQ(sock_cookie(cfd), sock_cookie(acc.sockfd));
	EXPECT_EQ(sock_cookie(cfd), acc.cookie);
	EXPECT_EQ(id, acc.id);
	EXPECT_EQ(variant->role, acc.role);
	EXPECT_STREQ("peer.example", acc.peer_name);
	EXPECT_STREQ("test", acc.profile);
	EXPECT_LT(0U, acc.timeout_ms);
	EXPECT_GE(5000U, acc.timeout_ms);
	EXPECT_EQ((uint32_t)getpid(), acc.pid);
	EXPECT_EQ(0U, acc.uid);
	EXPECT_EQ(0U, acc.gid);
	EXPECT_EQ(FD_CLOEXEC, fcntl(acc.sockfd, F_GETFD));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(1, stat_get("InFlightNow"));
	EXPECT_EQ(-EAGAIN, knl_accept(&k, &acc));	/* queue empty */

	ASSERT_EQ(0, serve_ok(&k, acc.sockfd));
	close(acc.sockfd);

	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_EQ(sizeof(c), c.size);
	EXPECT_EQ(id, c.id);
	EXPECT_EQ(42ULL, c.user_data);
	EXPECT_EQ(sock_cookie(cfd), c.sock_cookie);
	EXPECT_LT(0ULL, c.elapsed_ns);
	EXPECT_TRUE(identity_ok(&c));
	EXPECT_TRUE(has_ulp_tls(cfd));
	EXPECT_EQ(-ENOENT, wait_req(self->dev, id, &c));	/* consumed */

	EXPECT_EQ(1, stat_get("Submitted"));
	EXPECT_EQ(1, stat_get("Accepted"));
	EXPECT_EQ(1, stat_get("Completed"));
	EXPECT_EQ(0, stat_get("Failed"));
	EXPECT_EQ(0, stat_get("InFlightNow"));
	EXPECT_EQ(0, stat_unaccounted());
	close(cfd);
	close(sfd);
	knl_close(&k);
}

/*
 * Many requests from one file, completed out of order, half of them failed:
 * poll says when, read returns them all, each with its own outcome.
 */
TEST_F(kmod, async_poll_read)
{
	enum { N = 16 };
	struct kmtls_completion c[N + 4];
	struct pollfd p = { .events = POLLIN };
	int cfd[N], sfd[N], afd[N], i, got;
	struct kdone fail = { .status = EACCES };
	uint64_t id[N];
	struct knl k;

	p.fd = self->dev;
	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, knl_join(&k));
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[i], &sfd[i]));
		ASSERT_EQ(0, submit(self->dev, cfd[i], KMTLS_ROLE_CLIENT, 10000,
				    1000 + i, &id[i]));
	}
	EXPECT_EQ(0, poll(&p, 1, 0));
	EXPECT_EQ(N, stat_get("PendingNow"));

	for (i = 0; i < N; i++) {
		struct kaccept acc;

		ASSERT_EQ(0, knl_accept(&k, &acc));
		EXPECT_EQ(id[i], acc.id);	/* FIFO */
		afd[i] = acc.sockfd;
	}
	for (i = N - 1; i >= 0; i--) {
		if (i % 2) {
			ASSERT_EQ(0, knl_done(&k, afd[i], &fail));
		} else {
			ASSERT_EQ(0, serve_ok(&k, afd[i]));
		}
		close(afd[i]);
	}

	ASSERT_EQ(1, poll(&p, 1, 2000));
	got = read(self->dev, c, sizeof(c));
	ASSERT_EQ(N * (int)sizeof(c[0]), got);
	for (i = 0; i < N; i++) {
		int j = N - 1 - i;	/* completed in reverse */

		EXPECT_EQ(id[j], c[i].id);
		EXPECT_EQ((uint64_t)(1000 + j), c[i].user_data);
		if (j % 2) {
			EXPECT_EQ(-EACCES, c[i].status);
			EXPECT_EQ(KMTLS_COMPLETION_F_SHUTDOWN, c[i].flags);
			EXPECT_EQ(0, c[i].tls_version);
			EXPECT_EQ(0, c[i].subject[0]);
			EXPECT_TRUE(is_shut_down(cfd[j]));
		} else {
			EXPECT_TRUE(identity_ok(&c[i]));
			EXPECT_TRUE(has_ulp_tls(cfd[j]));
		}
	}
	EXPECT_EQ(0, poll(&p, 1, 0));
	EXPECT_EQ(N / 2, stat_get("Completed"));
	EXPECT_EQ(N / 2, stat_get("Failed"));
	EXPECT_EQ(N / 2, stat_get("FailedAuth"));
	EXPECT_EQ(0, stat_unaccounted());
	for (i = 0; i < N; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	knl_close(&k);
}

/* A blocking KMTLS_IOC_WAIT returns when an agent in another process is done */
TEST_F(kmod, blocking_wait_agent_process)
{
	struct agent_opts o = { .notify_fd = -1 };
	struct kmtls_completion c;
	uint64_t id;
	int cfd, sfd;
	pid_t agent;

	agent = agent_start(&o);
	ASSERT_LT(0, agent);
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 10000, 7, &id));
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_TRUE(identity_ok(&c));
	EXPECT_TRUE(has_ulp_tls(cfd));
	agent_stop(agent);
	close(cfd);
	close(sfd);
}

/* KMTLS_IOC_WAIT and read(2) around their edges */
TEST_F(kmod, wait_read_semantics)
{
	struct kmtls_completion c;
	struct kmtls_wait w;
	int cfd, sfd, nb;
	uint64_t id;
	char small[64];

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 600000));
	EXPECT_EQ(-ENOENT, wait_req(self->dev, 12345, &c));
	EXPECT_EQ(-ENOENT, wait_req(self->dev, 0, &c));
	EXPECT_EQ(-1, read(self->dev, small, sizeof(small)));
	EXPECT_EQ(EINVAL, errno);

	nb = open(DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-1, read(nb, &c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	ASSERT_EQ(0, submit(nb, cfd, KMTLS_ROLE_CLIENT, 300, 0, &id));
	EXPECT_EQ(-EAGAIN, wait_req(nb, id, &c));
	EXPECT_EQ(-EAGAIN, wait_req(nb, 0, &c));
	EXPECT_EQ(-ENOENT, wait_req(self->dev, id, &c));  /* other file */

	/* A bad completion pointer keeps the completion for the next try */
	usleep(600 * 1000);
	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.id = id;
	w.completion = 8;
	w.completion_size = sizeof(c);
	EXPECT_EQ(-1, ioctl(nb, KMTLS_IOC_WAIT, &w));
	EXPECT_EQ(EFAULT, errno);
	w.completion = (uintptr_t)&c;
	w.completion_size = sizeof(c) - 1;
	EXPECT_EQ(-1, ioctl(nb, KMTLS_IOC_WAIT, &w));
	EXPECT_EQ(EINVAL, errno);
	w.completion_size = sizeof(c);
	w.flags = 1;
	EXPECT_EQ(-1, ioctl(nb, KMTLS_IOC_WAIT, &w));
	EXPECT_EQ(EINVAL, errno);
	w.flags = 0;
	w.reserved = 1;
	EXPECT_EQ(-1, ioctl(nb, KMTLS_IOC_WAIT, &w));
	EXPECT_EQ(EINVAL, errno);
	w.reserved = 0;
	w.size = 8;
	EXPECT_EQ(-1, ioctl(nb, KMTLS_IOC_WAIT, &w));
	EXPECT_EQ(EINVAL, errno);

	EXPECT_EQ(0, wait_req(nb, id, &c));
	EXPECT_EQ(-ETIMEDOUT, c.status);
	EXPECT_EQ(0U, c.flags);
	EXPECT_EQ(1, stat_get("TimedOut"));
	close(nb);
	close(cfd);
	close(sfd);
}

/* agent_wait_ms = 0 and nobody listens: ESRCH at once, socket untouched */
TEST_F(kmod, no_agent_esrch)
{
	int cfd, sfd;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 0));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	EXPECT_EQ(-ESRCH, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_TRUE(still_plain(cfd, sfd));
	EXPECT_EQ(1, stat_get("Submitted"));
	EXPECT_EQ(1, stat_get("NoAgent"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_unaccounted());
	close(cfd);
	close(sfd);
}

/* Nobody comes within agent_wait_ms: ESRCH then, socket untouched */
TEST_F(kmod, agent_wait_expires)
{
	struct kmtls_completion c;
	long long t0;
	int cfd, sfd;
	uint64_t id;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 300));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	t0 = now_ms();
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, &id));
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_EQ(-ESRCH, c.status);
	EXPECT_EQ(0U, c.flags);
	EXPECT_LE(290, now_ms() - t0);
	EXPECT_GT(5000, now_ms() - t0);
	EXPECT_TRUE(still_plain(cfd, sfd));
	EXPECT_EQ(1, stat_get("NoAgent"));
	EXPECT_EQ(0, stat_unaccounted());
	close(cfd);
	close(sfd);
}

/* An agent that starts within agent_wait_ms serves what is queued */
TEST_F(kmod, agent_arrives_in_time)
{
	struct agent_opts o = { .notify_fd = -1, .delay_ms = 400 };
	struct kmtls_completion c;
	int cfd, sfd;
	uint64_t id;
	pid_t agent;

	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 5000));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_SERVER, 0, 0, &id));
	agent = agent_start(&o);
	ASSERT_LT(0, agent);
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_TRUE(identity_ok(&c));
	EXPECT_LE(400000000ULL, c.elapsed_ns);
	EXPECT_TRUE(has_ulp_tls(cfd));
	agent_stop(agent);
	close(cfd);
	close(sfd);
}

/* max_pending bounds the queue: EAGAIN beyond, nothing else changes */
TEST_F(kmod, max_pending_eagain)
{
	int cfd[4], sfd[4], i;

	ASSERT_EQ(0, set_sysctl("max_pending", 3));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[i], &sfd[i]));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, submit(self->dev, cfd[i], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_EQ(-EAGAIN, submit(self->dev, cfd[3], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_TRUE(still_plain(cfd[3], sfd[3]));
	EXPECT_EQ(3, stat_get("PendingNow"));
	EXPECT_EQ(1, stat_get("QueueFull"));
	EXPECT_EQ(0, stat_unaccounted());

	/* Closing the file cancels the three */
	close(self->dev);
	self->dev = -1;
	EXPECT_EQ(3, stat_get("Cancelled"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_unaccounted());
	for (i = 0; i < 4; i++) {
		EXPECT_TRUE(still_plain(cfd[i], sfd[i]));
		close(cfd[i]);
		close(sfd[i]);
	}
}

/* Deadline while queued (an agent listens but does not take it) */
TEST_F(kmod, deadline_pending)
{
	struct kmtls_completion c;
	int cfd, sfd;
	uint64_t id;
	long long t0;
	struct knl k;

	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, knl_join(&k));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	t0 = now_ms();
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 300, 0, &id));
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_EQ(-ETIMEDOUT, c.status);
	EXPECT_EQ(0U, c.flags);
	EXPECT_LE(290, now_ms() - t0);
	EXPECT_TRUE(still_plain(cfd, sfd));
	EXPECT_EQ(-EAGAIN, knl_accept(&k, &(struct kaccept){}));
	EXPECT_EQ(1, stat_get("TimedOut"));
	EXPECT_EQ(0, stat_unaccounted());
	close(cfd);
	close(sfd);
	knl_close(&k);
}

/* Deadline after ACCEPT: ETIMEDOUT, socket shut down, late DONE refused */
TEST_F(kmod, deadline_accepted)
{
	struct kmtls_completion c;
	struct kaccept acc;
	int cfd, sfd;
	uint64_t id;
	struct knl k;

	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 300, 0, &id));
	ASSERT_EQ(0, knl_accept(&k, &acc));
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_EQ(-ETIMEDOUT, c.status);
	EXPECT_EQ(KMTLS_COMPLETION_F_SHUTDOWN, c.flags);
	EXPECT_TRUE(is_shut_down(cfd));
	EXPECT_EQ(-ENOENT, knl_done(&k, acc.sockfd, &(struct kdone){ .status = EIO }));
	EXPECT_EQ(1, stat_get("TimedOut"));
	EXPECT_EQ(0, stat_get("Failed"));
	EXPECT_EQ(0, stat_unaccounted());
	close(acc.sockfd);
	close(cfd);
	close(sfd);
	knl_close(&k);
}

/*
 * 100 requests; the agent takes 50 and is killed. Those 50 fail with
 * ECONNABORTED and a shut-down socket, the other 50 wait for the next
 * agent, which serves them. All within their timeout; no fd left behind;
 * the module's references all return.
 */
TEST_F_TIMEOUT(kmod, agent_killed_100, 240)
{
	enum { N = 100, TIMEOUT_MS = 60000 };
	struct agent_opts a = { .accept_max = N / 2, .no_done = true };
	struct agent_opts b = { .notify_fd = -1 };
	static struct kmtls_completion c[N];
	int cfd[N], sfd[N], pipefd[2], fds0, i, lost = 0, ok = 0;
	uint64_t id[N];
	pid_t pa, pb;
	char buf[N];

	fds0 = count_fds();
	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 30000));
	ASSERT_EQ(0, pipe2(pipefd, O_CLOEXEC));
	a.notify_fd = pipefd[1];
	pa = agent_start(&a);
	ASSERT_LT(0, pa);
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[i], &sfd[i]));
		ASSERT_EQ(0, submit(self->dev, cfd[i], KMTLS_ROLE_CLIENT,
				    TIMEOUT_MS, i, &id[i]));
	}
	for (i = 0; i < N / 2; i += (int)read(pipefd[0], buf, N / 2 - i))
		;
	EXPECT_EQ(N / 2, stat_get("InFlightNow"));
	EXPECT_EQ(N / 2, stat_get("PendingNow"));

	kill(pa, SIGKILL);
	waitpid(pa, NULL, 0);
	ASSERT_EQ(N / 2, collect(self->dev, c, N / 2, 20000));
	for (i = 0; i < N / 2; i++) {
		lost += c[i].status == -ECONNABORTED &&
			c[i].flags == KMTLS_COMPLETION_F_SHUTDOWN &&
			is_shut_down(cfd[c[i].user_data]);
	}
	EXPECT_EQ(N / 2, lost);
	EXPECT_EQ(N / 2, stat_get("AgentLost"));
	EXPECT_EQ(N / 2, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_get("InFlightNow"));

	pb = agent_start(&b);
	ASSERT_LT(0, pb);
	ASSERT_EQ(N / 2, collect(self->dev, c + N / 2, N / 2, 60000));
	for (i = N / 2; i < N; i++) {
		ok += identity_ok(&c[i]) && has_ulp_tls(cfd[c[i].user_data]) &&
		      c[i].elapsed_ns < TIMEOUT_MS * 1000000ULL;
	}
	EXPECT_EQ(N / 2, ok);
	agent_stop(pb);

	EXPECT_EQ(N, stat_get("Accepted"));
	EXPECT_EQ(N / 2, stat_get("Completed"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_get("InFlightNow"));
	EXPECT_EQ(0, stat_unaccounted());

	for (i = 0; i < N; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	close(pipefd[0]);
	close(pipefd[1]);
	close(self->dev);
	self->dev = -1;
	EXPECT_EQ(fds0 - 1, count_fds());
	EXPECT_EQ(0, module_refcnt_settle(0, 5000));
}

struct closer {
	int fd;
	int delay_us;
};

static void *close_later(void *arg)
{
	struct closer *c = arg;

	usleep(c->delay_us);
	close(c->fd);
	return NULL;
}

/*
 * DONE against the deadline, and against close() of the submitter's file,
 * at random moments: every request completes exactly once, and DONE
 * succeeds exactly when its outcome is the one delivered.
 */
TEST_F_TIMEOUT(kmod, race_exactly_once, 120)
{
	enum { ROUNDS = 40, N = 8 };
	struct kmtls_completion c[N];
	int cfd[N], sfd[N], afd[N], rc[N], want[N], i, r, got, dev;
	long done_ok = 0, cancelled = 0;
	struct kdone fail = { .status = EIO };
	struct closer cl;
	struct knl k;
	pthread_t t;

	ASSERT_EQ(0, knl_open(&k));
	srand(getpid());
	for (r = 0; r < ROUNDS; r++) {
		bool close_race = r % 2;
		uint64_t id[N];

		dev = open(DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, dev);
		for (i = 0; i < N; i++) {
			ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[i], &sfd[i]));
			ASSERT_EQ(0, submit(dev, cfd[i], KMTLS_ROLE_CLIENT,
					    close_race ? 0 : 20, i, &id[i]));
		}
		for (i = 0; i < N; i++) {
			afd[i] = -1;
			rc[i] = -ENOENT;	/* no DONE sent */
		}
		for (i = 0; i < N; i++) {
			struct kaccept acc;
			int j;

			if (knl_accept(&k, &acc))
				break;	/* the rest timed out queued */
			for (j = 0; j < N && id[j] != acc.id; j++)
				;
			ASSERT_GT(N, j);
			afd[j] = acc.sockfd;
		}
		if (close_race) {
			cl.fd = dev;
			cl.delay_us = rand() % 3000;
			ASSERT_EQ(0, pthread_create(&t, NULL, close_later, &cl));
		} else {
			usleep(rand() % 40000);
		}
		for (i = 0; i < N; i++) {
			if (afd[i] < 0)
				continue;
			/* kTLS fails on a socket the deadline shut down */
			want[i] = i % 2 || fake_ktls(afd[i]) ? -EIO : 0;
			rc[i] = knl_done(&k, afd[i], want[i] ? &fail :
							 &test_identity);
			close(afd[i]);
		}
		if (close_race) {
			pthread_join(t, NULL);
			for (i = 0; i < N; i++)
				done_ok += !rc[i];
		} else {
			got = collect(dev, c, N, 5000);
			ASSERT_EQ(N, got);
			for (i = 0; i < N; i++) {
				int j = c[i].user_data;

				EXPECT_EQ(id[j], c[i].id);
				if (rc[j] == 0) {
					EXPECT_EQ(want[j], c[i].status);
					done_ok++;
				} else {
					EXPECT_EQ(-ENOENT, rc[j]);
					EXPECT_EQ(-ETIMEDOUT, c[i].status);
				}
			}
			EXPECT_EQ(0, poll(&(struct pollfd){ .fd = dev, .events = POLLIN },
					  1, 100));
			close(dev);
		}
		for (i = 0; i < N; i++) {
			close(cfd[i]);
			close(sfd[i]);
		}
	}
	cancelled = stat_get("Cancelled");
	EXPECT_EQ(ROUNDS * N, stat_get("Submitted"));
	EXPECT_EQ(done_ok, stat_get("Completed") + stat_get("Failed"));
	EXPECT_EQ(ROUNDS * N, done_ok + cancelled + stat_get("TimedOut"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_get("InFlightNow"));
	EXPECT_EQ(0, stat_unaccounted());
	TH_LOG("%ld done, %ld cancelled, %ld timed out", done_ok, cancelled,
	       stat_get("TimedOut"));
	knl_close(&k);
}

/* Close of the file cancels: queued ones untouched, accepted ones shut */
TEST_F(kmod, cancel_on_close)
{
	int cfd[2], sfd[2], dev2;
	struct kaccept acc;
	struct knl k;

	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[0], &sfd[0]));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[1], &sfd[1]));
	dev2 = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, dev2);
	ASSERT_EQ(0, submit(dev2, cfd[0], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	ASSERT_EQ(0, knl_accept(&k, &acc));
	ASSERT_EQ(0, submit(dev2, cfd[1], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_EQ(1, stat_get("PendingNow"));
	EXPECT_EQ(1, stat_get("InFlightNow"));

	close(dev2);
	EXPECT_EQ(2, stat_get("Cancelled"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_get("InFlightNow"));
	EXPECT_TRUE(is_shut_down(cfd[0]));
	EXPECT_TRUE(still_plain(cfd[1], sfd[1]));
	EXPECT_EQ(-ENOENT, knl_done(&k, acc.sockfd, &test_identity));
	EXPECT_EQ(-EAGAIN, knl_accept(&k, &acc));
	EXPECT_EQ(0, stat_unaccounted());
	close(acc.sockfd);
	close(cfd[0]);
	close(sfd[0]);
	close(cfd[1]);
	close(sfd[1]);
	knl_close(&k);
}

/* Exit of the submitting process cancels its requests */
TEST_F(kmod, cancel_on_exit)
{
	int cfd, sfd, status;
	pid_t pid;

	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int dev = open(DEV, O_RDWR);

		_exit(submit(dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL) ? 1 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	EXPECT_EQ(1, stat_get("Cancelled"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_TRUE(still_plain(cfd, sfd));
	/* The socket is free for a new request */
	EXPECT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(cfd);
	close(sfd);
}

/* An unprivileged process can neither join "agents" nor ACCEPT nor DONE */
static int unprivileged_agent(int sockfd)
{
	struct kaccept acc;
	struct knl k;
	int ret;

	if (setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
		return 10;
	ret = knl_open(&k);
	if (ret)
		return 11;
	if (knl_join(&k) != -EPERM)
		return 12;
	if (knl_accept(&k, &acc) != -EPERM)
		return 13;
	if (knl_done(&k, sockfd, &(struct kdone){ .status = EIO }) != -EPERM)
		return 14;
	return 0;
}

/*
 * Every bad DONE and ACCEPT fails with its errno and changes nothing: the
 * request stays in flight until a good DONE, which then works once.
 */
TEST_F(kmod, bad_netlink)
{
	struct kdone d = test_identity;
	int cfd, sfd, ofd, osfd, pfd[2], status;
	struct kaccept acc;
	struct knl k, k2;
	struct kmsg m;
	char longs[700];
	pid_t pid;
	int i;

	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, knl_open(&k2));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &ofd, &osfd));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ASSERT_EQ(0, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));

	/* Before ACCEPT, the submitter's own fd names a queued request */
	EXPECT_EQ(-ENOENT, knl_done(&k, cfd, &(struct kdone){ .status = EIO }));
	ASSERT_EQ(0, knl_accept(&k, &acc));

	/* Missing attributes */
	kmsg_init(&m, k.family, 0, KMTLS_CMD_DONE, 1);
	kmsg_u32(&m, KMTLS_A_DONE_SOCKFD, acc.sockfd);
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));
	kmsg_init(&m, k.family, 0, KMTLS_CMD_DONE, 1);
	kmsg_u32(&m, KMTLS_A_DONE_STATUS, EIO);
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));
	kmsg_init(&m, k.family, 0, KMTLS_CMD_DONE, 1);
	kmsg_u32(&m, KMTLS_A_DONE_STATUS, 0);
	kmsg_u32(&m, KMTLS_A_DONE_SOCKFD, acc.sockfd);
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));	/* success, no version */

	/* Wrong fds */
	EXPECT_EQ(-EBADF, knl_done(&k, 999, &(struct kdone){ .status = EIO }));
	EXPECT_EQ(-EBADF, knl_done(&k, -1, &(struct kdone){ .status = EIO }));
	EXPECT_EQ(-ENOTSOCK, knl_done(&k, pfd[0], &(struct kdone){ .status = EIO }));
	EXPECT_EQ(-ENOENT, knl_done(&k, ofd, &(struct kdone){ .status = EIO }));
	EXPECT_EQ(-ENOENT, knl_done(&k, k.fd, &(struct kdone){ .status = EIO }));
	/* Another agent socket may not complete this one */
	EXPECT_EQ(-ENOENT, knl_done(&k2, acc.sockfd, &(struct kdone){ .status = EIO }));

	/* Success without kTLS on the socket */
	EXPECT_EQ(-EINVAL, knl_done(&k, acc.sockfd, &test_identity));

	/* Out of policy */
	EXPECT_EQ(-ERANGE, knl_done(&k, acc.sockfd, &(struct kdone){ .status = 4096 }));
	/* ERESTARTSYS and its kin are the kernel's, not for applications */
	EXPECT_EQ(-ERANGE, knl_done(&k, acc.sockfd, &(struct kdone){ .status = 512 }));
	ASSERT_EQ(0, fake_ktls(acc.sockfd));
	d.tls_version = 0x0302;
	EXPECT_EQ(-ERANGE, knl_done(&k, acc.sockfd, &d));
	d = test_identity;
	memset(longs, 'a', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	d.subject = longs;
	EXPECT_EQ(-EINVAL, knl_done(&k, acc.sockfd, &d));
	d = test_identity;
	longs[600] = 0;
	d.uri[0] = longs;
	d.uri[1] = longs;	/* 1202 bytes of URIs */
	EXPECT_EQ(-EMSGSIZE, knl_done(&k, acc.sockfd, &d));
	d = test_identity;
	d.dns[1] = "";
	EXPECT_EQ(-EINVAL, knl_done(&k, acc.sockfd, &d));
	kmsg_done(&m, &k, acc.sockfd, &test_identity);
	kmsg_put(&m, KMTLS_A_DONE_PEER_FINGERPRINT, test_fp, 16);
	EXPECT_NE(0, knl_xact(&k, &m, NULL));	/* fingerprint of 16 bytes */
	kmsg_done(&m, &k, acc.sockfd, &test_identity);
	kmsg_u32(&m, KMTLS_A_DONE_MAX + 1, 1);
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));	/* unknown attribute */
	kmsg_done(&m, &k, acc.sockfd, &test_identity);
	((struct genlmsghdr *)NLMSG_DATA(&m.nlh))->reserved = 1;
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));	/* header */
	kmsg_init(&m, k.family, 0, KMTLS_CMD_ACCEPT, 1);
	kmsg_u32(&m, KMTLS_A_ACCEPT_ROLE, 1);
	EXPECT_EQ(-EINVAL, knl_xact(&k, &m, NULL));	/* ACCEPT takes none */
	kmsg_init(&m, k.family, 0, KMTLS_CMD_READY, 1);
	EXPECT_EQ(-EOPNOTSUPP, knl_xact(&k, &m, NULL));	/* kernel -> agent only */

	/* Not root: EPERM */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(unprivileged_agent(acc.sockfd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Nothing happened */
	EXPECT_EQ(1, stat_get("InFlightNow"));
	EXPECT_EQ(0, stat_get("Completed"));
	EXPECT_EQ(0, stat_get("Failed"));
	EXPECT_EQ(0, stat_get("Cancelled"));
	EXPECT_EQ(0, stat_get("AgentLost"));

	/* The good one works, once */
	EXPECT_EQ(0, knl_done(&k, acc.sockfd, &test_identity));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(-ENOENT, knl_done(&k, acc.sockfd, &test_identity));
	EXPECT_EQ(1, stat_get("Completed"));
	EXPECT_EQ(0, stat_unaccounted());
	close(acc.sockfd);
	close(cfd);
	close(sfd);
	close(ofd);
	close(osfd);
	close(pfd[0]);
	close(pfd[1]);
	knl_close(&k);
	knl_close(&k2);
}

/* Every bad submission fails with its errno and changes nothing */
TEST_F(kmod, bad_ioctl)
{
	struct kmtls_submit sub;
	int cfd, sfd, fd, u[2], l, rfd;
	char big[8192] = {};

	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));

#define EXPECT_SUBMIT_ERRNO(err, arg) do {				\
		EXPECT_EQ(-1, ioctl(self->dev, KMTLS_IOC_SUBMIT, (arg)));\
		EXPECT_EQ((err), errno);				\
	} while (0)

	/* The struct */
	EXPECT_EQ(-1, ioctl(self->dev, _IO(KMTLS_IOC_MAGIC, 0x7f), 0));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, TCGETS, big));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_SUBMIT_ERRNO(EFAULT, NULL);
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	sub.size = 0;
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	sub.size = KMTLS_SUBMIT_SIZE_VER0 - 1;
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	memcpy(big, &sub, sizeof(sub));
	((struct kmtls_submit *)big)->size = 4097;
	EXPECT_SUBMIT_ERRNO(E2BIG, big);
	((struct kmtls_submit *)big)->size = sizeof(sub) + 8;
	big[sizeof(sub) + 3] = 1;
	EXPECT_SUBMIT_ERRNO(E2BIG, big);
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	sub.flags = 1;
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	sub.reserved = 1;
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	submit_init(&sub, cfd, 0, 0, 0);
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	submit_init(&sub, cfd, 3, 0, 0);
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	memset(sub.peer_name, 'x', sizeof(sub.peer_name));
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	memset(sub.profile, 'x', sizeof(sub.profile));
	EXPECT_SUBMIT_ERRNO(EINVAL, &sub);

	/* The fd */
	EXPECT_EQ(-EBADF, submit(self->dev, -1, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_EQ(-EBADF, submit(self->dev, 999, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_EQ(-ENOTSOCK, submit(self->dev, self->dev, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	rfd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	EXPECT_EQ(-ENOTSOCK, submit(self->dev, rfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(rfd);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	EXPECT_EQ(0, connect(fd, (struct sockaddr *)&(struct sockaddr_in){
		.sin_family = AF_INET, .sin_port = htons(9),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) }, sizeof(struct sockaddr_in)));
	EXPECT_EQ(-EOPNOTSUPP, submit(self->dev, fd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(fd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u));
	EXPECT_EQ(-EOPNOTSUPP, submit(self->dev, u[0], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(u[0]);
	close(u[1]);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_EQ(-ENOTCONN, submit(self->dev, fd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(fd);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT_EQ(0, listen(l, 1));
	EXPECT_EQ(-ENOTCONN, submit(self->dev, l, KMTLS_ROLE_SERVER, 0, 0, NULL));
	close(l);
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &fd, &l));
	ASSERT_EQ(0, setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")));
	EXPECT_EQ(-EEXIST, submit(self->dev, fd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(fd);
	close(l);

	/* Nothing happened */
	EXPECT_EQ(0, stat_get("Submitted"));
	EXPECT_EQ(0, stat_get("PendingNow"));
	EXPECT_TRUE(still_plain(cfd, sfd));

	/* A longer struct with a zero tail is fine; the socket once only */
	memset(big, 0, sizeof(big));
	submit_init(&sub, cfd, KMTLS_ROLE_CLIENT, 0, 0);
	memcpy(big, &sub, sizeof(sub));
	((struct kmtls_submit *)big)->size = sizeof(sub) + 64;
	EXPECT_EQ(0, ioctl(self->dev, KMTLS_IOC_SUBMIT, big));
	EXPECT_NE(0ULL, ((struct kmtls_submit *)big)->id);
	EXPECT_EQ(-EBUSY, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	EXPECT_EQ(1, stat_get("Submitted"));
	EXPECT_EQ(1, stat_get("PendingNow"));
	EXPECT_EQ(0, stat_unaccounted());
	close(cfd);
	close(sfd);
}

/* Requests and agents stay in their namespace */
TEST_F(kmod, netns_isolation)
{
	int cfd, sfd, pfd[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct knl k;

		if (unshare(CLONE_NEWNET) || knl_open(&k) || knl_join(&k))
			_exit(1);
		if (write(pfd[1], "j", 1) != 1)
			_exit(1);
		pause();
	}
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	ASSERT_EQ(0, set_sysctl("agent_wait_ms", 0));
	ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd, &sfd));
	EXPECT_EQ(-ESRCH, submit(self->dev, cfd, KMTLS_ROLE_CLIENT, 0, 0, NULL));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(cfd);
	close(sfd);
	close(pfd[0]);
	close(pfd[1]);
}

static char *read_all(const char *path)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/* The trace has event @name for socket @cookie */
static bool traced(const char *trace, const char *name, uint64_t cookie)
{
	char needle[96];
	const char *p = trace;

	snprintf(needle, sizeof(needle), " %s: ", name);
	while ((p = strstr(p, needle))) {
		const char *eol = strchr(p, '\n');
		char ck[40];

		snprintf(ck, sizeof(ck), "cookie=%llu ", (unsigned long long)cookie);
		p += strlen(needle);
		if (strstr(p, ck) && (!eol || strstr(p, ck) < eol))
			return true;
	}
	return false;
}

/* Each transition fires its tracepoint, naming the socket by its cookie */
TEST_F(kmod, tracepoints)
{
	int cfd[4], sfd[4], dev2, i;
	struct kmtls_completion c;
	struct kaccept acc;
	uint64_t id;
	struct knl k, k2;
	char *trace;

	if (access(TRACEFS "/events/kmtls/enable", W_OK))
		SKIP(return, "no " TRACEFS "/events/kmtls");
	ASSERT_EQ(0, write_file(TRACEFS "/events/kmtls/enable", "0"));
	ASSERT_EQ(0, write_file(TRACEFS "/trace", ""));
	/*
	 * Without recording command names: that takes a probe on
	 * sched_switch, and patching the scheduler's code for it once ended
	 * in an "int3" oops under QEMU's TCG.
	 */
	write_file(TRACEFS "/options/record-cmd", "0");
	ASSERT_EQ(0, write_file(TRACEFS "/events/kmtls/enable", "1"));
	ASSERT_EQ(0, knl_open(&k));
	ASSERT_EQ(0, knl_open(&k2));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, tcp_pair_af(AF_INET, &cfd[i], &sfd[i]));

	/* 0: submit, accept, done */
	ASSERT_EQ(0, submit(self->dev, cfd[0], KMTLS_ROLE_SERVER, 0, 0, &id));
	ASSERT_EQ(0, knl_accept(&k, &acc));
	ASSERT_EQ(0, serve_ok(&k, acc.sockfd));
	close(acc.sockfd);
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	/* 1: timeout */
	ASSERT_EQ(0, submit(self->dev, cfd[1], KMTLS_ROLE_CLIENT, 200, 0, &id));
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	/* 2: cancel */
	dev2 = open(DEV, O_RDWR | O_CLOEXEC);
	ASSERT_EQ(0, submit(dev2, cfd[2], KMTLS_ROLE_CLIENT, 0, 0, NULL));
	close(dev2);
	/* 3: agent lost */
	ASSERT_EQ(0, submit(self->dev, cfd[3], KMTLS_ROLE_CLIENT, 0, 0, &id));
	ASSERT_EQ(0, knl_accept(&k2, &acc));
	knl_close(&k2);
	ASSERT_EQ(0, wait_req(self->dev, id, &c));
	EXPECT_EQ(-ECONNABORTED, c.status);
	close(acc.sockfd);

	ASSERT_EQ(0, write_file(TRACEFS "/events/kmtls/enable", "0"));
	write_file(TRACEFS "/options/record-cmd", "1");
	trace = read_all(TRACEFS "/trace");
	ASSERT_NE(NULL, trace);
	EXPECT_TRUE(traced(trace, "kmtls_submit", sock_cookie(cfd[0])));
	EXPECT_TRUE(traced(trace, "kmtls_accept", sock_cookie(cfd[0])));
	EXPECT_TRUE(traced(trace, "kmtls_done", sock_cookie(cfd[0])));
	EXPECT_TRUE(traced(trace, "kmtls_timeout", sock_cookie(cfd[1])));
	EXPECT_TRUE(traced(trace, "kmtls_cancel", sock_cookie(cfd[2])));
	EXPECT_TRUE(traced(trace, "kmtls_agent_lost", sock_cookie(cfd[3])));
	EXPECT_NE(NULL, strstr(trace, "role=server status=0 "));
	EXPECT_NE(NULL, strstr(trace, "status=-110 "));
	if (_metadata->exit_code)
		TH_LOG("trace:\n%s", trace);
	free(trace);
	for (i = 0; i < 4; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	knl_close(&k);
}

/* Last (fixtures run in order): the module unloads cleanly and loads again */
FIXTURE(zz_module) {
};

FIXTURE_SETUP(zz_module)
{
}

FIXTURE_TEARDOWN(zz_module)
{
}

TEST_F(zz_module, unload_reload)
{
	if (geteuid() || access(DEV, F_OK))
		SKIP(return, "needs root and kmtls.ko loaded");
	if (access(module_path(), R_OK))
		SKIP(return, "%s: %s", module_path(), strerror(errno));

	ASSERT_EQ(0, module_refcnt_settle(0, 5000));
	ASSERT_EQ(0, module_unload_within(0));
	EXPECT_NE(0, access(DEV, F_OK));
	EXPECT_FALSE(module_loaded());
	ASSERT_EQ(0, module_load());
	EXPECT_EQ(0, access("/proc/net/kmtls_stat", F_OK));
}

/* Nothing in the kernel log since this program started */
TEST_F(zz_module, dmesg_clean)
{
	char *line;

	if (geteuid())
		SKIP(return, "needs root");
	line = kmsg_trouble();
	if (line)
		TH_LOG("kernel: %s", line);
	EXPECT_EQ(NULL, line);
	free(line);
}

TEST_HARNESS_MAIN
