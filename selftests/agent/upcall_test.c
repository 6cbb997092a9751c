// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's side of ACCEPT (agent/upcall.c) against replies it cannot take
 * (kmtls.ko of another version, or a bug): the kernel installs the
 * request's socket in kmtlsd's fd table with the reply, so a refused reply
 * must still close that fd, fail the request at once with a DONE of
 * EPROTO when its id is there, and never close anything else. An unknown
 * role or an fd out of range is refused too. A good reply still goes
 * through, its fd left open for the caller.
 *
 * The netlink socket is one end of an AF_UNIX datagram pair, as in
 * selftests/fuzz/targets/netlink_fuzz.c: the reply is queued from the
 * other end, which then receives the ACCEPT request and any DONE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "../../agent/log.h"
#include "../../agent/upcall.h"
#include "kselftest_harness.h"

#define FAMILY		0x1c
#define SEQ_ACCEPT	0x80000000u	/* the first request with u->seq == 0 */
#define NO_ATTR		UINT64_MAX

/*
 * The agent checks that the kernel sent it (AF_NETLINK, port 0); a
 * socketpair has no such address, so this recvfrom() supplies it.
 */
ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
		 struct sockaddr *from, socklen_t *fromlen)
{
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	ssize_t n = recv(fd, buf, len, flags);

	if (n >= 0 && from && fromlen) {
		memcpy(from, &nl, *fromlen < sizeof(nl) ? *fromlen : sizeof(nl));
		*fromlen = sizeof(nl);
	}
	return n;
}

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* What a reply carries; NO_ATTR leaves an attribute out. */
struct reply_attrs {
	uint64_t sockfd, role, timeout_ms, id;
	size_t peer_name_len;	/* a PEER_NAME of this many 'a's, 0: none */
};

/* The reply and its acknowledgement, as the kernel queues them: one datagram. */
static int queue_reply(int to, const struct reply_attrs *ra)
{
	struct nl_msg *msg = nlmsg_alloc_size(8192);
	struct nlmsgerr e = { .error = 0 };
	struct nlmsghdr ack = { .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = SEQ_ACCEPT,
				.nlmsg_len = NLMSG_LENGTH(sizeof(e)) };
	char name[1024], buf[16384];
	size_t n;
	int ret = -1;

	if (!msg || !genlmsg_put(msg, 0, SEQ_ACCEPT, FAMILY, 0, 0, KMTLS_CMD_ACCEPT,
				 KMTLS_FAMILY_VERSION))
		goto out;
	if ((ra->sockfd != NO_ATTR &&
	     nla_put_u32(msg, KMTLS_A_ACCEPT_SOCKFD, (uint32_t)ra->sockfd)) ||
	    (ra->role != NO_ATTR && nla_put_u32(msg, KMTLS_A_ACCEPT_ROLE, (uint32_t)ra->role)) ||
	    (ra->timeout_ms != NO_ATTR &&
	     nla_put_u32(msg, KMTLS_A_ACCEPT_TIMEOUT_MS, (uint32_t)ra->timeout_ms)) ||
	    (ra->id != NO_ATTR && nla_put_u64(msg, KMTLS_A_ACCEPT_ID, ra->id)))
		goto out;
	if (ra->peer_name_len) {
		memset(name, 'a', ra->peer_name_len);
		name[ra->peer_name_len] = '\0';
		if (nla_put_string(msg, KMTLS_A_ACCEPT_PEER_NAME, name))
			goto out;
	}
	n = nlmsg_hdr(msg)->nlmsg_len;
	e.msg = *nlmsg_hdr(msg);
	memcpy(buf, nlmsg_hdr(msg), n);
	memcpy(buf + n, &ack, sizeof(ack));
	memcpy(buf + n + NLMSG_HDRLEN, &e, sizeof(e));
	n += ack.nlmsg_len;
	ret = send(to, buf, n, 0) == (ssize_t)n ? 0 : -1;
out:
	nlmsg_free(msg);
	return ret;
}

/* A DONE the agent sent: 1 with its status and fd, 0 when none came. */
static int read_done(int from, uint32_t *status, uint32_t *fd, uint32_t *seq)
{
	struct nlattr *tb[KMTLS_A_DONE_MAX + 1];
	char buf[16384];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct genlmsghdr *g;
	ssize_t n;

	while ((n = recv(from, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		g = nlmsg_data(h);
		if (n < (ssize_t)NLMSG_LENGTH(GENL_HDRLEN) || g->cmd != KMTLS_CMD_DONE)
			continue;	/* the ACCEPT request */
		if (genlmsg_parse(h, 0, tb, KMTLS_A_DONE_MAX, NULL) ||
		    !tb[KMTLS_A_DONE_STATUS] || !tb[KMTLS_A_DONE_SOCKFD])
			return -1;
		*status = nla_get_u32(tb[KMTLS_A_DONE_STATUS]);
		*fd = nla_get_u32(tb[KMTLS_A_DONE_SOCKFD]);
		*seq = h->nlmsg_seq;
		return 1;
	}
	return 0;
}

FIXTURE(up) {
	int pair[2];
	int fd;			/* what the kernel would have installed */
	int bystander;		/* an fd of ours that nothing may close */
	struct kmtls_upcall u;
	struct kmtls_accept a;
};

FIXTURE_VARIANT(up) {
	struct reply_attrs ra;	/* sockfd 1: the fixture's fd */
	int want_ret;
	int closed;		/* the fd is closed afterwards */
	int done;		/* a DONE with EPROTO was sent for it */
};

/* The fixture's fd (1 here), a role, a timeout, id 42: what kmtls.ko sends. */
#define REPLY(fd, role, ms, id, name)	{ fd, role, ms, id, name }
#define FD	1
#define SRV	KMTLS_ROLE_SERVER

FIXTURE_VARIANT_ADD(up, good) { .ra = REPLY(FD, SRV, 5000, 42, 0), .want_ret = 1 };

FIXTURE_VARIANT_ADD(up, client_role) {
	.ra = REPLY(FD, KMTLS_ROLE_CLIENT, 5000, 42, 0), .want_ret = 1,
};

FIXTURE_VARIANT_ADD(up, no_timeout) {
	.ra = REPLY(FD, SRV, NO_ATTR, 42, 0), .want_ret = -EPROTO, .closed = 1, .done = 1,
};

FIXTURE_VARIANT_ADD(up, no_role) {
	.ra = REPLY(FD, NO_ATTR, 5000, 42, 0), .want_ret = -EPROTO, .closed = 1, .done = 1,
};

FIXTURE_VARIANT_ADD(up, unknown_role) {
	.ra = REPLY(FD, 7, 5000, 42, 0), .want_ret = -EPROTO, .closed = 1, .done = 1,
};

/* The policy refuses it (PEER_NAME too long): the fd is found all the same. */
FIXTURE_VARIANT_ADD(up, peer_name_too_long) {
	.ra = REPLY(FD, SRV, 5000, 42, KMTLS_PEER_NAME_MAX + 10), .want_ret = -EPROTO,
	.closed = 1, .done = 1,
};

/* Without an id there is no DONE to send, but the fd still goes. */
FIXTURE_VARIANT_ADD(up, no_id) {
	.ra = REPLY(FD, SRV, 5000, NO_ATTR, 0), .want_ret = -EPROTO, .closed = 1,
};

/* Not an fd (negative as an int): refused, and nothing is closed. */
FIXTURE_VARIANT_ADD(up, sockfd_out_of_range) {
	.ra = REPLY(0xffffffffu, SRV, 5000, 42, 0), .want_ret = -EPROTO,
};

FIXTURE_VARIANT_ADD(up, no_sockfd) {
	.ra = REPLY(NO_ATTR, SRV, 5000, 42, 0), .want_ret = -EPROTO,
};

FIXTURE_SETUP(up)
{
	kmtls_log_init("upcall_test", 1, -1);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, self->pair));
	self->fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	self->bystander = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	ASSERT_LE(0, self->bystander);
	memset(&self->u, 0, sizeof(self->u));
	self->u.fd = self->pair[0];
	self->u.rbuf = malloc(32768);
	ASSERT_NE(NULL, self->u.rbuf);
	atomic_store(&self->u.family, FAMILY);
	self->u.joined = 1;
}

FIXTURE_TEARDOWN(up)
{
	free(self->u.rbuf);
	close(self->pair[0]);
	close(self->pair[1]);
	close(self->bystander);
	if (is_open(self->fd))
		close(self->fd);
}

TEST_F(up, accept_reply)
{
	struct reply_attrs ra = variant->ra;
	uint32_t status = 0, fd = 0, seq = 0;
	int ret, done;

	if (ra.sockfd == FD)
		ra.sockfd = (uint64_t)self->fd;
	ASSERT_EQ(0, queue_reply(self->pair[1], &ra));
	ret = kmtls_upcall_accept(&self->u, &self->a);
	EXPECT_EQ(variant->want_ret, ret);
	EXPECT_EQ(!variant->closed, is_open(self->fd))
		TH_LOG("the reply's fd %s", variant->closed ? "leaked" : "was closed");
	EXPECT_TRUE(is_open(self->bystander));
	EXPECT_TRUE(is_open(self->pair[0]));
	done = read_done(self->pair[1], &status, &fd, &seq);
	ASSERT_EQ(variant->done, done);
	if (done) {
		EXPECT_EQ((uint32_t)EPROTO, status);
		EXPECT_EQ((uint32_t)self->fd, fd);
		EXPECT_EQ(42u, seq);	/* the request id's low 31 bits */
	}
	if (ret == 1) {
		EXPECT_EQ(self->fd, self->a.fd);
		EXPECT_EQ(ra.role, self->a.role);
		EXPECT_EQ(42u, self->a.id);
	} else {
		EXPECT_EQ(-1, self->a.fd);
	}
}

TEST_HARNESS_MAIN
