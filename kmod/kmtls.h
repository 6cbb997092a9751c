/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmtls - mutual TLS handshake as a kernel service
 *
 * Internal declarations shared by the files of kmtls.ko. Nothing here is
 * visible to userspace; the UAPI lives in include/uapi/linux/kmtls.h.
 */

#ifndef _KMTLS_H
#define _KMTLS_H

#include <linux/list.h>
#include <linux/refcount.h>
#include <linux/rhashtable-types.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <net/snmp.h>
#include <uapi/linux/kmtls.h>

struct cred;
struct ctl_table;
struct ctl_table_header;
struct file;
struct genl_info;
struct kmtls_file;
struct net;
struct pid;
struct sock;
struct socket;

/*
 * Counters shown in /proc/net/kmtls_stat, one set per network namespace.
 * The *NOW entries are gauges: incremented and decremented, the per-cpu
 * parts may wrap but their sum is exact.
 */
enum kmtls_mib_field {
	KMTLS_MIB_SUBMITTED,	/* valid requests handed to the kernel */
	KMTLS_MIB_ACCEPTED,	/* requests taken by an agent */
	KMTLS_MIB_COMPLETED,	/* handshakes that succeeded */
	KMTLS_MIB_FAILED,	/* handshakes the agent reported failed */
	KMTLS_MIB_FAILEDAUTH,	/* ... of those: peer refused (EACCES...) */
	KMTLS_MIB_FAILEDCONN,	/* ... connection lost (ECONNRESET...) */
	KMTLS_MIB_FAILEDPROTO,	/* ... protocol error (EPROTO...) */
	KMTLS_MIB_FAILEDOTHER,	/* ... any other errno */
	KMTLS_MIB_TIMEDOUT,	/* requests past their deadline */
	KMTLS_MIB_NOAGENT,	/* refused or expired for want of an agent */
	KMTLS_MIB_QUEUEFULL,	/* refused: max_pending requests queued */
	KMTLS_MIB_CANCELLED,	/* requests withdrawn by the submitter */
	KMTLS_MIB_AGENTLOST,	/* accepted requests failed by agent exit */
	KMTLS_MIB_PENDINGNOW,	/* gauge: queued, not yet accepted */
	KMTLS_MIB_INFLIGHTNOW,	/* gauge: accepted, not yet done */
	KMTLS_MIB_MAX
};

/*
 * Every Submitted request ends in exactly one of Completed, Failed, TimedOut,
 * NoAgent, QueueFull, Cancelled, AgentLost, or is still counted by one of the
 * gauges.
 */

struct kmtls_mib {
	unsigned long	mibs[KMTLS_MIB_MAX];
};

/* Tunables under /proc/sys/net/kmtls/ */
#define KMTLS_HANDSHAKE_TIMEOUT_MS_DEFAULT	10000
#define KMTLS_HANDSHAKE_TIMEOUT_MS_MIN		100
#define KMTLS_HANDSHAKE_TIMEOUT_MS_MAX		600000
#define KMTLS_MAX_PENDING_DEFAULT		128
#define KMTLS_MAX_PENDING_MIN			1
#define KMTLS_MAX_PENDING_MAX			65536
#define KMTLS_AGENT_WAIT_MS_DEFAULT		5000
#define KMTLS_AGENT_WAIT_MS_MIN			0
#define KMTLS_AGENT_WAIT_MS_MAX			600000

/* Per-net namespace context */
struct kmtls_net {
	struct kmtls_mib __percpu	*mib;
	struct ctl_table_header		*sysctl_hdr;
	struct ctl_table		*sysctl_table;

	/* sysctls: written by proc handlers, read with READ_ONCE() */
	unsigned int			handshake_timeout_ms;
	unsigned int			max_pending;
	unsigned int			agent_wait_ms;

	/*
	 * @lock protects the queue, the agents, and in every request of the
	 * namespace kr_list, kr_state, kr_agent, kr_portid and kr_expires.
	 */
	spinlock_t			lock;
	struct list_head		pending;	/* kmtls_req.kr_list, FIFO */
	unsigned int			nr_pending;
	struct list_head		agents;		/* kmtls_agent.ka_list */
};

/*
 * An agent: a generic netlink socket that sent ACCEPT. It lives until the
 * socket is released (NETLINK_URELEASE); the requests it accepted then fail
 * with ECONNABORTED. The socket names it, not the port id (netlink.c).
 */
struct kmtls_agent {
	struct list_head	ka_list;	/* kmtls_net.agents */
	struct list_head	ka_accepted;	/* kmtls_req.kr_list */
	struct sock		*ka_sk;		/* referenced; identity only */
	u32			ka_portid;
};

/* Life of a request; transitions under kmtls_net.lock */
enum kmtls_req_state {
	KMTLS_REQ_NEW,		/* allocated, not queued */
	KMTLS_REQ_PENDING,	/* on kmtls_net.pending */
	KMTLS_REQ_ACCEPTED,	/* on its agent's ka_accepted */
	KMTLS_REQ_DONE,		/* completed: on no list of the namespace */
};

/* Why a request completes: selects the counter and the tracepoint */
enum kmtls_how {
	KMTLS_HOW_DONE,		/* the agent sent DONE */
	KMTLS_HOW_TIMEOUT,	/* deadline (kr_work) */
	KMTLS_HOW_NOAGENT,	/* no agent for agent_wait_ms (kr_work) */
	KMTLS_HOW_CANCEL,	/* the submitter's file was closed */
	KMTLS_HOW_AGENTLOST,	/* the agent that accepted it went away */
};

/* kmtls_req.kr_flags */
enum {
	KMTLS_REQ_F_COMPLETED,	/* exactly one kmtls_req_complete() wins */
};

/**
 * struct kmtls_req - one handshake request
 * @kr_rhash: entry in the global table, keyed by @kr_sk
 * @kr_sk: the socket's struct sock (key only; @kr_file pins it)
 * @kr_list: on kmtls_net.pending or kmtls_agent.ka_accepted
 * @kr_file_list: on the submitter's outstanding or completed list
 * @kr_ref: references: the submitter's until completion, then the
 *	completed list's; temporary ones of lookups
 * @kr_flags: KMTLS_REQ_F_*
 * @kr_state: enum kmtls_req_state
 * @kr_net: the namespace the request is queued in (the submitter's file
 *	holds a reference)
 * @kr_kf: the submitter's file context, referenced
 * @kr_file: the socket's file, referenced until completion
 * @kr_sock: the socket, valid while @kr_file is held
 * @kr_pid: the submitting process, referenced
 * @kr_cred: the submitter's credentials, referenced
 * @kr_agent: the socket of the agent that accepted it (identity only)
 * @kr_portid: its netlink port id (for tracing)
 * @kr_role: enum kmtls_role
 * @kr_deadline: jiffies at which it times out
 * @kr_expires: jiffies at which @kr_work is due
 * @kr_start_ns: ktime_get_ns() at submission
 * @kr_work: deadline and agent-wait expiry
 * @kr_rcu: deferred free (lookups run under RCU)
 * @kr_peer_name: struct kmtls_submit.peer_name
 * @kr_profile: struct kmtls_submit.profile
 * @kr_result: the completion: id, user_data and cookie from submission,
 *	the rest written once by the completion winner
 */
struct kmtls_req {
	struct rhash_head	kr_rhash;
	struct sock		*kr_sk;
	struct list_head	kr_list;
	struct list_head	kr_file_list;
	refcount_t		kr_ref;
	unsigned long		kr_flags;
	enum kmtls_req_state	kr_state;
	struct net		*kr_net;
	struct kmtls_file	*kr_kf;
	struct file		*kr_file;
	struct socket		*kr_sock;
	struct pid		*kr_pid;
	const struct cred	*kr_cred;
	const struct sock	*kr_agent;
	u32			kr_portid;
	u32			kr_role;
	unsigned long		kr_deadline;
	unsigned long		kr_expires;
	u64			kr_start_ns;
	struct delayed_work	kr_work;
	struct rcu_head		kr_rcu;
	char			kr_peer_name[KMTLS_PEER_NAME_MAX];
	char			kr_profile[KMTLS_PROFILE_MAX];
	struct kmtls_completion	kr_result;
};

#define KMTLS_INC_STATS(net, field)	\
	SNMP_INC_STATS(kmtls_pernet(net)->mib, field)
#define KMTLS_DEC_STATS(net, field)	\
	SNMP_DEC_STATS(kmtls_pernet(net)->mib, field)

/* netns.c */
struct kmtls_net *kmtls_pernet(const struct net *net);
int kmtls_net_register(void);
void kmtls_net_unregister(void);

/* proc.c */
#ifdef CONFIG_PROC_FS
int kmtls_proc_init(struct net *net);
void kmtls_proc_exit(struct net *net);
#else
static inline int kmtls_proc_init(struct net *net)
{
	return 0;
}

static inline void kmtls_proc_exit(struct net *net)
{
}
#endif

/* sysctl.c */
#ifdef CONFIG_SYSCTL
int kmtls_sysctl_init(struct net *net);
void kmtls_sysctl_exit(struct net *net);
#else
static inline int kmtls_sysctl_init(struct net *net)
{
	return 0;
}

static inline void kmtls_sysctl_exit(struct net *net)
{
}
#endif

/* dev.c */
int kmtls_dev_register(void);
void kmtls_dev_unregister(void);
void kmtls_file_get(struct kmtls_file *kf);
void kmtls_file_put(struct kmtls_file *kf);
void kmtls_file_deliver(struct kmtls_file *kf, struct kmtls_req *req);

/* request.c */
int kmtls_req_init(void);
void kmtls_req_exit(void);
struct kmtls_req *kmtls_req_alloc(struct kmtls_file *kf, struct net *net,
				  struct socket *sock,
				  const struct kmtls_submit *sub);
void kmtls_req_put(struct kmtls_req *req);
int kmtls_req_submit(struct kmtls_req *req);
struct kmtls_req *kmtls_req_lookup(const struct sock *sk);
bool kmtls_req_owned_by(struct kmtls_req *req, const struct net *net,
			const struct sock *agent);
struct kmtls_req *kmtls_req_next(struct kmtls_net *kn,
				 struct kmtls_agent *ka, struct file **filep);
void kmtls_req_requeue(struct kmtls_req *req);
bool kmtls_req_complete(struct kmtls_req *req, int status,
			enum kmtls_how how, const struct genl_info *info);
void kmtls_req_agent_lost(struct kmtls_net *kn, struct kmtls_agent *ka);
void kmtls_req_agent_gone(struct net *net, struct kmtls_net *kn);

/* netlink.c */
int kmtls_nl_register(void);
void kmtls_nl_unregister(void);
bool kmtls_agent_tracked(struct kmtls_net *kn);
void kmtls_nl_net_exit(struct kmtls_net *kn);
int kmtls_nl_notify_ready(struct net *net);
void kmtls_nl_fill_result(struct kmtls_completion *res,
			  const struct genl_info *info);

#endif /* _KMTLS_H */
