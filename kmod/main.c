// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - mutual TLS handshake as a kernel service
 *
 * Module entry points. Each concern lives in its own file:
 *
 *   netns.c   per-net namespace state and its counters
 *   proc.c    /proc/net/kmtls_stat
 *   sysctl.c  /proc/sys/net/kmtls/
 *   dev.c     the /dev/kmtls misc device
 *
 * ORDER: per-net state comes first because everything userspace can reach
 * refers to it; the misc device comes last so that nobody can open it before
 * the rest is ready. Exit undoes the same steps in reverse.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

#include "kmtls.h"

static int __init kmtls_init(void)
{
	int ret;

	ret = kmtls_net_register();
	if (ret)
		goto out;

	ret = kmtls_dev_register();
	if (ret)
		goto out_net;

	return 0;

out_net:
	kmtls_net_unregister();
out:
	pr_err("initialization failed (%d)\n", ret);
	return ret;
}

static void __exit kmtls_exit(void)
{
	kmtls_dev_unregister();
	kmtls_net_unregister();
}

module_init(kmtls_init);
module_exit(kmtls_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kmtls developers");
MODULE_DESCRIPTION("mTLS handshake as a kernel service");
