// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - /proc/net/kmtls_stat
 *
 * One line per counter, "Name<TAB>value", summed over all possible CPUs.
 * The file is per network namespace, like /proc/net/tls_stat.
 */

#include <linux/errno.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/ip.h>
#include <net/net_namespace.h>
#include <net/snmp.h>

#include "kmtls.h"

#define KMTLS_STAT_NAME	"kmtls_stat"

static const struct snmp_mib kmtls_mib_list[] = {
	SNMP_MIB_ITEM("Submitted", KMTLS_MIB_SUBMITTED),
	SNMP_MIB_ITEM("Accepted", KMTLS_MIB_ACCEPTED),
	SNMP_MIB_ITEM("Completed", KMTLS_MIB_COMPLETED),
	SNMP_MIB_ITEM("Failed", KMTLS_MIB_FAILED),
	SNMP_MIB_ITEM("FailedAuth", KMTLS_MIB_FAILEDAUTH),
	SNMP_MIB_ITEM("FailedConn", KMTLS_MIB_FAILEDCONN),
	SNMP_MIB_ITEM("FailedProto", KMTLS_MIB_FAILEDPROTO),
	SNMP_MIB_ITEM("FailedOther", KMTLS_MIB_FAILEDOTHER),
	SNMP_MIB_ITEM("TimedOut", KMTLS_MIB_TIMEDOUT),
	SNMP_MIB_ITEM("NoAgent", KMTLS_MIB_NOAGENT),
	SNMP_MIB_ITEM("QueueFull", KMTLS_MIB_QUEUEFULL),
	SNMP_MIB_ITEM("Cancelled", KMTLS_MIB_CANCELLED),
	SNMP_MIB_ITEM("AgentLost", KMTLS_MIB_AGENTLOST),
	SNMP_MIB_ITEM("PendingNow", KMTLS_MIB_PENDINGNOW),
	SNMP_MIB_ITEM("InFlightNow", KMTLS_MIB_INFLIGHTNOW),
	SNMP_MIB_SENTINEL
};

static_assert(ARRAY_SIZE(kmtls_mib_list) == KMTLS_MIB_MAX + 1);

static int kmtls_stat_seq_show(struct seq_file *seq, void *v)
{
	unsigned long buf[KMTLS_MIB_MAX] = {};
	struct net *net = seq->private;
	int i;

	snmp_get_cpu_field_batch(buf, kmtls_mib_list, kmtls_pernet(net)->mib);
	for (i = 0; kmtls_mib_list[i].name; i++)
		seq_printf(seq, "%-32s\t%lu\n", kmtls_mib_list[i].name, buf[i]);

	return 0;
}

/**
 * kmtls_proc_init - Create /proc/net/kmtls_stat in a namespace
 * @net: network namespace
 *
 * Return:
 *   %0: the file exists
 *   %-ENOMEM: it could not be created
 */
int __net_init kmtls_proc_init(struct net *net)
{
	if (!proc_create_net_single(KMTLS_STAT_NAME, 0444, net->proc_net,
				    kmtls_stat_seq_show, NULL))
		return -ENOMEM;
	return 0;
}

/**
 * kmtls_proc_exit - Remove /proc/net/kmtls_stat from a namespace
 * @net: network namespace
 */
void __net_exit kmtls_proc_exit(struct net *net)
{
	remove_proc_entry(KMTLS_STAT_NAME, net->proc_net);
}
