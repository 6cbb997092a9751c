/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fake kmtls agent for the module tests: raw generic netlink (no libnl, so
 * that malformed messages are as easy to send as good ones), the
 * READY/ACCEPT/DONE conversation of include/uapi/linux/kmtls.h, and a
 * stand-in for the TLS handshake: kTLS installed with a made-up key, which
 * is all the kernel checks.
 *
 * Header-only: every .c file in selftests/kmod/ becomes a test program.
 */
#ifndef KMTLS_SELFTEST_KMTLS_NL_H
#define KMTLS_SELFTEST_KMTLS_NL_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <uapi/linux/kmtls.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* One netlink socket of the family */
struct knl {
	int fd;
	uint16_t family;	/* generic netlink id of "kmtls" */
	uint32_t group;		/* multicast id of "agents" */
	uint32_t seq;
	uint32_t portid;
	int ready_seen;		/* READY messages read so far */
};

/* A message under construction */
struct kmsg {
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	};
};

/* What ACCEPT's reply said */
struct kaccept {
	int sockfd;
	uint32_t role, timeout_ms, pid, uid, gid;
	uint64_t id, cookie;
	char peer_name[KMTLS_PEER_NAME_MAX];
	char profile[KMTLS_PROFILE_MAX];
	unsigned int seen;	/* bit per attribute type */
};

static inline void kmsg_init(struct kmsg *m, uint16_t type, uint16_t flags,
			     uint8_t cmd, uint8_t version)
{
	struct genlmsghdr *g;

	memset(m, 0, sizeof(*m));
	m->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->nlh.nlmsg_type = type;
	m->nlh.nlmsg_flags = flags;
	g = NLMSG_DATA(&m->nlh);
	g->cmd = cmd;
	g->version = version;
}

static inline void kmsg_put(struct kmsg *m, uint16_t type, const void *data,
			    size_t len)
{
	/* From m, not m->buf: under -fsanitize GCC takes the target for
	 * nlh.nlmsg_len and fails the build with -Wstringop-overflow. */
	struct nlattr *a = (struct nlattr *)((char *)m + NLMSG_ALIGN(m->nlh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->nlh.nlmsg_len = NLMSG_ALIGN(m->nlh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline void kmsg_u32(struct kmsg *m, uint16_t type, uint32_t v)
{
	kmsg_put(m, type, &v, sizeof(v));
}

static inline void kmsg_u16(struct kmsg *m, uint16_t type, uint16_t v)
{
	kmsg_put(m, type, &v, sizeof(v));
}

static inline void kmsg_str(struct kmsg *m, uint16_t type, const char *s)
{
	kmsg_put(m, type, s, strlen(s) + 1);
}

static inline void kmsg_flag(struct kmsg *m, uint16_t type)
{
	kmsg_put(m, type, NULL, 0);
}

/* Iterate attributes after the genetlink header */
#define knl_for_each_attr(a, nlh, rem)					\
	for (a = (struct nlattr *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN),	\
	     rem = (int)(nlh)->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);	\
	     rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&	\
	     a->nla_len <= rem;						\
	     rem -= NLA_ALIGN(a->nla_len),				\
	     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))

#define KNL_ATTR_DATA(a) ((void *)((char *)(a) + NLA_HDRLEN))

/*
 * Send @m and read until its acknowledgement. A reply (any non-error
 * message with our sequence number) is copied to @reply if given. READY
 * multicasts seen on the way are counted. Returns 0 or -errno from the ack.
 */
static inline int knl_xact(struct knl *k, struct kmsg *m, struct kmsg *reply)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[16384];
	ssize_t n;

	m->nlh.nlmsg_seq = ++k->seq;
	m->nlh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (sendto(k->fd, m->buf, m->nlh.nlmsg_len, 0,
		   (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;

	for (;;) {
		struct nlmsghdr *h;

		n = recv(k->fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS)	/* missed multicasts */
				continue;
			return -errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != k->seq) {
				if (h->nlmsg_seq == 0)
					k->ready_seen++;
				continue;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error;
			}
			if (reply)
				memcpy(reply->buf, h,
				       h->nlmsg_len < sizeof(reply->buf) ?
				       h->nlmsg_len : sizeof(reply->buf));
		}
	}
}

/* Resolve the family id and the "agents" group id */
static inline int knl_resolve(struct knl *k)
{
	struct nlattr *a, *g, *ga;
	struct kmsg m, r;
	int rem, grem, garem, ret;

	kmsg_init(&m, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, 1);
	kmsg_str(&m, CTRL_ATTR_FAMILY_NAME, KMTLS_FAMILY_NAME);
	memset(&r, 0, sizeof(r));
	ret = knl_xact(k, &m, &r);
	if (ret)
		return ret;

	knl_for_each_attr(a, &r.nlh, rem) {
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			k->family = *(uint16_t *)KNL_ATTR_DATA(a);
		if ((a->nla_type & NLA_TYPE_MASK) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		for (g = KNL_ATTR_DATA(a), grem = a->nla_len - NLA_HDRLEN;
		     grem >= (int)NLA_HDRLEN && g->nla_len <= grem;
		     grem -= NLA_ALIGN(g->nla_len),
		     g = (struct nlattr *)((char *)g + NLA_ALIGN(g->nla_len))) {
			uint32_t id = 0;
			bool ours = false;

			for (ga = KNL_ATTR_DATA(g), garem = g->nla_len - NLA_HDRLEN;
			     garem >= (int)NLA_HDRLEN && ga->nla_len <= garem;
			     garem -= NLA_ALIGN(ga->nla_len),
			     ga = (struct nlattr *)((char *)ga + NLA_ALIGN(ga->nla_len))) {
				if (ga->nla_type == CTRL_ATTR_MCAST_GRP_ID)
					id = *(uint32_t *)KNL_ATTR_DATA(ga);
				if (ga->nla_type == CTRL_ATTR_MCAST_GRP_NAME &&
				    !strcmp(KNL_ATTR_DATA(ga), KMTLS_MCGRP_AGENTS))
					ours = true;
			}
			if (ours)
				k->group = id;
		}
	}
	return k->family && k->group ? 0 : -ENOENT;
}

/* Open a socket of the family; 0 or -errno */
static inline int knl_open(struct knl *k)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof(sa);
	int one = 1, ret;

	memset(k, 0, sizeof(*k));
	k->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (k->fd < 0)
		return -errno;
	if (bind(k->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(k->fd, (struct sockaddr *)&sa, &len) < 0)
		goto fail;
	k->portid = sa.nl_pid;
	setsockopt(k->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	ret = knl_resolve(k);
	if (ret) {
		close(k->fd);
		k->fd = -1;
		return ret;
	}
	return 0;
fail:
	ret = -errno;
	close(k->fd);
	k->fd = -1;
	return ret;
}

static inline void knl_close(struct knl *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

/* Join group "agents"; 0 or -errno */
static inline int knl_join(struct knl *k)
{
	if (setsockopt(k->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &k->group,
		       sizeof(k->group)) < 0)
		return -errno;
	return 0;
}

/* Wait up to @ms for a READY; 1 if one arrived (or was seen), 0 if not */
static inline int knl_wait_ready(struct knl *k, int ms)
{
	struct pollfd p = { .fd = k->fd, .events = POLLIN };
	char buf[8192];

	while (!k->ready_seen) {
		struct nlmsghdr *h;
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			return 0;
		n = recv(k->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == ENOBUFS)
				return 1;	/* lost some: drain anyway */
			continue;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			struct genlmsghdr *g = NLMSG_DATA(h);

			if (h->nlmsg_type == k->family && g->cmd == KMTLS_CMD_READY)
				k->ready_seen++;
		}
	}
	k->ready_seen--;
	return 1;
}

static inline void kaccept_parse(struct kaccept *acc, struct nlmsghdr *h)
{
	struct nlattr *a;
	int rem;

	memset(acc, 0, sizeof(*acc));
	acc->sockfd = -1;
	knl_for_each_attr(a, h, rem) {
		void *d = KNL_ATTR_DATA(a);

		if (a->nla_type < 32)
			acc->seen |= 1U << a->nla_type;
		switch (a->nla_type) {
		case KMTLS_A_ACCEPT_SOCKFD:
			acc->sockfd = *(int32_t *)d;
			break;
		case KMTLS_A_ACCEPT_ROLE:
			acc->role = *(uint32_t *)d;
			break;
		case KMTLS_A_ACCEPT_TIMEOUT_MS:
			acc->timeout_ms = *(uint32_t *)d;
			break;
		case KMTLS_A_ACCEPT_PEER_NAME:
			snprintf(acc->peer_name, sizeof(acc->peer_name), "%s", (char *)d);
			break;
		case KMTLS_A_ACCEPT_PROFILE:
			snprintf(acc->profile, sizeof(acc->profile), "%s", (char *)d);
			break;
		case KMTLS_A_ACCEPT_ID:
			memcpy(&acc->id, d, sizeof(acc->id));
			break;
		case KMTLS_A_ACCEPT_SOCK_COOKIE:
			memcpy(&acc->cookie, d, sizeof(acc->cookie));
			break;
		case KMTLS_A_ACCEPT_PID:
			acc->pid = *(uint32_t *)d;
			break;
		case KMTLS_A_ACCEPT_UID:
			acc->uid = *(uint32_t *)d;
			break;
		case KMTLS_A_ACCEPT_GID:
			acc->gid = *(uint32_t *)d;
			break;
		}
	}
}

/* ACCEPT; 0 and @acc filled, or -errno (-EAGAIN: nothing queued) */
static inline int knl_accept(struct knl *k, struct kaccept *acc)
{
	struct kmsg m, r;
	int ret;

	kmsg_init(&m, k->family, 0, KMTLS_CMD_ACCEPT, KMTLS_FAMILY_VERSION);
	memset(&r, 0, sizeof(r));
	ret = knl_xact(k, &m, &r);
	if (ret)
		return ret;
	kaccept_parse(acc, &r.nlh);
	return acc->sockfd >= 0 ? 0 : -EPROTO;
}

/* The identity a DONE reports */
struct kdone {
	uint32_t status;	/* positive errno */
	uint16_t tls_version, cipher;
	bool resumed;
	const char *subject;
	const char *uri[8];
	const char *dns[8];
	const uint8_t *fingerprint;
};

static inline void kmsg_done(struct kmsg *m, struct knl *k, int sockfd,
			     const struct kdone *d)
{
	int i;

	kmsg_init(m, k->family, 0, KMTLS_CMD_DONE, KMTLS_FAMILY_VERSION);
	kmsg_u32(m, KMTLS_A_DONE_STATUS, d->status);
	kmsg_u32(m, KMTLS_A_DONE_SOCKFD, (uint32_t)sockfd);
	if (d->status)
		return;
	kmsg_u16(m, KMTLS_A_DONE_TLS_VERSION, d->tls_version);
	kmsg_u16(m, KMTLS_A_DONE_CIPHER, d->cipher);
	if (d->resumed)
		kmsg_flag(m, KMTLS_A_DONE_RESUMED);
	if (d->subject)
		kmsg_str(m, KMTLS_A_DONE_PEER_SUBJECT, d->subject);
	for (i = 0; i < 8 && d->uri[i]; i++)
		kmsg_str(m, KMTLS_A_DONE_PEER_SAN_URI, d->uri[i]);
	for (i = 0; i < 8 && d->dns[i]; i++)
		kmsg_str(m, KMTLS_A_DONE_PEER_SAN_DNS, d->dns[i]);
	if (d->fingerprint)
		kmsg_put(m, KMTLS_A_DONE_PEER_FINGERPRINT, d->fingerprint,
			 KMTLS_FINGERPRINT_LEN);
}

/* DONE; 0 or -errno */
static inline int knl_done(struct knl *k, int sockfd, const struct kdone *d)
{
	struct kmsg m;

	kmsg_done(&m, k, sockfd, d);
	return knl_xact(k, &m, NULL);
}

/* The handshake stand-in: kTLS TX and RX with a made-up TLS 1.3 key */
static inline int fake_ktls(int fd)
{
	struct tls12_crypto_info_aes_gcm_128 ci;

	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return -errno;
	memset(&ci, 0x5a, sizeof(ci));
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) < 0 ||
	    setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)) < 0)
		return -errno;
	return 0;
}

#endif /* KMTLS_SELFTEST_KMTLS_NL_H */
