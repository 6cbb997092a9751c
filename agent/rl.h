/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The XDP ClientHello limiter (bpf/hello_limit) as a library, shared by
 * kmtlsctl ratelimit and kmtlsd's [ratelimit] section: one way to load,
 * pin, configure, attach and detach it.
 *
 * State lives in the pin directory (agent/bpffs.h), nowhere else: the maps
 * (configuration, counters, buckets, allowlist), the newest program
 * ("hello_limit") and one XDP link per interface ("hl_link_<iface>"). A
 * link is what makes an attachment ours: an XDP program on an interface
 * without our link is foreign and is only replaced when asked to. Callers
 * serialize on kmtls_pin_dir_lock(). Errors are sentences for operators.
 */
#ifndef KMTLS_RL_H
#define KMTLS_RL_H

#include <stddef.h>

#include "hello_limit.h"

struct hello_limit;

/* The pinned maps, as fds (-1 when closed). */
struct rl_maps {
	int config, stats, sources, global, allow;
};

/*
 * Open the pinned maps and check their layout against this build.
 * 0, -ENOENT when nothing is pinned yet, other -errno with @err set.
 */
int rl_maps_open(struct rl_maps *m, char *err, size_t errlen);
void rl_maps_close(struct rl_maps *m);

/*
 * Load the program with its maps pinned by name under the pin directory
 * (created, or reused with the configuration they hold), and give a fresh
 * configuration map its defaults. NULL with @err set on failure.
 */
struct hello_limit *rl_load(char *err, size_t errlen);
int rl_prog_fd(struct hello_limit *skel);
void rl_unload(struct hello_limit *skel);

/* rl_maps_open, loading the program first when nothing is pinned yet. */
int rl_maps_get(struct rl_maps *m, char *err, size_t errlen);

int rl_config_get(const struct rl_maps *m, struct hl_config *c);
/* Derive the computed fields of @c and store it. */
int rl_config_put(const struct rl_maps *m, struct hl_config *c);

/* hl_stats summed over the possible CPUs. */
int rl_stats_get(const struct rl_maps *m, struct hl_stats *s);

/* An allowlist entry and who put it there (HL_ALLOW_MANUAL or _CONFIG). */
struct rl_allow_entry {
	struct hl_lpm_key k;
	__u8 tag;
};

/* Every entry of hl_allow into *@out (malloc'd): their number, or -errno. */
long rl_allow_read(const struct rl_maps *m, struct rl_allow_entry **out);

/* "443,8443": 0, or -1 with @err set. */
int rl_parse_ports(const char *s, struct hl_config *c, char *err, size_t errlen);

/* "10.0.0.0/8", "2001:db8::/32", or a bare address: 0 or -1. */
int rl_parse_cidr(const char *s, struct hl_lpm_key *k);

/* @addr (IPv4-mapped) with @prefixlen (in the 128-bit space) as CIDR text. */
void rl_format_prefix(const __u8 addr[16], unsigned int prefixlen, char *buf, size_t len);

/* Counter names in struct hl_stats order. */
extern const char *const rl_stat_names[];
#define RL_NSTATS ((int)(sizeof(struct hl_stats) / sizeof(__u64)))

const char *rl_mode_name(__u32 mode);

/*
 * Can this process load and attach XDP programs? 0, or -1 with a sentence
 * naming the missing capabilities (CAP_BPF or CAP_SYS_ADMIN, CAP_NET_ADMIN).
 */
int rl_check_privileges(char *err, size_t errlen);

/* ---- attach / detach (rl_attach.c) ---------------------------------------- */

enum rl_xdp_mode {
	RL_XDP_AUTO,		/* native when the driver has it, else generic */
	RL_XDP_NATIVE,
	RL_XDP_SKB,
};

struct rl_attach_opts {
	enum rl_xdp_mode mode;
	int force;		/* replace a foreign XDP program */
	const char *ports;	/* written to the configuration when not NULL */
};

struct rl_attach_info {
	const char *mode;	/* "native", "skb", ... as the kernel reports it */
	__u32 prog_id, link_id;
	int already;		/* was attached by us before: nothing changed */
	__u32 replaced_id;	/* the foreign program removed (force), or 0 */
	char replaced_name[64];
};

/*
 * Attach hello_limit to @ifname and pin its link; a no-op when our link is
 * there already (then only @o->ports is applied). Returns 0, or -errno
 * with @err set: -ENODEV no such interface, -EEXIST a foreign XDP program
 * (without force), -EOPNOTSUPP the driver refused the mode.
 */
int rl_attach(const char *ifname, const struct rl_attach_opts *o,
	      struct rl_attach_info *info, char *err, size_t errlen);

/*
 * The checks of rl_attach() alone, changing nothing: 0 when rl_attach()
 * would go ahead, else its -errno and sentence (-ENODEV, -EEXIST, ...).
 * @info->replaced_name names a foreign program.
 */
int rl_attach_check(const char *ifname, const struct rl_attach_opts *o,
		    struct rl_attach_info *info, char *err, size_t errlen);

/*
 * Remove our link from @ifname (the maps stay). 0, -ENOENT when we have no
 * link there, other -errno with @err set. @link_id may be NULL.
 */
int rl_detach(const char *ifname, __u32 *link_id, char *err, size_t errlen);

/*
 * Our link on @ifname: 1 with its attach mode in @mode ("native", "skb",
 * "detached" when the interface is gone), 0 when there is none.
 */
int rl_attached(const char *ifname, const char **mode);

/* "native", "skb", "hw", "multi", "none" for XDP_ATTACHED_*. */
const char *rl_attach_mode_name(__u8 mode);

#endif
