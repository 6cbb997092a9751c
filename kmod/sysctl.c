// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - net.kmtls.* sysctls
 *
 * Each namespace registers its own copy of the table below, with .data
 * pointing into its struct kmtls_net. Out-of-range writes fail with EINVAL
 * and leave the value unchanged.
 */

#include <linux/errno.h>
#include <linux/slab.h>
#include <linux/sysctl.h>
#include <net/net_namespace.h>

#include "kmtls.h"

#define KMTLS_SYSCTL_PATH	"net/kmtls"

enum {
	KMTLS_SYSCTL_HANDSHAKE_TIMEOUT_MS,
	KMTLS_SYSCTL_MAX_PENDING,
	KMTLS_SYSCTL_AGENT_WAIT_MS,
	KMTLS_SYSCTL_COUNT
};

/* Bounds for proc_douintvec_minmax(); .extra1/.extra2 are not const */
static unsigned int kmtls_timeout_min = KMTLS_HANDSHAKE_TIMEOUT_MS_MIN;
static unsigned int kmtls_timeout_max = KMTLS_HANDSHAKE_TIMEOUT_MS_MAX;
static unsigned int kmtls_pending_min = KMTLS_MAX_PENDING_MIN;
static unsigned int kmtls_pending_max = KMTLS_MAX_PENDING_MAX;
static unsigned int kmtls_wait_min = KMTLS_AGENT_WAIT_MS_MIN;
static unsigned int kmtls_wait_max = KMTLS_AGENT_WAIT_MS_MAX;

static const struct ctl_table kmtls_sysctl_template[KMTLS_SYSCTL_COUNT + 1] = {
	[KMTLS_SYSCTL_HANDSHAKE_TIMEOUT_MS] = {
		.procname	= "handshake_timeout_ms",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= proc_douintvec_minmax,
		.extra1		= &kmtls_timeout_min,
		.extra2		= &kmtls_timeout_max,
	},
	[KMTLS_SYSCTL_MAX_PENDING] = {
		.procname	= "max_pending",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= proc_douintvec_minmax,
		.extra1		= &kmtls_pending_min,
		.extra2		= &kmtls_pending_max,
	},
	[KMTLS_SYSCTL_AGENT_WAIT_MS] = {
		.procname	= "agent_wait_ms",
		.maxlen		= sizeof(unsigned int),
		.mode		= 0644,
		.proc_handler	= proc_douintvec_minmax,
		.extra1		= &kmtls_wait_min,
		.extra2		= &kmtls_wait_max,
	},
	/*
	 * [KMTLS_SYSCTL_COUNT]: empty sentinel, which ends the table for
	 * register_net_sysctl() before 6.6. Later kernels take the size and
	 * never see it.
	 */
};

static struct ctl_table_header *kmtls_sysctl_register(struct net *net,
						      struct ctl_table *table)
{
#ifdef KMTLS_HAVE_REGISTER_NET_SYSCTL_SZ
	return register_net_sysctl_sz(net, KMTLS_SYSCTL_PATH, table,
				      KMTLS_SYSCTL_COUNT);
#else
	return register_net_sysctl(net, KMTLS_SYSCTL_PATH, table);
#endif
}

/**
 * kmtls_sysctl_init - Register net.kmtls.* in a namespace
 * @net: network namespace, its struct kmtls_net already set to defaults
 *
 * Return:
 *   %0: the sysctls exist
 *   %-ENOMEM: the table or its registration could not be allocated
 */
int __net_init kmtls_sysctl_init(struct net *net)
{
	struct kmtls_net *kn = kmtls_pernet(net);
	struct ctl_table *table;

	table = kmemdup(kmtls_sysctl_template, sizeof(kmtls_sysctl_template),
			GFP_KERNEL);
	if (!table)
		return -ENOMEM;

	table[KMTLS_SYSCTL_HANDSHAKE_TIMEOUT_MS].data = &kn->handshake_timeout_ms;
	table[KMTLS_SYSCTL_MAX_PENDING].data = &kn->max_pending;
	table[KMTLS_SYSCTL_AGENT_WAIT_MS].data = &kn->agent_wait_ms;

	kn->sysctl_hdr = kmtls_sysctl_register(net, table);
	if (!kn->sysctl_hdr) {
		kfree(table);
		return -ENOMEM;
	}
	kn->sysctl_table = table;
	return 0;
}

/**
 * kmtls_sysctl_exit - Unregister net.kmtls.* from a namespace
 * @net: network namespace
 */
void __net_exit kmtls_sysctl_exit(struct net *net)
{
	struct kmtls_net *kn = kmtls_pernet(net);

	unregister_net_sysctl_table(kn->sysctl_hdr);
	kfree(kn->sysctl_table);
	kn->sysctl_hdr = NULL;
	kn->sysctl_table = NULL;
}
