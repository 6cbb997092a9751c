// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - per-net namespace state
 *
 * Every network namespace gets a struct kmtls_net, allocated by the pernet
 * core next to the namespace. It holds the per-cpu counters behind
 * /proc/net/kmtls_stat and the values of the net.kmtls.* sysctls. A new
 * namespace starts from the defaults; it does not inherit from its parent.
 * It also holds the queue of requests waiting for an agent and the agents
 * that took requests (request.c, netlink.c).
 *
 * A namespace cannot go away while it has requests or agent sockets:
 * requests hold a reference through the /dev/kmtls file that submitted
 * them, and agents are sockets of the namespace. At module unload, agent
 * sockets may still be open: their entries are freed here.
 */

#include <linux/bug.h>
#include <linux/errno.h>
#include <linux/list.h>
#include <linux/percpu.h>
#include <linux/spinlock.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "kmtls.h"

static unsigned int kmtls_net_id __read_mostly;

/**
 * kmtls_pernet - Get the kmtls per-net structure
 * @net: network namespace
 *
 * Return: the namespace's struct kmtls_net. Valid only while the pernet
 * operations are registered, that is while the module is loaded.
 */
struct kmtls_net *kmtls_pernet(const struct net *net)
{
	return net_generic(net, kmtls_net_id);
}

static void kmtls_net_set_defaults(struct kmtls_net *kn)
{
	kn->handshake_timeout_ms = KMTLS_HANDSHAKE_TIMEOUT_MS_DEFAULT;
	kn->max_pending = KMTLS_MAX_PENDING_DEFAULT;
	kn->agent_wait_ms = KMTLS_AGENT_WAIT_MS_DEFAULT;
}

static int __net_init kmtls_net_init(struct net *net)
{
	struct kmtls_net *kn = kmtls_pernet(net);
	int ret;

	kmtls_net_set_defaults(kn);
	spin_lock_init(&kn->lock);
	INIT_LIST_HEAD(&kn->pending);
	INIT_LIST_HEAD(&kn->agents);

	kn->mib = alloc_percpu(struct kmtls_mib);
	if (!kn->mib)
		return -ENOMEM;

	ret = kmtls_sysctl_init(net);
	if (ret)
		goto out_mib;

	ret = kmtls_proc_init(net);
	if (ret)
		goto out_sysctl;

	return 0;

out_sysctl:
	kmtls_sysctl_exit(net);
out_mib:
	free_percpu(kn->mib);
	kn->mib = NULL;
	return ret;
}

static void __net_exit kmtls_net_exit(struct net *net)
{
	struct kmtls_net *kn = kmtls_pernet(net);

	WARN_ON_ONCE(!list_empty(&kn->pending));
	kmtls_nl_net_exit(kn);
	kmtls_proc_exit(net);
	kmtls_sysctl_exit(net);
	free_percpu(kn->mib);
	kn->mib = NULL;
}

static struct pernet_operations kmtls_net_ops = {
	.init	= kmtls_net_init,
	.exit	= kmtls_net_exit,
	.id	= &kmtls_net_id,
	.size	= sizeof(struct kmtls_net),
};

/**
 * kmtls_net_register - Set up kmtls in every network namespace
 *
 * Return:
 *   %0: every current and future namespace has its struct kmtls_net
 *   %-ENOMEM: out of memory (nothing remains registered)
 *   other negative errno: sysctl or proc registration failed
 */
int kmtls_net_register(void)
{
	return register_pernet_subsys(&kmtls_net_ops);
}

/**
 * kmtls_net_unregister - Tear down kmtls in every network namespace
 */
void kmtls_net_unregister(void)
{
	unregister_pernet_subsys(&kmtls_net_ops);
}
