// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - the /dev/kmtls misc device
 *
 * Applications ask for handshakes through ioctls on this device. Each open
 * file carries a small context that pins the opener's network namespace, so
 * that requests made through it are queued, bounded and counted there.
 * No command is defined yet: every ioctl fails with ENOTTY.
 */

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <net/net_namespace.h>

#include "kmtls.h"

/* Per-open context of /dev/kmtls */
struct kmtls_file {
	struct net	*kf_net;	/* opener's namespace, referenced */
};

static int kmtls_dev_open(struct inode *inode, struct file *file)
{
	struct kmtls_file *kf;

	kf = kzalloc(sizeof(*kf), GFP_KERNEL);
	if (!kf)
		return -ENOMEM;

	kf->kf_net = get_net(current->nsproxy->net_ns);
	file->private_data = kf;
	return nonseekable_open(inode, file);
}

static int kmtls_dev_release(struct inode *inode, struct file *file)
{
	struct kmtls_file *kf = file->private_data;

	put_net(kf->kf_net);
	kfree(kf);
	return 0;
}

static long kmtls_dev_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	return -ENOTTY;
}

static const struct file_operations kmtls_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= kmtls_dev_open,
	.release	= kmtls_dev_release,
	.unlocked_ioctl	= kmtls_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice kmtls_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "kmtls",
	.fops	= &kmtls_dev_fops,
	.mode	= 0666,
};

/**
 * kmtls_dev_register - Create /dev/kmtls
 *
 * Return:
 *   %0: the device exists
 *   %-EBUSY: a device named kmtls already exists
 *   other negative errno: misc_register() failed
 */
int kmtls_dev_register(void)
{
	return misc_register(&kmtls_miscdev);
}

/**
 * kmtls_dev_unregister - Remove /dev/kmtls
 */
void kmtls_dev_unregister(void)
{
	misc_deregister(&kmtls_miscdev);
}
