// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - generic netlink family "kmtls" and agent tracking
 *
 * kmod/kmtls.yaml specifies the family; the policies below follow from it.
 *
 *   READY   kernel -> group "agents", when a request is queued and
 *           someone listens; no attributes.
 *   ACCEPT  agent -> kernel (CAP_NET_ADMIN): takes the oldest queued
 *           request of the agent's namespace, installs its socket as a new
 *           fd in the agent, replies with the request's attributes. EAGAIN
 *           when nothing is queued.
 *   DONE    agent -> kernel (CAP_NET_ADMIN): the outcome of a request it
 *           accepted, named by that fd.
 *
 * AGENTS: a request may wait while an agent is present in its namespace:
 * a socket of the namespace listens to "agents", or a socket sent ACCEPT
 * and is still open.
 *
 * Listeners are counted by delivery: READY goes out whenever a request is
 * queued or its agent wait expires, and genlmsg_multicast_netns() fails
 * with ESRCH exactly when no socket of the namespace received it. (The
 * listener bitmap behind genl_has_listeners() is shared by all
 * namespaces, so it only serves as a shortcut when it is empty.) Joining
 * a group has no per-socket hook on 6.1, and 6.12's family bind hook does
 * not name the socket or its namespace.
 *
 * Sockets that sent ACCEPT are tracked in struct kmtls_agent, because the
 * requests they accepted must fail when they go away. The socket private
 * data of 6.10+ does not exist on 6.1, but the netlink notifier
 * NETLINK_URELEASE exists on both and reports every bound netlink socket
 * that is released, with its namespace and port id. By then the socket has
 * left its groups, so a READY sent from the notifier reaches only the
 * agents that remain.
 *
 * The port id does not name an agent: it is free again as soon as the
 * socket is unhashed, before NETLINK_URELEASE, and another socket may bind
 * it and send ACCEPT in between (autobind tries the process id first, so a
 * thread of the same agent does that easily). An agent is its socket
 * (referenced, compared, never used otherwise); NETLINK_URELEASE picks the
 * agent of its port id whose socket is dead.
 */

#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/jiffies.h>
#include <linux/net.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/pid.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uidgid.h>
#include <net/genetlink.h>
#include <net/inet_connection_sock.h>
#include <net/netlink.h>
#include <net/sock.h>
#include <net/tls.h>

#include "kmtls.h"
#include "kmtls_trace.h"

enum {
	KMTLS_NLGRP_AGENTS,
};

/* ACCEPT carries no attribute */
static const struct nla_policy kmtls_accept_nl_policy[KMTLS_A_ACCEPT_MAX + 1] = {
	[0 ... KMTLS_A_ACCEPT_MAX] = { .type = NLA_REJECT },
};

static const struct nla_policy kmtls_done_nl_policy[KMTLS_A_DONE_MAX + 1] = {
	/* 512 (ERESTARTSYS) and up are kernel-internal: never for an application */
	[KMTLS_A_DONE_STATUS]		= NLA_POLICY_MAX(NLA_U32, KMTLS_STATUS_MAX),
	[KMTLS_A_DONE_SOCKFD]		= { .type = NLA_S32, },
	[KMTLS_A_DONE_TLS_VERSION]	= NLA_POLICY_RANGE(NLA_U16, 0x0303, 0x0304),
	[KMTLS_A_DONE_CIPHER]		= { .type = NLA_U16, },
	[KMTLS_A_DONE_RESUMED]		= { .type = NLA_FLAG, },
	[KMTLS_A_DONE_PEER_SUBJECT]	= { .type = NLA_NUL_STRING,
					    .len = KMTLS_SUBJECT_MAX - 1, },
	[KMTLS_A_DONE_PEER_SAN_URI]	= { .type = NLA_NUL_STRING,
					    .len = KMTLS_SAN_LIST_MAX - 1, },
	[KMTLS_A_DONE_PEER_SAN_DNS]	= { .type = NLA_NUL_STRING,
					    .len = KMTLS_SAN_LIST_MAX - 1, },
	[KMTLS_A_DONE_PEER_FINGERPRINT]	= NLA_POLICY_EXACT_LEN(KMTLS_FINGERPRINT_LEN),
};

static int kmtls_nl_accept_doit(struct sk_buff *skb, struct genl_info *info);
static int kmtls_nl_done_doit(struct sk_buff *skb, struct genl_info *info);

static const struct genl_ops kmtls_nl_ops[] = {
	{
		.cmd		= KMTLS_CMD_ACCEPT,
		.doit		= kmtls_nl_accept_doit,
		.policy		= kmtls_accept_nl_policy,
		.maxattr	= KMTLS_A_ACCEPT_MAX,
		.flags		= GENL_ADMIN_PERM,
	},
	{
		.cmd		= KMTLS_CMD_DONE,
		.doit		= kmtls_nl_done_doit,
		.policy		= kmtls_done_nl_policy,
		.maxattr	= KMTLS_A_DONE_MAX,
		.flags		= GENL_ADMIN_PERM,
	},
};

static const struct genl_multicast_group kmtls_nl_mcgrps[] = {
	[KMTLS_NLGRP_AGENTS] = {
		.name	= KMTLS_MCGRP_AGENTS,
		.flags	= GENL_MCAST_CAP_NET_ADMIN,
	},
};

/*
 * resv_start_op stays 0: every command gets strict attribute validation
 * and a checked genetlink header.
 */
static struct genl_family kmtls_nl_family __ro_after_init = {
	.name		= KMTLS_FAMILY_NAME,
	.version	= KMTLS_FAMILY_VERSION,
	.netnsok	= true,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= kmtls_nl_ops,
	.n_ops		= ARRAY_SIZE(kmtls_nl_ops),
	.mcgrps		= kmtls_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(kmtls_nl_mcgrps),
};

/* ---- agents ------------------------------------------------------------ */

/**
 * kmtls_agent_tracked - Has an open socket of this namespace sent ACCEPT?
 * @kn: kmtls state of the namespace, locked by the caller
 *
 * Return: true if so; such an agent may poll without listening to READY.
 */
bool kmtls_agent_tracked(struct kmtls_net *kn)
{
	lockdep_assert_held(&kn->lock);
	return !list_empty(&kn->agents);
}

static struct kmtls_agent *kmtls_agent_find_locked(struct kmtls_net *kn,
						   const struct sock *sk)
{
	struct kmtls_agent *ka;

	list_for_each_entry(ka, &kn->agents, ka_list)
		if (ka->ka_sk == sk)
			return ka;
	return NULL;
}

/*
 * The agent behind an ACCEPT from socket @sk, created on its first one. It
 * stays valid while @sk is sending: only the release of @sk frees it.
 */
static struct kmtls_agent *kmtls_agent_track(struct kmtls_net *kn,
					     struct sock *sk, u32 portid)
{
	struct kmtls_agent *ka, *new;

	spin_lock(&kn->lock);
	ka = kmtls_agent_find_locked(kn, sk);
	spin_unlock(&kn->lock);
	if (ka)
		return ka;

	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return NULL;
	INIT_LIST_HEAD(&new->ka_accepted);
	sock_hold(sk);
	new->ka_sk = sk;
	new->ka_portid = portid;

	spin_lock(&kn->lock);
	ka = kmtls_agent_find_locked(kn, sk);
	if (!ka) {
		list_add_tail(&new->ka_list, &kn->agents);
		swap(ka, new);
	}
	spin_unlock(&kn->lock);
	if (new) {
		sock_put(new->ka_sk);
		kfree(new);
	}
	return ka;
}

static void kmtls_agent_free(struct kmtls_agent *ka)
{
	sock_put(ka->ka_sk);
	kfree(ka);
}

/*
 * A bound generic netlink socket of @net with port id @portid is being
 * released. The notification names the port id only, which another socket
 * may have bound already: the agent is the one of that port id whose
 * socket is dead (sock_orphan() came first). Should two dead sockets share
 * it, both go now.
 */
static void kmtls_agent_release(struct net *net, u32 portid)
{
	struct kmtls_net *kn = kmtls_pernet(net);
	struct kmtls_agent *ka, *tmp;
	LIST_HEAD(gone);

	spin_lock(&kn->lock);
	list_for_each_entry_safe(ka, tmp, &kn->agents, ka_list)
		if (ka->ka_portid == portid && sock_flag(ka->ka_sk, SOCK_DEAD))
			list_move_tail(&ka->ka_list, &gone);
	spin_unlock(&kn->lock);

	list_for_each_entry_safe(ka, tmp, &gone, ka_list) {
		list_del(&ka->ka_list);
		kmtls_req_agent_lost(kn, ka);
		kmtls_agent_free(ka);
	}
	kmtls_req_agent_gone(net, kn);
}

static int kmtls_nl_sock_event(struct notifier_block *nb,
			       unsigned long event, void *ptr)
{
	const struct netlink_notify *n = ptr;

	if (event == NETLINK_URELEASE && n->protocol == NETLINK_GENERIC)
		kmtls_agent_release(n->net, n->portid);
	return NOTIFY_DONE;
}

static struct notifier_block kmtls_nl_notifier = {
	.notifier_call	= kmtls_nl_sock_event,
};

/**
 * kmtls_nl_net_exit - Forget the agents of a namespace
 * @kn: kmtls state of a namespace going away, or of every namespace at
 *	module unload (agent sockets may outlive the module)
 *
 * No request exists any more, so no agent has one.
 */
void kmtls_nl_net_exit(struct kmtls_net *kn)
{
	struct kmtls_agent *ka, *tmp;

	list_for_each_entry_safe(ka, tmp, &kn->agents, ka_list) {
		WARN_ON_ONCE(!list_empty(&ka->ka_accepted));
		list_del(&ka->ka_list);
		kmtls_agent_free(ka);
	}
}

/* ---- READY ------------------------------------------------------------- */

/**
 * kmtls_nl_notify_ready - Tell the agents of a namespace a request waits
 * @net: namespace
 *
 * An agent that misses READY (ENOBUFS on its socket) must drain the queue
 * with ACCEPT until EAGAIN.
 *
 * Return:
 *   %0: at least one socket of @net received it
 *   %-ESRCH: no socket of @net listens to group "agents"
 *   %-ENOBUFS: a listener's receive queue was full
 *   %-ENOMEM, %-EMSGSIZE: the message could not be built
 */
int kmtls_nl_notify_ready(struct net *net)
{
	struct sk_buff *msg;
	void *hdr;

	if (!genl_has_listeners(&kmtls_nl_family, net, KMTLS_NLGRP_AGENTS))
		return -ESRCH;	/* nobody, in any namespace */

	msg = genlmsg_new(0, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put(msg, 0, 0, &kmtls_nl_family, 0, KMTLS_CMD_READY);
	if (!hdr) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_multicast_netns(&kmtls_nl_family, net, msg, 0,
				       KMTLS_NLGRP_AGENTS, GFP_KERNEL);
}

/* ---- ACCEPT ------------------------------------------------------------ */

static u32 kmtls_nl_ms_left(const struct kmtls_req *req)
{
	long left = (long)(req->kr_deadline - jiffies);

	return left > 0 ? jiffies_to_msecs(left) : 0;
}

static int kmtls_nl_accept_fill(struct sk_buff *msg,
				const struct kmtls_req *req, int fd)
{
	struct user_namespace *ns = current_user_ns();

	if (nla_put_s32(msg, KMTLS_A_ACCEPT_SOCKFD, fd) ||
	    nla_put_u32(msg, KMTLS_A_ACCEPT_ROLE, req->kr_role) ||
	    nla_put_u32(msg, KMTLS_A_ACCEPT_TIMEOUT_MS, kmtls_nl_ms_left(req)) ||
	    nla_put_string(msg, KMTLS_A_ACCEPT_PEER_NAME, req->kr_peer_name) ||
	    nla_put_string(msg, KMTLS_A_ACCEPT_PROFILE, req->kr_profile) ||
	    nla_put_u64_64bit(msg, KMTLS_A_ACCEPT_ID, req->kr_result.id,
			      KMTLS_A_ACCEPT_PAD) ||
	    nla_put_u64_64bit(msg, KMTLS_A_ACCEPT_SOCK_COOKIE,
			      req->kr_result.sock_cookie, KMTLS_A_ACCEPT_PAD) ||
	    nla_put_u32(msg, KMTLS_A_ACCEPT_PID, pid_vnr(req->kr_pid)) ||
	    nla_put_u32(msg, KMTLS_A_ACCEPT_UID,
			from_kuid_munged(ns, req->kr_cred->euid)) ||
	    nla_put_u32(msg, KMTLS_A_ACCEPT_GID,
			from_kgid_munged(ns, req->kr_cred->egid)))
		return -EMSGSIZE;
	return 0;
}

static int kmtls_nl_accept_reply(struct genl_info *info,
				 const struct kmtls_req *req, int fd)
{
	struct sk_buff *msg;
	void *hdr;
	int err;

	msg = genlmsg_new(GENLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	err = -EMSGSIZE;
	hdr = genlmsg_put_reply(msg, info, &kmtls_nl_family, 0,
				KMTLS_CMD_ACCEPT);
	if (!hdr)
		goto out_free;
	err = kmtls_nl_accept_fill(msg, req, fd);
	if (err)
		goto out_free;
	genlmsg_end(msg, hdr);
	err = genlmsg_reply(msg, info);
	/* EAGAIN would read as "nothing queued": the caller's queue is full */
	return err == -EAGAIN ? -ENOBUFS : err;

out_free:
	nlmsg_free(msg);
	return err;
}

/**
 * kmtls_nl_accept_doit - ACCEPT: take the oldest queued request
 * @skb: the message
 * @info: its attributes (none)
 *
 * The caller becomes an agent. The request's socket is installed as a new
 * fd (O_CLOEXEC) in the caller after the reply is queued, so the reply and
 * the fd arrive together for a caller that waits for its reply. The fd
 * refers to the same socket as the submitter's, whose cgroup and owner
 * stay the submitter's.
 *
 * Return:
 *   %0: a reply with the request's attributes was sent
 *   %-EAGAIN: no request is queued
 *   %-EMFILE, %-ENFILE: the caller has no free fd (the request stays queued)
 *   %-ENOMEM, %-EMSGSIZE, %-ENOBUFS: the reply could not be built or
 *	queued (the request stays queued)
 *   %-EPERM: the caller lacks CAP_NET_ADMIN (checked by genetlink)
 */
static int kmtls_nl_accept_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct kmtls_net *kn = kmtls_pernet(genl_info_net(info));
	struct kmtls_agent *ka;
	struct kmtls_req *req;
	struct file *file;
	int fd, err;

	ka = kmtls_agent_track(kn, NETLINK_CB(skb).sk, info->snd_portid);
	if (!ka)
		return -ENOMEM;

	req = kmtls_req_next(kn, ka, &file);
	if (!req) {
		NL_SET_ERR_MSG(info->extack, "no request is queued");
		return -EAGAIN;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		err = fd;
		goto out_requeue;
	}
	err = kmtls_nl_accept_reply(info, req, fd);
	if (err)
		goto out_fd;

	fd_install(fd, file);
	KMTLS_INC_STATS(req->kr_net, KMTLS_MIB_ACCEPTED);
	trace_kmtls_accept(req, 0);
	kmtls_req_put(req);
	return 0;

out_fd:
	put_unused_fd(fd);
out_requeue:
	fput(file);
	kmtls_req_requeue(req);
	kmtls_req_put(req);
	return err;
}

/* ---- DONE -------------------------------------------------------------- */

/* Total bytes of a multi-attr string list, with NULs; -errno if unusable */
static int kmtls_nl_list_size(const struct genl_info *info, int type)
{
	const struct nlattr *nla;
	size_t len, total = 0;
	int rem;

	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(nla) != type)
			continue;
		len = strnlen(nla_data(nla), nla_len(nla));
		if (!len) {
			NL_SET_ERR_MSG_ATTR(info->extack, nla, "empty name");
			return -EINVAL;
		}
		total += len + 1;
		if (total > KMTLS_SAN_LIST_MAX) {
			NL_SET_ERR_MSG_ATTR(info->extack, nla,
					    "names exceed KMTLS_SAN_LIST_MAX");
			return -EMSGSIZE;
		}
	}
	return total;
}

/* What DONE must carry besides status and fd */
static int kmtls_nl_done_check(struct genl_info *info, u32 status)
{
	int ret;

	if (status)
		return 0;
	if (GENL_REQ_ATTR_CHECK(info, KMTLS_A_DONE_TLS_VERSION) ||
	    GENL_REQ_ATTR_CHECK(info, KMTLS_A_DONE_CIPHER))
		return -EINVAL;

	ret = kmtls_nl_list_size(info, KMTLS_A_DONE_PEER_SAN_URI);
	if (ret < 0)
		return ret;
	ret = kmtls_nl_list_size(info, KMTLS_A_DONE_PEER_SAN_DNS);
	return ret < 0 ? ret : 0;
}

/* Success means kTLS is on for both directions: never plaintext */
static int kmtls_nl_ktls_check(struct sock *sk)
{
	const struct inet_connection_sock *icsk = inet_csk(sk);
	const struct tls_context *ctx;
	bool ok = false;

	lock_sock(sk);
	if (icsk->icsk_ulp_ops && !strcmp(icsk->icsk_ulp_ops->name, "tls")) {
		ctx = tls_get_ctx(sk);
		ok = ctx->tx_conf != TLS_BASE && ctx->rx_conf != TLS_BASE;
	}
	release_sock(sk);
	return ok ? 0 : -EINVAL;
}

static int kmtls_nl_done_sock(struct genl_info *info, const struct sock *agent,
			      struct socket *sock, u32 status)
{
	struct kmtls_req *req;
	int err = -ENOENT;

	req = kmtls_req_lookup(sock->sk);
	if (!req)
		goto out_msg;
	if (!kmtls_req_owned_by(req, genl_info_net(info), agent))
		goto out_put;

	if (!status) {
		err = kmtls_nl_ktls_check(sock->sk);
		if (err) {
			NL_SET_ERR_MSG(info->extack,
				       "success needs kTLS TX and RX on the socket");
			goto out_put;
		}
	}
	err = kmtls_req_complete(req, -(int)status, KMTLS_HOW_DONE, info) ?
	      0 : -ENOENT;

out_put:
	kmtls_req_put(req);
out_msg:
	if (err == -ENOENT)
		NL_SET_ERR_MSG(info->extack,
			       "no request accepted by this socket on this fd");
	return err;
}

/**
 * kmtls_nl_done_doit - DONE: report the outcome of an accepted request
 * @skb: the message
 * @info: its attributes
 *
 * Nothing changes unless the call succeeds.
 *
 * Return:
 *   %0: the request completed with the given status
 *   %-EINVAL: STATUS or SOCKFD missing; success without TLS_VERSION or
 *	CIPHER, or without kTLS TX and RX on the socket; an empty name;
 *	an attribute out of policy
 *   %-ERANGE: STATUS above KMTLS_STATUS_MAX, TLS_VERSION not 0x0303 or 0x0304
 *   %-EMSGSIZE: the SAN URIs or DNS names exceed KMTLS_SAN_LIST_MAX
 *   %-EBADF: SOCKFD is not an open fd of the caller
 *   %-ENOTSOCK: SOCKFD is not a socket
 *   %-ENOENT: the socket has no request accepted through the sending
 *	netlink socket (never submitted, accepted by another, or completed
 *	already: DONE twice, deadline, cancellation)
 *   %-EPERM: the caller lacks CAP_NET_ADMIN (checked by genetlink)
 */
static int kmtls_nl_done_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct socket *sock;
	u32 status;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, KMTLS_A_DONE_STATUS) ||
	    GENL_REQ_ATTR_CHECK(info, KMTLS_A_DONE_SOCKFD))
		return -EINVAL;

	status = nla_get_u32(info->attrs[KMTLS_A_DONE_STATUS]);
	err = kmtls_nl_done_check(info, status);
	if (err)
		return err;

	sock = sockfd_lookup(nla_get_s32(info->attrs[KMTLS_A_DONE_SOCKFD]),
			     &err);
	if (!sock) {
		NL_SET_BAD_ATTR(info->extack, info->attrs[KMTLS_A_DONE_SOCKFD]);
		return err;
	}
	err = kmtls_nl_done_sock(info, NETLINK_CB(skb).sk, sock, status);
	sockfd_put(sock);
	return err;
}

/* Copy the strings of a multi-attr list into @buf, back to back */
static u16 kmtls_nl_fill_list(const struct genl_info *info, int type,
			      char *buf, size_t size)
{
	const struct nlattr *nla;
	size_t len, off = 0;
	u16 n = 0;
	int rem;

	nlmsg_for_each_attr(nla, info->nlhdr, GENL_HDRLEN, rem) {
		if (nla_type(nla) != type)
			continue;
		len = strnlen(nla_data(nla), nla_len(nla));
		if (len + 1 > size - off)
			break;	/* cannot happen: checked before */
		memcpy(buf + off, nla_data(nla), len);
		off += len + 1;
		n++;
	}
	return n;
}

/**
 * kmtls_nl_fill_result - Copy DONE's peer identity into a completion
 * @res: completion of a request that succeeded, zeroed past the header
 * @info: the DONE that kmtls_nl_done_doit() checked
 */
void kmtls_nl_fill_result(struct kmtls_completion *res,
			  const struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;

	res->tls_version = nla_get_u16(attrs[KMTLS_A_DONE_TLS_VERSION]);
	res->cipher = nla_get_u16(attrs[KMTLS_A_DONE_CIPHER]);
	if (nla_get_flag(attrs[KMTLS_A_DONE_RESUMED]))
		res->flags |= KMTLS_COMPLETION_F_RESUMED;
	if (attrs[KMTLS_A_DONE_PEER_FINGERPRINT]) {
		nla_memcpy(res->fingerprint, attrs[KMTLS_A_DONE_PEER_FINGERPRINT],
			   sizeof(res->fingerprint));
		res->flags |= KMTLS_COMPLETION_F_PEER_CERT;
	}
	if (attrs[KMTLS_A_DONE_PEER_SUBJECT])
		nla_strscpy(res->subject, attrs[KMTLS_A_DONE_PEER_SUBJECT],
			    sizeof(res->subject));
	res->san_uri_count = kmtls_nl_fill_list(info, KMTLS_A_DONE_PEER_SAN_URI,
						res->san_uri,
						sizeof(res->san_uri));
	res->san_dns_count = kmtls_nl_fill_list(info, KMTLS_A_DONE_PEER_SAN_DNS,
						res->san_dns,
						sizeof(res->san_dns));
}

/* ---- registration ------------------------------------------------------ */

/**
 * kmtls_nl_register - Register the family and the socket notifier
 *
 * Return:
 *   %0: done
 *   %-EEXIST: a family named kmtls exists
 *   other negative errno: genl_register_family() failed
 */
int kmtls_nl_register(void)
{
	int ret;

	/* First the notifier: no agent may go unnoticed */
	ret = netlink_register_notifier(&kmtls_nl_notifier);
	if (ret)
		return ret;

	ret = genl_register_family(&kmtls_nl_family);
	if (ret)
		netlink_unregister_notifier(&kmtls_nl_notifier);
	return ret;
}

/**
 * kmtls_nl_unregister - Unregister the family and the notifier
 *
 * Waits for running commands and notifier calls to return.
 */
void kmtls_nl_unregister(void)
{
	genl_unregister_family(&kmtls_nl_family);
	netlink_unregister_notifier(&kmtls_nl_notifier);
}
