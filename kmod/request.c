// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - handshake request lifetime
 *
 * A request is born in KMTLS_IOC_SUBMIT (dev.c), waits on its namespace's
 * queue (PENDING) until an agent takes it with ACCEPT (ACCEPTED), and ends
 * with exactly one completion, whichever comes first of:
 *
 *   DONE from the agent that accepted it       netlink.c
 *   its deadline, or no agent for too long     kr_work, below
 *   close of the submitter's /dev/kmtls file   dev.c
 *   release of the accepting agent's socket    netlink.c
 *
 * EXACTLY ONCE: every path calls kmtls_req_complete(), and only the caller
 * that sets KMTLS_REQ_F_COMPLETED goes on. The winner unlinks the request
 * (state DONE under kmtls_net.lock, after which nobody links or arms it
 * again), stops kr_work, shuts the socket down if the request failed after
 * an agent had it, drops the socket and hands the result to the submitter.
 *
 * LOOKUP: DONE names the request by a socket, so requests sit in one global
 * rhashtable keyed by struct sock, from submission to completion. That
 * table also refuses a second request for the same socket. Lookups run
 * under RCU and take a reference; requests are freed after a grace period.
 *
 * LOCKING: kmtls_net.lock (a spinlock; every caller is in process context)
 * protects the queue, the agents and the request fields named in struct
 * kmtls_net. It nests inside nothing and nothing sleeps under it. The
 * submitter's lists have their own lock in dev.c, never taken together
 * with this one.
 *
 * MODULE: each request holds a module reference from allocation to free.
 * kr_work runs on kmtls_wq, which module exit destroys, so the last
 * module_put() may come from the work itself.
 */

#include <linux/cred.h>
#include <linux/file.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/pid.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sock_diag.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "kmtls.h"
#include "kmtls_trace.h"

static struct workqueue_struct *kmtls_wq;
static struct rhashtable kmtls_req_table;
static atomic64_t kmtls_req_ids = ATOMIC64_INIT(0);

static const struct rhashtable_params kmtls_req_params = {
	.key_len		= sizeof_field(struct kmtls_req, kr_sk),
	.key_offset		= offsetof(struct kmtls_req, kr_sk),
	.head_offset		= offsetof(struct kmtls_req, kr_rhash),
	.automatic_shrinking	= true,
};

static void kmtls_req_expire(struct work_struct *work);

/**
 * kmtls_req_init - Set up the request table and work queue
 *
 * Return:
 *   %0: ready
 *   %-ENOMEM: out of memory
 */
int kmtls_req_init(void)
{
	int ret;

	kmtls_wq = alloc_workqueue("kmtls", WQ_UNBOUND, 0);
	if (!kmtls_wq)
		return -ENOMEM;

	ret = rhashtable_init(&kmtls_req_table, &kmtls_req_params);
	if (ret)
		destroy_workqueue(kmtls_wq);
	return ret;
}

/**
 * kmtls_req_exit - Tear down the request table and work queue
 *
 * No request exists any more (each holds a module reference); this waits
 * for a work item that dropped the last one to return.
 */
void kmtls_req_exit(void)
{
	destroy_workqueue(kmtls_wq);
	rhashtable_destroy(&kmtls_req_table);
}

static void kmtls_req_free(struct kmtls_req *req)
{
	if (req->kr_file)
		fput(req->kr_file);
	put_pid(req->kr_pid);
	put_cred(req->kr_cred);
	kmtls_file_put(req->kr_kf);
	kfree_rcu(req, kr_rcu);
	module_put(THIS_MODULE);
}

/**
 * kmtls_req_put - Drop a reference to a request
 * @req: request
 */
void kmtls_req_put(struct kmtls_req *req)
{
	if (refcount_dec_and_test(&req->kr_ref))
		kmtls_req_free(req);
}

static unsigned int kmtls_req_timeout_ms(struct kmtls_net *kn,
					 const struct kmtls_submit *sub)
{
	unsigned int max = READ_ONCE(kn->handshake_timeout_ms);

	if (!sub->timeout_ms || sub->timeout_ms > max)
		return max;
	return sub->timeout_ms;
}

static void kmtls_req_init_result(struct kmtls_req *req,
				  const struct kmtls_submit *sub)
{
	struct kmtls_completion *res = &req->kr_result;
	u32 cookie[2];

	sock_diag_save_cookie(req->kr_sk, cookie);
	res->size = sizeof(*res);
	res->id = atomic64_inc_return(&kmtls_req_ids);
	res->user_data = sub->user_data;
	res->sock_cookie = (u64)cookie[1] << 32 | cookie[0];
}

/**
 * kmtls_req_alloc - Allocate a request for a socket
 * @kf: the submitter's file context (a reference is taken)
 * @net: namespace to queue the request in
 * @sock: the socket, already checked by the caller
 * @sub: the validated submission
 *
 * The request holds references to @kf, the socket's file, the calling
 * process and its credentials, and the module. The caller owns the one
 * reference returned and drops it with kmtls_req_put().
 *
 * Return: the new request, or NULL when out of memory.
 */
struct kmtls_req *kmtls_req_alloc(struct kmtls_file *kf, struct net *net,
				  struct socket *sock,
				  const struct kmtls_submit *sub)
{
	unsigned int timeout_ms = kmtls_req_timeout_ms(kmtls_pernet(net), sub);
	struct kmtls_req *req;

	req = kzalloc(sizeof(*req), GFP_KERNEL_ACCOUNT);
	if (!req)
		return NULL;

	__module_get(THIS_MODULE);
	refcount_set(&req->kr_ref, 1);
	INIT_LIST_HEAD(&req->kr_list);
	INIT_LIST_HEAD(&req->kr_file_list);
	INIT_DELAYED_WORK(&req->kr_work, kmtls_req_expire);
	req->kr_state = KMTLS_REQ_NEW;
	req->kr_net = net;
	kmtls_file_get(kf);
	req->kr_kf = kf;
	req->kr_file = get_file(sock->file);
	req->kr_sock = sock;
	req->kr_sk = sock->sk;
	req->kr_pid = get_task_pid(current, PIDTYPE_TGID);
	req->kr_cred = get_current_cred();
	req->kr_role = sub->role;
	req->kr_start_ns = ktime_get_ns();
	req->kr_deadline = jiffies + msecs_to_jiffies(timeout_ms);
	strscpy(req->kr_peer_name, sub->peer_name, sizeof(req->kr_peer_name));
	strscpy(req->kr_profile, sub->profile, sizeof(req->kr_profile));
	kmtls_req_init_result(req, sub);
	return req;
}

/* The earlier of two jiffies values */
static unsigned long kmtls_earlier(unsigned long a, unsigned long b)
{
	return time_before(a, b) ? a : b;
}

/* Caller holds kmtls_net.lock; the request is not DONE */
static void kmtls_req_arm_locked(struct kmtls_req *req, unsigned long expires)
{
	unsigned long now = jiffies;

	req->kr_expires = expires;
	mod_delayed_work(kmtls_wq, &req->kr_work,
			 time_after(expires, now) ? expires - now : 0);
}

/* Where a request waits when no agent is around: the agent wait, if shorter */
static unsigned long kmtls_req_wait_expiry(struct kmtls_net *kn,
					   struct kmtls_req *req)
{
	unsigned long wait = msecs_to_jiffies(READ_ONCE(kn->agent_wait_ms));

	return kmtls_earlier(req->kr_deadline, jiffies + wait);
}

/* Queue @req; *tracked tells whether an agent has sent ACCEPT */
static int kmtls_req_enqueue(struct kmtls_net *kn, struct kmtls_req *req,
			     bool *tracked)
{
	int ret = -EAGAIN;

	spin_lock(&kn->lock);
	if (kn->nr_pending >= READ_ONCE(kn->max_pending))
		goto out_unlock;

	refcount_inc(&req->kr_ref);	/* the submitter's, until completion */
	list_add_tail(&req->kr_list, &kn->pending);
	kn->nr_pending++;
	KMTLS_INC_STATS(req->kr_net, KMTLS_MIB_PENDINGNOW);
	req->kr_state = KMTLS_REQ_PENDING;
	kmtls_req_arm_locked(req, req->kr_deadline);
	*tracked = kmtls_agent_tracked(kn);
	ret = 0;
out_unlock:
	spin_unlock(&kn->lock);
	return ret;
}

/* Caller holds kmtls_net.lock; the request is PENDING */
static void kmtls_req_unlink_pending_locked(struct kmtls_net *kn,
					    struct kmtls_req *req)
{
	list_del_init(&req->kr_list);
	kn->nr_pending--;
	KMTLS_DEC_STATS(req->kr_net, KMTLS_MIB_PENDINGNOW);
	req->kr_state = KMTLS_REQ_DONE;
}

/*
 * Take back a request nobody may wait for. Returns -ESRCH if it was still
 * queued: it is gone, and no completion follows. Returns 0 if an agent was
 * quicker: it goes on as submitted.
 */
static int kmtls_req_withdraw(struct kmtls_net *kn, struct kmtls_req *req)
{
	bool withdrawn = false;

	spin_lock(&kn->lock);
	if (req->kr_state == KMTLS_REQ_PENDING &&
	    !test_and_set_bit(KMTLS_REQ_F_COMPLETED, &req->kr_flags)) {
		kmtls_req_unlink_pending_locked(kn, req);
		withdrawn = true;
	}
	spin_unlock(&kn->lock);
	if (!withdrawn)
		return 0;

	cancel_delayed_work_sync(&req->kr_work);
	refcount_dec(&req->kr_ref);	/* the caller still holds one */
	return -ESRCH;
}

/*
 * Nobody listens in the namespace, and no agent polls with ACCEPT: fail at
 * once when agent_wait_ms is 0, else wait at most that long.
 */
static int kmtls_req_no_agent(struct kmtls_net *kn, struct kmtls_req *req)
{
	if (!READ_ONCE(kn->agent_wait_ms))
		return kmtls_req_withdraw(kn, req);

	spin_lock(&kn->lock);
	if (req->kr_state == KMTLS_REQ_PENDING)
		kmtls_req_arm_locked(req, kmtls_req_wait_expiry(kn, req));
	spin_unlock(&kn->lock);
	return 0;
}

/**
 * kmtls_req_submit - Queue a request and tell the agents
 * @req: a new request from kmtls_req_alloc()
 *
 * On success exactly one kmtls_req_complete() follows, and the request is
 * delivered to its submitter's file. On failure nothing was queued and no
 * completion follows; the caller still owns its reference.
 *
 * Return:
 *   %0: queued
 *   %-EBUSY: a request for this socket is outstanding
 *   %-ESRCH: no agent listens and net.kmtls.agent_wait_ms is 0
 *   %-EAGAIN: net.kmtls.max_pending requests are queued already
 *   %-ENOMEM: out of memory (table growth)
 */
int kmtls_req_submit(struct kmtls_req *req)
{
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);
	bool tracked;
	int ret;

	ret = rhashtable_lookup_insert_fast(&kmtls_req_table, &req->kr_rhash,
					    kmtls_req_params);
	if (ret)
		return ret == -EEXIST ? -EBUSY : ret;

	KMTLS_INC_STATS(req->kr_net, KMTLS_MIB_SUBMITTED);
	ret = kmtls_req_enqueue(kn, req, &tracked);
	if (!ret && kmtls_nl_notify_ready(req->kr_net) == -ESRCH && !tracked)
		ret = kmtls_req_no_agent(kn, req);
	trace_kmtls_submit(req, ret);
	if (ret)
		goto out_remove;
	return 0;

out_remove:
	rhashtable_remove_fast(&kmtls_req_table, &req->kr_rhash,
			       kmtls_req_params);
	KMTLS_INC_STATS(req->kr_net, ret == -ESRCH ? KMTLS_MIB_NOAGENT :
						     KMTLS_MIB_QUEUEFULL);
	return ret;
}

/**
 * kmtls_req_lookup - Find the outstanding request for a socket
 * @sk: the socket
 *
 * Return: the request with a reference the caller drops with
 * kmtls_req_put(), or NULL when the socket has no outstanding request.
 */
struct kmtls_req *kmtls_req_lookup(const struct sock *sk)
{
	struct kmtls_req *req;

	rcu_read_lock();
	req = rhashtable_lookup(&kmtls_req_table, &sk, kmtls_req_params);
	if (req && !refcount_inc_not_zero(&req->kr_ref))
		req = NULL;
	rcu_read_unlock();
	return req;
}

/**
 * kmtls_req_owned_by - Is a request accepted by a given agent?
 * @req: request
 * @net: the agent's namespace
 * @agent: the agent's netlink socket
 *
 * Return: true when @req is in flight, in @net, accepted by @agent.
 */
bool kmtls_req_owned_by(struct kmtls_req *req, const struct net *net,
			const struct sock *agent)
{
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);
	bool ret;

	if (!net_eq(req->kr_net, net))
		return false;

	spin_lock(&kn->lock);
	ret = req->kr_state == KMTLS_REQ_ACCEPTED && req->kr_agent == agent;
	spin_unlock(&kn->lock);
	return ret;
}

/**
 * kmtls_req_next - Hand the oldest queued request to an agent
 * @kn: the agent's namespace
 * @ka: the agent; stays valid while its socket sends this ACCEPT
 * @filep: on success, a new reference to the socket's file
 *
 * Return: the request, moved to @ka and referenced for the caller, or NULL
 * when nothing is queued.
 */
struct kmtls_req *kmtls_req_next(struct kmtls_net *kn,
				 struct kmtls_agent *ka, struct file **filep)
{
	struct kmtls_req *req, *found = NULL;

	spin_lock(&kn->lock);
	list_for_each_entry(req, &kn->pending, kr_list) {
		if (test_bit(KMTLS_REQ_F_COMPLETED, &req->kr_flags))
			continue;	/* its completer unlinks it */
		list_move_tail(&req->kr_list, &ka->ka_accepted);
		kn->nr_pending--;
		KMTLS_DEC_STATS(req->kr_net, KMTLS_MIB_PENDINGNOW);
		KMTLS_INC_STATS(req->kr_net, KMTLS_MIB_INFLIGHTNOW);
		req->kr_state = KMTLS_REQ_ACCEPTED;
		req->kr_agent = ka->ka_sk;
		req->kr_portid = ka->ka_portid;
		refcount_inc(&req->kr_ref);
		*filep = get_file(req->kr_file);
		found = req;
		break;
	}
	spin_unlock(&kn->lock);
	return found;
}

/**
 * kmtls_req_requeue - Put back a request an agent could not take
 * @req: request from kmtls_req_next()
 *
 * The request goes back to the head of the queue, unless it completed in
 * the meantime.
 */
void kmtls_req_requeue(struct kmtls_req *req)
{
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);

	spin_lock(&kn->lock);
	if (req->kr_state == KMTLS_REQ_ACCEPTED) {
		list_move(&req->kr_list, &kn->pending);
		kn->nr_pending++;
		KMTLS_DEC_STATS(req->kr_net, KMTLS_MIB_INFLIGHTNOW);
		KMTLS_INC_STATS(req->kr_net, KMTLS_MIB_PENDINGNOW);
		req->kr_state = KMTLS_REQ_PENDING;
		req->kr_agent = NULL;
		req->kr_portid = 0;
	}
	spin_unlock(&kn->lock);
}

/* Take a request off every list of its namespace; returns the old state */
static enum kmtls_req_state kmtls_req_unlink(struct kmtls_req *req)
{
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);
	enum kmtls_req_state was;

	spin_lock(&kn->lock);
	was = req->kr_state;
	if (was == KMTLS_REQ_PENDING) {
		kmtls_req_unlink_pending_locked(kn, req);
	} else {
		list_del_init(&req->kr_list);
		if (was == KMTLS_REQ_ACCEPTED)
			KMTLS_DEC_STATS(req->kr_net, KMTLS_MIB_INFLIGHTNOW);
		req->kr_state = KMTLS_REQ_DONE;
	}
	spin_unlock(&kn->lock);
	return was;
}

/* The counter for a failure the agent reported */
static enum kmtls_mib_field kmtls_failure_class(int status)
{
	switch (-status) {
	case EACCES:
	case EPERM:
	case EKEYREJECTED:
	case EKEYEXPIRED:
	case EKEYREVOKED:
	case ENOKEY:
		return KMTLS_MIB_FAILEDAUTH;
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EPIPE:
	case ENOTCONN:
	case ESHUTDOWN:
	case ETIMEDOUT:
		return KMTLS_MIB_FAILEDCONN;
	case EPROTO:
	case EBADMSG:
	case EPROTONOSUPPORT:
	case EOPNOTSUPP:
	case EMSGSIZE:
		return KMTLS_MIB_FAILEDPROTO;
	default:
		return KMTLS_MIB_FAILEDOTHER;
	}
}

static void kmtls_req_count(struct kmtls_req *req, int status,
			    enum kmtls_how how)
{
	struct net *net = req->kr_net;

	switch (how) {
	case KMTLS_HOW_DONE:
		if (status) {
			KMTLS_INC_STATS(net, KMTLS_MIB_FAILED);
			KMTLS_INC_STATS(net, kmtls_failure_class(status));
		} else {
			KMTLS_INC_STATS(net, KMTLS_MIB_COMPLETED);
		}
		trace_kmtls_done(req, status);
		break;
	case KMTLS_HOW_TIMEOUT:
		KMTLS_INC_STATS(net, KMTLS_MIB_TIMEDOUT);
		trace_kmtls_timeout(req, status);
		break;
	case KMTLS_HOW_NOAGENT:
		KMTLS_INC_STATS(net, KMTLS_MIB_NOAGENT);
		trace_kmtls_timeout(req, status);
		break;
	case KMTLS_HOW_CANCEL:
		KMTLS_INC_STATS(net, KMTLS_MIB_CANCELLED);
		trace_kmtls_cancel(req, status);
		break;
	case KMTLS_HOW_AGENTLOST:
		KMTLS_INC_STATS(net, KMTLS_MIB_AGENTLOST);
		trace_kmtls_agent_lost(req, status);
		break;
	}
}

static void kmtls_req_set_result(struct kmtls_req *req, int status,
				 const struct genl_info *info)
{
	struct kmtls_completion *res = &req->kr_result;

	res->status = status;
	res->elapsed_ns = ktime_get_ns() - req->kr_start_ns;
	if (!status && info)
		kmtls_nl_fill_result(res, info);
}

/* The rest of a completion, after its winner has unlinked the request */
static void kmtls_req_finish(struct kmtls_req *req, enum kmtls_req_state was,
			     int status, enum kmtls_how how,
			     const struct genl_info *info)
{
	struct file *file;

	rhashtable_remove_fast(&kmtls_req_table, &req->kr_rhash,
			       kmtls_req_params);
	if (how == KMTLS_HOW_TIMEOUT || how == KMTLS_HOW_NOAGENT)
		cancel_delayed_work(&req->kr_work);	/* we are kr_work */
	else
		cancel_delayed_work_sync(&req->kr_work);

	kmtls_req_set_result(req, status, info);
	if (status && was == KMTLS_REQ_ACCEPTED) {
		kernel_sock_shutdown(req->kr_sock, SHUT_RDWR);
		req->kr_result.flags |= KMTLS_COMPLETION_F_SHUTDOWN;
	}
	kmtls_req_count(req, status, how);

	file = req->kr_file;
	req->kr_file = NULL;
	req->kr_sock = NULL;
	fput(file);

	kmtls_file_deliver(req->kr_kf, req);	/* takes the submitter's ref */
}

/**
 * kmtls_req_complete - Complete a request, once
 * @req: request, referenced by the caller
 * @status: 0 or a negative errno
 * @how: who completes it; %KMTLS_HOW_TIMEOUT and %KMTLS_HOW_NOAGENT only
 *	from @req's own kr_work
 * @info: DONE's attributes, for the peer identity on success; or NULL
 *
 * The first caller wins: it unlinks the request, stops its work, shuts the
 * socket down when the request failed after an agent had taken it, drops
 * the socket, counts, traces and delivers the result to the submitter.
 * Later callers do nothing. Process context; sleeps.
 *
 * Return: true if this call completed the request, false if another did.
 */
bool kmtls_req_complete(struct kmtls_req *req, int status,
			enum kmtls_how how, const struct genl_info *info)
{
	enum kmtls_req_state was;

	if (test_and_set_bit(KMTLS_REQ_F_COMPLETED, &req->kr_flags))
		return false;

	was = kmtls_req_unlink(req);
	kmtls_req_finish(req, was, status, how, info);
	return true;
}

/* Complete a request only while it is queued (no agent has its socket) */
static bool kmtls_req_complete_pending(struct kmtls_req *req, int status,
				       enum kmtls_how how)
{
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);
	bool won = false;

	spin_lock(&kn->lock);
	if (req->kr_state == KMTLS_REQ_PENDING &&
	    !test_and_set_bit(KMTLS_REQ_F_COMPLETED, &req->kr_flags)) {
		kmtls_req_unlink_pending_locked(kn, req);
		won = true;
	}
	spin_unlock(&kn->lock);

	if (won)
		kmtls_req_finish(req, KMTLS_REQ_PENDING, status, how, NULL);
	return won;
}

/* Wait for the deadline, unless the request completed meanwhile */
static void kmtls_req_rearm(struct kmtls_net *kn, struct kmtls_req *req)
{
	spin_lock(&kn->lock);
	if (req->kr_state != KMTLS_REQ_DONE)
		kmtls_req_arm_locked(req, req->kr_deadline);
	spin_unlock(&kn->lock);
}

/*
 * The agent wait of a queued request expired before its deadline: an agent
 * that is around now is told again and the request waits for the
 * deadline; with none, the request fails with ESRCH.
 */
static void kmtls_req_agent_wait_expired(struct kmtls_net *kn,
					 struct kmtls_req *req, bool tracked)
{
	if (tracked || kmtls_nl_notify_ready(req->kr_net) != -ESRCH) {
		kmtls_req_rearm(kn, req);
		return;
	}
	if (!kmtls_req_complete_pending(req, -ESRCH, KMTLS_HOW_NOAGENT))
		kmtls_req_rearm(kn, req);	/* an agent took it */
}

/* kr_work: due at the deadline, or earlier while no agent is around */
static void kmtls_req_expire(struct work_struct *work)
{
	struct kmtls_req *req = container_of(to_delayed_work(work),
					     struct kmtls_req, kr_work);
	struct kmtls_net *kn = kmtls_pernet(req->kr_net);
	enum kmtls_req_state state;
	bool tracked, due;

	spin_lock(&kn->lock);
	state = req->kr_state;
	due = !time_before(jiffies, req->kr_deadline);
	tracked = kmtls_agent_tracked(kn);
	if (!due && state == KMTLS_REQ_ACCEPTED)
		kmtls_req_arm_locked(req, req->kr_deadline);
	spin_unlock(&kn->lock);

	if (state == KMTLS_REQ_DONE || (!due && state == KMTLS_REQ_ACCEPTED))
		return;
	if (due)
		kmtls_req_complete(req, -ETIMEDOUT, KMTLS_HOW_TIMEOUT, NULL);
	else
		kmtls_req_agent_wait_expired(kn, req, tracked);
}

/* Pop the first request off a private list, referenced; under kn->lock */
static struct kmtls_req *kmtls_req_pop(struct kmtls_net *kn,
				       struct list_head *list)
{
	struct kmtls_req *req;

	spin_lock(&kn->lock);
	req = list_first_entry_or_null(list, struct kmtls_req, kr_list);
	if (req) {
		list_del_init(&req->kr_list);
		refcount_inc(&req->kr_ref);
	}
	spin_unlock(&kn->lock);
	return req;
}

/**
 * kmtls_req_agent_lost - Fail the requests of an agent that went away
 * @kn: the agent's namespace
 * @ka: the agent, already removed from @kn's list; the caller frees it
 *
 * Each request the agent accepted completes with -ECONNABORTED and its
 * socket is shut down.
 */
void kmtls_req_agent_lost(struct kmtls_net *kn, struct kmtls_agent *ka)
{
	struct kmtls_req *req;
	LIST_HEAD(lost);

	spin_lock(&kn->lock);
	list_splice_init(&ka->ka_accepted, &lost);
	spin_unlock(&kn->lock);

	while ((req = kmtls_req_pop(kn, &lost))) {
		kmtls_req_complete(req, -ECONNABORTED, KMTLS_HOW_AGENTLOST, NULL);
		kmtls_req_put(req);
	}
}

/**
 * kmtls_req_agent_gone - Re-evaluate the queue after a netlink socket closed
 * @net: namespace
 * @kn: its kmtls state
 *
 * Queued requests are announced again to the agents still listening. When
 * no agent is left, each may wait at most net.kmtls.agent_wait_ms more for
 * the next one.
 */
void kmtls_req_agent_gone(struct net *net, struct kmtls_net *kn)
{
	struct kmtls_req *req;
	unsigned long expires;
	bool queued, tracked;

	spin_lock(&kn->lock);
	queued = !list_empty(&kn->pending);
	tracked = kmtls_agent_tracked(kn);
	spin_unlock(&kn->lock);

	if (!queued || kmtls_nl_notify_ready(net) != -ESRCH || tracked)
		return;

	spin_lock(&kn->lock);
	list_for_each_entry(req, &kn->pending, kr_list) {
		expires = kmtls_req_wait_expiry(kn, req);
		if (time_before(expires, req->kr_expires))
			kmtls_req_arm_locked(req, expires);
	}
	spin_unlock(&kn->lock);
}
