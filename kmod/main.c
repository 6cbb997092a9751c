// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - mutual TLS handshake as a kernel service
 *
 * Module entry points. Each concern lives in its own file:
 *
 *   netns.c    per-net namespace state and its counters
 *   proc.c     /proc/net/kmtls_stat
 *   sysctl.c   /proc/sys/net/kmtls/
 *   request.c  request lifetime: queue, deadline, exactly one completion
 *   netlink.c  generic netlink family "kmtls" (READY, ACCEPT, DONE), agents
 *   dev.c      the /dev/kmtls misc device: submit, wait, read, poll
 *   trace.c    tracepoints kmtls:* (kmtls_trace.h)
 *
 * ORDER: the request table and work queue come first, then per-net state,
 * because everything userspace can reach refers to them; then the netlink
 * family, which agents reach; the misc device comes last so that nobody
 * can submit before an agent could answer. Exit undoes the same steps in
 * reverse. Requests hold a module reference, so exit runs with none left.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <net/genetlink.h>

#include "kmtls.h"

static int __init kmtls_init(void)
{
	int ret;

	ret = kmtls_req_init();
	if (ret)
		goto out;

	ret = kmtls_net_register();
	if (ret)
		goto out_req;

	ret = kmtls_nl_register();
	if (ret)
		goto out_net;

	ret = kmtls_dev_register();
	if (ret)
		goto out_nl;

	return 0;

out_nl:
	kmtls_nl_unregister();
out_net:
	kmtls_net_unregister();
out_req:
	kmtls_req_exit();
out:
	pr_err("initialization failed (%d)\n", ret);
	return ret;
}

static void __exit kmtls_exit(void)
{
	kmtls_dev_unregister();
	kmtls_nl_unregister();
	kmtls_net_unregister();
	kmtls_req_exit();
}

module_init(kmtls_init);
module_exit(kmtls_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmtls developers");
MODULE_DESCRIPTION("mTLS handshake as a kernel service");
MODULE_ALIAS_GENL_FAMILY(KMTLS_FAMILY_NAME);
