// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The generic netlink conversation with kmtls.ko: resolve "kmtls" and its
 * group "agents", join, ACCEPT, DONE (include/uapi/linux/kmtls.h,
 * kmod/kmtls.yaml). libnl-genl builds and parses the messages and connects
 * the socket; the receive loop is our own, because one socket carries
 * three things at once: replies to our requests, READY multicasts and
 * nlctrl notifications, and errors of DONEs other threads sent.
 *
 * Requests the reading thread sends (GETFAMILY, ACCEPT) have sequence
 * numbers with the top bit set and are answered inside sendmsg(), so their
 * reply and acknowledgement are already queued when it returns; a DONE
 * carries the low 31 bits of its request id, which a refusal logs.
 */
#include <errno.h>
#include <limits.h>
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
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "log.h"
#include "upcall.h"

#define SEQ_OURS	0x80000000u	/* requests of the reading thread */
#define RCVBUF		(1 << 20)	/* READY per queued request: room for bursts */
#define RECV_SIZE	32768

/* What a transaction's reply is parsed into. */
struct reply {
	int (*parse)(struct nlmsghdr *h, void *arg);
	void *arg;
	int got;
};

static uint32_t next_seq(struct kmtls_upcall *u)
{
	return SEQ_OURS | (atomic_fetch_add(&u->seq, 1) & ~SEQ_OURS);
}

/* ---- nlctrl ----------------------------------------------------------- */

struct family_info {
	const char *name;	/* wanted */
	const char *group;	/* wanted multicast group */
	int match;		/* the message is about @name */
	uint16_t id;
	uint32_t group_id;
};

static struct nla_policy ctrl_policy[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID] = { .type = NLA_U16 },
	[CTRL_ATTR_FAMILY_NAME] = { .type = NLA_STRING },
	[CTRL_ATTR_MCAST_GROUPS] = { .type = NLA_NESTED },
};

static struct nla_policy grp_policy[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
	[CTRL_ATTR_MCAST_GRP_NAME] = { .type = NLA_STRING },
	[CTRL_ATTR_MCAST_GRP_ID] = { .type = NLA_U32 },
};

/* A GETFAMILY reply or a NEWFAMILY/DELFAMILY notification. */
static int parse_family(struct nlmsghdr *h, void *arg)
{
	struct family_info *fi = arg;
	struct nlattr *tb[CTRL_ATTR_MAX + 1], *g, *gtb[CTRL_ATTR_MCAST_GRP_MAX + 1];
	int rem;

	if (genlmsg_parse(h, 0, tb, CTRL_ATTR_MAX, ctrl_policy) ||
	    !tb[CTRL_ATTR_FAMILY_NAME] || !tb[CTRL_ATTR_FAMILY_ID] ||
	    strcmp(nla_get_string(tb[CTRL_ATTR_FAMILY_NAME]), fi->name))
		return -1;
	fi->match = 1;
	fi->id = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (!tb[CTRL_ATTR_MCAST_GROUPS])
		return 0;
	nla_for_each_nested(g, tb[CTRL_ATTR_MCAST_GROUPS], rem) {
		if (nla_parse_nested(gtb, CTRL_ATTR_MCAST_GRP_MAX, g, grp_policy) ||
		    !gtb[CTRL_ATTR_MCAST_GRP_NAME] || !gtb[CTRL_ATTR_MCAST_GRP_ID])
			continue;
		if (!strcmp(nla_get_string(gtb[CTRL_ATTR_MCAST_GRP_NAME]), fi->group))
			fi->group_id = nla_get_u32(gtb[CTRL_ATTR_MCAST_GRP_ID]);
	}
	return 0;
}

/* ---- receiving ---------------------------------------------------------- */

static int is_kmtls(struct kmtls_upcall *u, const struct nlmsghdr *h)
{
	int family = atomic_load(&u->family);

	return family && h->nlmsg_type == family;
}

/* The error of an NLMSG_ERROR message: 0 or -errno, -EPROTO if malformed. */
static int msg_error(const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = nlmsg_data(h);

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)) || e->error > 0 || e->error < -4095)
		return -EPROTO;
	return e->error;
}

/* A message that is not the reply we wait for. */
static void dispatch(struct kmtls_upcall *u, struct nlmsghdr *h)
{
	struct genlmsghdr *g = nlmsg_data(h);
	struct family_info fi = { .name = KMTLS_FAMILY_NAME, .group = KMTLS_MCGRP_AGENTS };

	if (h->nlmsg_type == NLMSG_ERROR) {
		int err = msg_error(h);

		/* Ours are answered in place; these are refused DONEs. */
		if (err && !(h->nlmsg_seq & SEQ_OURS))
			kmtls_log(err == -ENOENT ? LOG_DEBUG : LOG_WARNING,
				  "kernel service: kmtls.ko refused DONE of request %u: %s%s",
				  h->nlmsg_seq, strerror(-err),
				  err == -ENOENT ? " (it ended meanwhile: deadline or cancelled)" : "");
		return;
	}
	if (h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return;
	if (is_kmtls(u, h) && g->cmd == KMTLS_CMD_READY) {
		u->ready = 1;
		return;
	}
	if (h->nlmsg_type != GENL_ID_CTRL || parse_family(h, &fi) || !fi.match)
		return;
	if (g->cmd == CTRL_CMD_NEWFAMILY)
		u->appeared = 1;
	else if (g->cmd == CTRL_CMD_DELFAMILY)
		u->vanished = 1;
}

/*
 * Read what is queued. With @seq, stop at its acknowledgement and return
 * its error (0 for success); a reply with @seq goes to @r. Without, read
 * until the socket is empty. -ENOBUFS when the acknowledgement never came
 * (dropped in an overrun).
 */
static int receive(struct kmtls_upcall *u, uint32_t seq, struct reply *r)
{
	char *buf = u->rbuf;
	struct nlmsghdr *h;
	ssize_t n;
	int len;

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fromlen = sizeof(from);

		n = recvfrom(u->fd, buf, RECV_SIZE, MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {	/* missed messages: READYs maybe */
				u->ready = 1;
				continue;
			}
			return seq ? -ENOBUFS : 0;
		}
		/* Only the kernel speaks for kmtls.ko; a process could forge READY or ACKs. */
		if (fromlen < sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
			continue;
		len = (int)n;
		for (h = (struct nlmsghdr *)buf; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
			if (!seq || h->nlmsg_seq != seq) {
				dispatch(u, h);
				continue;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				return msg_error(h);
			}
			if (r && !r->got)
				r->got = !r->parse(h, r->arg);
		}
	}
}

/* Send a request that wants an acknowledgement and wait for it. */
static int xact(struct kmtls_upcall *u, struct nl_msg *msg, struct reply *r)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	int ret;

	if (send(u->fd, h, h->nlmsg_len, 0) < 0)
		return -errno;
	ret = receive(u, h->nlmsg_seq, r);
	/* The reply came but its acknowledgement was lost: it still counts. */
	if (ret == -ENOBUFS && r && r->got)
		ret = 0;
	return ret;
}

static struct nl_msg *request(int family, uint8_t cmd, uint8_t version,
			      uint32_t seq, int flags)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && !genlmsg_put(msg, NL_AUTO_PORT, seq, family, 0,
				NLM_F_REQUEST | flags, cmd, version)) {
		nlmsg_free(msg);
		msg = NULL;
	}
	return msg;
}

/* GETFAMILY; 0 with @fi filled, -ENOENT when there is no such family. */
static int resolve(struct kmtls_upcall *u, struct family_info *fi)
{
	struct nl_msg *msg = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, next_seq(u),
				     NLM_F_ACK);
	struct reply r = { .parse = parse_family, .arg = fi };
	int ret;

	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, CTRL_ATTR_FAMILY_NAME, fi->name)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = xact(u, msg, &r);
	nlmsg_free(msg);
	if (ret)
		return ret;
	return r.got && fi->match ? 0 : -ENOENT;
}

/* ---- life --------------------------------------------------------------- */

static int join(struct kmtls_upcall *u, uint32_t group)
{
	if (setsockopt(u->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
		return -errno;
	return 0;
}

int kmtls_upcall_open(struct kmtls_upcall *u, char *err, size_t errlen)
{
	struct family_info ctrl = { .name = "nlctrl", .group = "notify" };
	int one = 1, ret, size = RCVBUF;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->rbuf = malloc(RECV_SIZE);
	u->sk = nl_socket_alloc();
	if (!u->sk || !u->rbuf) {
		snprintf(err, errlen, "kernel service: out of memory");
		kmtls_upcall_close(u);
		return -1;
	}
	ret = genl_connect(u->sk);
	if (ret) {
		snprintf(err, errlen, "kernel service: generic netlink socket: %s", nl_geterror(ret));
		kmtls_upcall_close(u);
		return -1;
	}
	u->fd = nl_socket_get_fd(u->sk);
	/* Root may go past net.core.rmem_max; otherwise take what is allowed. */
	if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		nl_socket_set_buffer_size(u->sk, RCVBUF, 0);
	setsockopt(u->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	nl_socket_set_nonblocking(u->sk);
	/* Family news: best effort, the periodic retry covers its absence. */
	if (resolve(u, &ctrl) || !ctrl.group_id || join(u, ctrl.group_id))
		log_debug("kernel service: no nlctrl notifications: kmtls.ko is looked for periodically");
	return 0;
}

void kmtls_upcall_close(struct kmtls_upcall *u)
{
	if (u->sk)
		nl_socket_free(u->sk);	/* closes u->fd */
	u->sk = NULL;
	free(u->rbuf);
	u->rbuf = NULL;
	u->fd = -1;
	atomic_store(&u->family, 0);
	u->joined = 0;
}

int kmtls_upcall_attach(struct kmtls_upcall *u)
{
	struct family_info fi = { .name = KMTLS_FAMILY_NAME, .group = KMTLS_MCGRP_AGENTS };
	int ret;

	if (u->joined && atomic_load(&u->family))
		return 0;
	ret = resolve(u, &fi);
	if (ret)
		return ret;
	if (!fi.group_id)
		return -ENOENT;	/* a family of that name without our group: not ours */
	ret = join(u, fi.group_id);
	if (ret)
		return ret;
	u->group = fi.group_id;
	u->joined = 1;
	u->ready = 1;	/* requests queued before we listened: drain */
	atomic_store(&u->family, fi.id);
	return 0;
}

void kmtls_upcall_detach(struct kmtls_upcall *u)
{
	if (u->joined)
		setsockopt(u->fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &u->group,
			   sizeof(u->group));
	u->joined = 0;
	u->ready = 0;
}

void kmtls_upcall_read(struct kmtls_upcall *u)
{
	receive(u, 0, NULL);
	if (u->vanished) {
		/* The kernel dropped our membership with the group. */
		atomic_store(&u->family, 0);
		u->joined = 0;
		u->ready = 0;
	}
}

/* ---- ACCEPT and DONE ---------------------------------------------------- */

static struct nla_policy accept_policy[KMTLS_A_ACCEPT_MAX + 1] = {
	[KMTLS_A_ACCEPT_SOCKFD] = { .type = NLA_U32 },
	[KMTLS_A_ACCEPT_ROLE] = { .type = NLA_U32 },
	[KMTLS_A_ACCEPT_TIMEOUT_MS] = { .type = NLA_U32 },
	[KMTLS_A_ACCEPT_PEER_NAME] = { .type = NLA_STRING, .maxlen = KMTLS_PEER_NAME_MAX },
	[KMTLS_A_ACCEPT_PROFILE] = { .type = NLA_STRING, .maxlen = KMTLS_PROFILE_MAX },
	[KMTLS_A_ACCEPT_ID] = { .type = NLA_U64 },
	[KMTLS_A_ACCEPT_SOCK_COOKIE] = { .type = NLA_U64 },
	[KMTLS_A_ACCEPT_PID] = { .type = NLA_U32 },
	[KMTLS_A_ACCEPT_UID] = { .type = NLA_U32 },
	[KMTLS_A_ACCEPT_GID] = { .type = NLA_U32 },
};

static void copy_string(char *dst, size_t len, struct nlattr *a)
{
	snprintf(dst, len, "%s", a ? nla_get_string(a) : "");
}

/* An ACCEPT reply being read: the request it fills, the socket it came on. */
struct accept_reply {
	struct kmtls_upcall *u;
	struct kmtls_accept *a;
};

/*
 * A reply we cannot take (kmtls.ko of another version, or a bug): the
 * kernel installed its socket in our fd table all the same. Fail the
 * request at once with EPROTO when its id is there, rather than leave the
 * application to its deadline, and close the fd either way.
 */
static void refuse_accept(struct kmtls_upcall *u, struct nlattr *const *raw)
{
	struct nlattr *fd_attr = raw[KMTLS_A_ACCEPT_SOCKFD], *id_attr = raw[KMTLS_A_ACCEPT_ID];
	struct kmtls_done d = { .status = EPROTO };
	uint32_t fd;
	uint64_t id;

	if (!fd_attr || nla_len(fd_attr) < (int)sizeof(fd))
		return;		/* no socket came with it */
	fd = nla_get_u32(fd_attr);
	if (fd > INT_MAX)
		return;		/* not an fd the kernel installs */
	if (id_attr && nla_len(id_attr) >= (int)sizeof(id)) {
		id = nla_get_u64(id_attr);
		log_err("kernel service: kmtls.ko's ACCEPT reply for request %llu is malformed (a module of another version than kmtlsd?): failing it with EPROTO",
			(unsigned long long)id);
		kmtls_upcall_done(u, (int)fd, id, &d);
	} else {
		log_err("kernel service: kmtls.ko's ACCEPT reply without a request id (a module of another version than kmtlsd?): dropping its socket");
	}
	close((int)fd);
}

static int valid_accept(struct nlattr *const *tb)
{
	uint32_t role;

	if (!tb[KMTLS_A_ACCEPT_SOCKFD] || !tb[KMTLS_A_ACCEPT_ROLE] ||
	    !tb[KMTLS_A_ACCEPT_TIMEOUT_MS] || !tb[KMTLS_A_ACCEPT_ID] ||
	    nla_get_u32(tb[KMTLS_A_ACCEPT_SOCKFD]) > INT_MAX)
		return 0;
	role = nla_get_u32(tb[KMTLS_A_ACCEPT_ROLE]);
	return role == KMTLS_ROLE_CLIENT || role == KMTLS_ROLE_SERVER;
}

static int parse_accept(struct nlmsghdr *h, void *arg)
{
	struct accept_reply *ar = arg;
	struct kmtls_accept *a = ar->a;
	struct nlattr *tb[KMTLS_A_ACCEPT_MAX + 1], *raw[KMTLS_A_ACCEPT_MAX + 1];

	/* Unchecked first: the fd and id of a reply the policy refuses. */
	if (genlmsg_parse(h, 0, raw, KMTLS_A_ACCEPT_MAX, NULL))
		return -1;
	if (genlmsg_parse(h, 0, tb, KMTLS_A_ACCEPT_MAX, accept_policy) || !valid_accept(tb)) {
		refuse_accept(ar->u, raw);
		return -1;
	}
	a->fd = (int)nla_get_u32(tb[KMTLS_A_ACCEPT_SOCKFD]);
	a->role = nla_get_u32(tb[KMTLS_A_ACCEPT_ROLE]);
	a->timeout_ms = nla_get_u32(tb[KMTLS_A_ACCEPT_TIMEOUT_MS]);
	a->id = nla_get_u64(tb[KMTLS_A_ACCEPT_ID]);
	a->cookie = tb[KMTLS_A_ACCEPT_SOCK_COOKIE] ? nla_get_u64(tb[KMTLS_A_ACCEPT_SOCK_COOKIE]) : 0;
	a->pid = tb[KMTLS_A_ACCEPT_PID] ? nla_get_u32(tb[KMTLS_A_ACCEPT_PID]) : 0;
	/* Every reply has them; if one were missing, no uid may pass a list. */
	a->uid = tb[KMTLS_A_ACCEPT_UID] ? nla_get_u32(tb[KMTLS_A_ACCEPT_UID]) : (uint32_t)-1;
	a->gid = tb[KMTLS_A_ACCEPT_GID] ? nla_get_u32(tb[KMTLS_A_ACCEPT_GID]) : (uint32_t)-1;
	copy_string(a->peer_name, sizeof(a->peer_name), tb[KMTLS_A_ACCEPT_PEER_NAME]);
	copy_string(a->profile, sizeof(a->profile), tb[KMTLS_A_ACCEPT_PROFILE]);
	return 0;
}

int kmtls_upcall_accept(struct kmtls_upcall *u, struct kmtls_accept *a)
{
	int family = atomic_load(&u->family);
	struct accept_reply ar = { .u = u, .a = a };
	struct reply r = { .parse = parse_accept, .arg = &ar };
	struct nl_msg *msg;
	int ret;

	if (!family)
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	msg = request(family, KMTLS_CMD_ACCEPT, KMTLS_FAMILY_VERSION, next_seq(u), NLM_F_ACK);
	if (!msg)
		return -ENOMEM;
	ret = xact(u, msg, &r);
	nlmsg_free(msg);
	if (ret == -EAGAIN)
		return 0;
	if (ret)
		return ret;
	return r.got ? 1 : -EPROTO;
}

static int put_list(struct nl_msg *msg, int type, char *const *v, int n)
{
	size_t total = 0;
	int i;

	for (i = 0; i < n; i++) {
		total += strlen(v[i]) + 1;
		if (total > KMTLS_SAN_LIST_MAX)
			return -EMSGSIZE;
		if (nla_put_string(msg, type, v[i]))
			return -ENOMEM;
	}
	return 0;
}

static int put_done(struct nl_msg *msg, int fd, const struct kmtls_done *d)
{
	int ret;

	if (nla_put_u32(msg, KMTLS_A_DONE_STATUS, (uint32_t)d->status) ||
	    nla_put_u32(msg, KMTLS_A_DONE_SOCKFD, (uint32_t)fd))
		return -ENOMEM;
	if (d->status)
		return 0;
	if (d->subject && strlen(d->subject) >= KMTLS_SUBJECT_MAX)
		return -EMSGSIZE;
	if (nla_put_u16(msg, KMTLS_A_DONE_TLS_VERSION, d->version) ||
	    nla_put_u16(msg, KMTLS_A_DONE_CIPHER, d->cipher) ||
	    (d->resumed && nla_put_flag(msg, KMTLS_A_DONE_RESUMED)) ||
	    (d->subject && nla_put_string(msg, KMTLS_A_DONE_PEER_SUBJECT, d->subject)) ||
	    (d->fingerprint && nla_put(msg, KMTLS_A_DONE_PEER_FINGERPRINT,
				       KMTLS_FINGERPRINT_LEN, d->fingerprint)))
		return -ENOMEM;
	ret = put_list(msg, KMTLS_A_DONE_PEER_SAN_URI, d->uris, d->n_uris);
	if (!ret)
		ret = put_list(msg, KMTLS_A_DONE_PEER_SAN_DNS, d->dns, d->n_dns);
	return ret;
}

int kmtls_upcall_done(struct kmtls_upcall *u, int fd, uint64_t id,
		      const struct kmtls_done *d)
{
	int family = atomic_load(&u->family);
	uint32_t seq = (uint32_t)(id & ~(uint64_t)SEQ_OURS);
	struct nl_msg *msg;
	struct nlmsghdr *h;
	int ret;

	if (!family)
		return -ENOENT;	/* kmtls.ko went away, and the request with it */
	/* Identity lists come from certificates: room grows with them. */
	msg = nlmsg_alloc_size(8192 + 2 * KMTLS_SAN_LIST_MAX);
	if (!msg)
		return -ENOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, seq ? seq : 1, family, 0, NLM_F_REQUEST,
			 KMTLS_CMD_DONE, KMTLS_FAMILY_VERSION)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = put_done(msg, fd, d);
	if (!ret) {
		h = nlmsg_hdr(msg);
		if (send(u->fd, h, h->nlmsg_len, 0) < 0)
			ret = -errno;
	}
	nlmsg_free(msg);
	return ret;
}
