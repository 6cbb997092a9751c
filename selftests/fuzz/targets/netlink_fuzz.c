// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for kmtlsd's side of the generic netlink family "kmtls"
 * (agent/upcall.c): the receive loop, its dispatch of READY multicasts,
 * nlctrl family notifications and DONE refusals, and the ACCEPT reply
 * parser, all through the public entry points.
 *
 * The agent reads its netlink socket with recv(2). Here that socket is one
 * end of an AF_UNIX datagram pair: the input, taken as one datagram of
 * netlink messages as the kernel would queue them, is sent from the other
 * end, then the agent reads it exactly as it would read the kernel:
 *
 *   byte 0, bit 0: kmtls_upcall_accept() (which first sends its ACCEPT
 *                  request to the other end, then reads) or
 *                  kmtls_upcall_read();
 *   byte 0, bit 1: give every message the ACCEPT request's sequence
 *                  number, so replies and acknowledgements are taken as
 *                  answers rather than dispatched;
 *   byte 0, bit 2: the datagram comes from a process (port id 4242), not
 *                  the kernel: the agent must ignore all of it;
 *   the rest:      the datagram.
 *
 * The family id of "kmtls" is KMTLS_FUZZ_FAMILY (as if resolved already).
 * The harness fills struct kmtls_upcall itself (no socket of the kernel's
 * is opened); self_check() makes sure a good ACCEPT reply still gets
 * through it. The agent's receive buffer (u->rbuf, 32 KiB in kmtlsd) is
 * allocated exactly as large as the datagram: the kernel writes no more
 * than that, and a read past the last message, which in kmtlsd would see
 * bytes of an earlier datagram, is an ASan report.
 * Checked: no memory error or undefined behaviour (ASan, UBSan), the
 * documented results (accept: 1, 0 or -errno; a filled request has an fd,
 * a known role and its strings terminated), and the flags read() sets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "../../../agent/log.h"
#include "../../../agent/upcall.h"

#define KMTLS_FUZZ_FAMILY	0x1c
#define SEQ_ACCEPT		0x80000000u	/* first request with u->seq == 0 */

static int pair[2] = { -1, -1 };
static uint32_t sender_pid;	/* the port id recvfrom() reports */
static int in_agent;		/* kmtls_upcall_accept() runs */
static int closed;		/* close() calls it made */

/*
 * The agent closes the fd of an ACCEPT reply it refuses (the kernel would
 * have installed it). Here that fd is a number from the input, perhaps
 * libFuzzer's own: while the agent runs, count the call instead.
 */
int close(int fd)
{
	if (in_agent) {
		closed++;
		return 0;
	}
	return (int)syscall(SYS_close, fd);
}

/*
 * The agent checks the sender's address; a socketpair has none of the
 * netlink kind, so this recvfrom() (which takes precedence over libc's
 * and the sanitizers' weak interceptor) supplies it.
 */
ssize_t recvfrom(int fd, void *buf, size_t len, int flags,
		 struct sockaddr *from, socklen_t *fromlen)
{
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_pid = sender_pid };
	ssize_t n = recv(fd, buf, len, flags);

	if (n >= 0 && from && fromlen) {
		memcpy(from, &nl, *fromlen < sizeof(nl) ? *fromlen : sizeof(nl));
		*fromlen = sizeof(nl);
	}
	return n;
}

static void drain(int fd)
{
	char b[64];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
}

/* Every message the agent would walk gets the sequence number @seq. */
static void patch_seq(uint8_t *p, size_t n, uint32_t seq)
{
	struct nlmsghdr *h;
	size_t off = 0;

	while (n - off >= sizeof(*h)) {
		h = (struct nlmsghdr *)(p + off);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > n - off)
			return;
		h->nlmsg_seq = seq;
		off += NLMSG_ALIGN(h->nlmsg_len);
		if (off > n)
			return;
	}
}

/* Hand @n bytes to the agent as one datagram; 1 for ACCEPT's result. */
static int run_one(int accept, const uint8_t *p, size_t n, struct kmtls_upcall *u,
		   struct kmtls_accept *a)
{
	uint8_t *rbuf = malloc(n ? n : 1);
	int ret = 0;

	if (!rbuf)
		abort();
	memset(u, 0, sizeof(*u));
	u->fd = pair[0];
	u->rbuf = (char *)rbuf;
	atomic_store(&u->family, KMTLS_FUZZ_FAMILY);
	atomic_store(&u->seq, 0);
	u->joined = 1;
	drain(pair[0]);
	drain(pair[1]);
	if (send(pair[1], p, n, 0) < 0) {
		perror("netlink_fuzz: send");
		abort();
	}
	closed = 0;
	if (accept) {
		in_agent = 1;
		ret = kmtls_upcall_accept(u, a);
		in_agent = 0;
	} else {
		kmtls_upcall_read(u);
	}
	free(rbuf);
	return ret;
}

static size_t put_attr(uint8_t *p, uint16_t type, const void *v, uint16_t len)
{
	struct nlattr a = { .nla_len = NLA_HDRLEN + len, .nla_type = type };

	memcpy(p, &a, sizeof(a));
	if (len)
		memcpy(p + NLA_HDRLEN, v, len);
	return NLA_ALIGN(a.nla_len);
}

/* An ACCEPT reply for fd 7, request 42, and its acknowledgement: its length. */
static size_t accept_reply(uint8_t *p, int with_timeout)
{
	struct nlmsghdr h = { .nlmsg_type = KMTLS_FUZZ_FAMILY, .nlmsg_seq = SEQ_ACCEPT };
	struct nlmsgerr e = { .error = 0 };
	uint32_t fd = 7, role = KMTLS_ROLE_SERVER, ms = 1000;
	uint64_t id = 42;
	size_t n = NLMSG_HDRLEN;

	p[n] = KMTLS_CMD_ACCEPT;
	p[n + 1] = KMTLS_FAMILY_VERSION;
	n += GENL_HDRLEN;
	n += put_attr(p + n, KMTLS_A_ACCEPT_SOCKFD, &fd, 4);
	n += put_attr(p + n, KMTLS_A_ACCEPT_ROLE, &role, 4);
	if (with_timeout)
		n += put_attr(p + n, KMTLS_A_ACCEPT_TIMEOUT_MS, &ms, 4);
	n += put_attr(p + n, KMTLS_A_ACCEPT_PAD, NULL, 0);
	n += put_attr(p + n, KMTLS_A_ACCEPT_ID, &id, 8);
	h.nlmsg_len = n;
	memcpy(p, &h, sizeof(h));
	e.msg = h;
	h.nlmsg_type = NLMSG_ERROR;
	h.nlmsg_len = NLMSG_LENGTH(sizeof(e));
	memcpy(p + n, &h, sizeof(h));
	memcpy(p + n + NLMSG_HDRLEN, &e, sizeof(e));
	return n + h.nlmsg_len;
}

/*
 * The harness builds struct kmtls_upcall by hand: check once that a good
 * ACCEPT reply still comes out as one, and that a refused one has its fd
 * closed (through close() above), so a change of the struct or of the
 * agent cannot leave the target fuzzing nothing.
 */
static void self_check(void)
{
	uint32_t buf[64] = { 0 };
	uint8_t *p = (uint8_t *)buf;
	struct kmtls_upcall u;
	struct kmtls_accept a;
	size_t n = accept_reply(p, 1);

	if (run_one(1, p, n, &u, &a) != 1 || a.fd != 7 || a.id != 42 || closed) {
		fprintf(stderr, "netlink_fuzz: a good ACCEPT reply is not accepted: the harness is out of date with agent/upcall.c\n");
		exit(1);
	}
	memset(buf, 0, sizeof(buf));
	n = accept_reply(p, 0);
	if (run_one(1, p, n, &u, &a) != -EPROTO || closed != 1) {
		fprintf(stderr, "netlink_fuzz: a refused ACCEPT reply does not close its fd: the harness is out of date with agent/upcall.c\n");
		exit(1);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	/* Quiet: a line per refused DONE would drown libFuzzer's output. */
	kmtls_log_init("netlink_fuzz", 1, -1);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair)) {
		perror("netlink_fuzz: socketpair");
		exit(1);
	}
	self_check();
	return 0;
}

static void check_accept(int ret, const struct kmtls_accept *a)
{
	if (ret > 1 || ret < -4095) {
		fprintf(stderr, "netlink_fuzz: kmtls_upcall_accept() returned %d, not 1, 0 or -errno\n",
			ret);
		abort();
	}
	if (ret != 1)
		return;
	/* A request taken has an fd and one of the two roles. */
	if (a->fd < 0 || (a->role != KMTLS_ROLE_CLIENT && a->role != KMTLS_ROLE_SERVER))
		abort();
	if (!memchr(a->peer_name, '\0', sizeof(a->peer_name)) ||
	    !memchr(a->profile, '\0', sizeof(a->profile)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmtls_upcall u;
	struct kmtls_accept a;
	uint8_t *msg, mode;
	int ret;

	if (size < 1 || size > 32768 + 1)
		return 0;	/* the agent reads at most 32 KiB at once */
	mode = data[0];
	msg = malloc(size - 1 ? size - 1 : 1);
	if (!msg)
		abort();
	memcpy(msg, data + 1, size - 1);
	if (mode & 2)
		patch_seq(msg, size - 1, SEQ_ACCEPT);
	sender_pid = mode & 4 ? 4242 : 0;
	ret = run_one(mode & 1, msg, size - 1, &u, &a);
	sender_pid = 0;
	if ((mode & 4) && (ret == 1 || u.ready || u.appeared || u.vanished))
		abort();	/* a process was believed */
	if (mode & 1)
		check_accept(ret, &a);
	else if (u.vanished && (atomic_load(&u.family) || u.joined || u.ready))
		abort();	/* still looks attached to a gone family */
	free(msg);
	return 0;
}
