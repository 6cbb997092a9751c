/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmtls - mutual TLS handshake as a kernel service
 *
 * Internal declarations shared by the files of kmtls.ko. Nothing here is
 * visible to userspace; the UAPI lives in include/uapi/linux/kmtls.h.
 */

#ifndef _KMTLS_H
#define _KMTLS_H

#include <linux/types.h>
#include <net/snmp.h>

struct ctl_table;
struct ctl_table_header;
struct net;

/*
 * Counters shown in /proc/net/kmtls_stat, one set per network namespace.
 * The *NOW entries are gauges: incremented and decremented, the per-cpu
 * parts may wrap but their sum is exact.
 */
enum kmtls_mib_field {
	KMTLS_MIB_SUBMITTED,	/* requests handed to the kernel */
	KMTLS_MIB_ACCEPTED,	/* requests taken by an agent */
	KMTLS_MIB_COMPLETED,	/* handshakes that succeeded */
	KMTLS_MIB_FAILED,	/* handshakes the agent reported failed */
	KMTLS_MIB_TIMEDOUT,	/* requests past handshake_timeout_ms */
	KMTLS_MIB_CANCELLED,	/* requests withdrawn by the submitter */
	KMTLS_MIB_AGENTLOST,	/* accepted requests failed by agent exit */
	KMTLS_MIB_PENDINGNOW,	/* gauge: queued, not yet accepted */
	KMTLS_MIB_INFLIGHTNOW,	/* gauge: accepted, not yet done */
	KMTLS_MIB_MAX
};

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

#endif /* _KMTLS_H */
