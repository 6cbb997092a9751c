// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's [ratelimit] section: the XDP ClientHello limiter (bpf/hello_limit)
 * attached and configured by kmtlsd through the library kmtlsctl ratelimit
 * uses (agent/rl.h), so both see and change the same pins.
 *
 * The section is applied at start and on every SIGHUP:
 *  - each key given is written to the pinned configuration; a key left out
 *    keeps the pinned value (`kmtlsctl ratelimit set` may own it);
 *  - interfaces are attached; those the previous reading listed and this
 *    one does not are detached. allow likewise: the prefixes listed are
 *    added, those dropped from the list since the previous reading are
 *    deleted. Attachments and prefixes made with kmtlsctl are left alone;
 *  - nothing is undone when kmtlsd exits: the limiter keeps protecting the
 *    host while kmtlsd restarts, and the next kmtlsd finds its pins.
 *
 * Everything that can be checked is checked before anything changes (the
 * section's syntax, privileges, bpffs, that every interface exists and runs
 * no foreign XDP program unless force = yes), so a bad section is refused
 * at start and, on reload, keeps the previous settings.
 *
 * Reloads run in a helper process forked at start, before kmtlsd binds a
 * socket or loads a key, and before the sandbox: once sandboxed kmtlsd has
 * no bpf(2), and after `user` no capabilities. The helper keeps the
 * privileges kmtlsd started with; all it takes from kmtlsd is a byte on a
 * socketpair meaning "reload" (it reads the config file itself), and it
 * answers with a byte when done. It exits when kmtlsd's end closes.
 */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bpffs.h"
#include "errmsg.h"
#include "log.h"
#include "notify.h"
#include "ratelimit.h"
#include "rl.h"

/*
 * How long a reload waits for the helper. The wait pings systemd's
 * watchdog, but SIGTERM waits behind a reload too: well below the
 * shipped unit's WatchdogSec=30s and TimeoutStopSec.
 */
#define RELOAD_WAIT_MS	10000

static int helper_fd = -1;
static int helper_gone;	/* it was started and exited: changes cannot apply */
static int owed;	/* answers the helper owes: this reload's and late ones */

/* @k among the prefixes of @l (as keys: "192.0.2.1" is "192.0.2.1/32"). */
static int has_prefix(const struct kmtls_strlist *l, const struct hl_lpm_key *k)
{
	struct hl_lpm_key o;
	int i;

	for (i = 0; i < l->n; i++)
		if (!rl_parse_cidr(l->v[i], &o) && !memcmp(&o, k, sizeof(o)))
			return 1;
	return 0;
}

int kmtls_ratelimit_check(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	const struct kmtls_ratelimit_conf *r = &cfg->ratelimit;
	struct hl_lpm_key k;
	struct hl_config c;
	char why[128];
	int i;

	if (!r->present)
		return 0;
	if (r->ports && rl_parse_ports(r->ports, &c, why, sizeof(why)))
		return kmtls_fail(err, errlen, "[ratelimit] ports = \"%s\": %s", r->ports, why);
	for (i = 0; i < r->allow.n; i++)
		if (rl_parse_cidr(r->allow.v[i], &k))
			return kmtls_fail(err, errlen, "[ratelimit] allow: \"%s\" is not a prefix: expected e.g. 192.0.2.0/24, 2001:db8::/48 or an address",
					  r->allow.v[i]);
	if (r->allow.n > HL_MAX_ALLOW)
		return kmtls_fail(err, errlen, "[ratelimit] allow: %d prefixes, at most %d fit",
				  r->allow.n, HL_MAX_ALLOW);
	for (i = 0; i < r->interfaces.n; i++)
		if (strlen(r->interfaces.v[i]) >= IF_NAMESIZE || strchr(r->interfaces.v[i], '/'))
			return kmtls_fail(err, errlen, "[ratelimit] interfaces: \"%s\" is not an interface name (at most %d characters, no '/')",
					  r->interfaces.v[i], IF_NAMESIZE - 1);
	return 0;
}

/* The keys the section gives, over the pinned configuration @c. */
static void settings(const struct kmtls_ratelimit_conf *r, struct hl_config *c)
{
	char why[128];

	if (r->ports)
		rl_parse_ports(r->ports, c, why, sizeof(why));	/* checked at load */
	if (r->mode >= 0)
		c->mode = (__u32)r->mode;
	/* As `kmtlsctl ratelimit set --rate`: a limit needs a burst of at least 1. */
	if (r->rate != KMTLS_RL_KEEP) {
		c->rate = r->rate;
		if (r->burst == KMTLS_RL_KEEP && c->rate && !c->burst)
			c->burst = c->rate;
	}
	if (r->burst != KMTLS_RL_KEEP)
		c->burst = r->burst;
	if (r->global_rate != KMTLS_RL_KEEP) {
		c->global_rate = r->global_rate;
		if (r->global_burst == KMTLS_RL_KEEP && c->global_rate && !c->global_burst)
			c->global_burst = c->global_rate;
	}
	if (r->global_burst != KMTLS_RL_KEEP)
		c->global_burst = r->global_burst;
	if (r->prefix4 != KMTLS_RL_KEEP)
		c->prefix4 = r->prefix4;
	if (r->prefix6 != KMTLS_RL_KEEP)
		c->prefix6 = r->prefix6;
}

/*
 * The allowlist: @r's prefixes in, and out every prefix an earlier
 * [ratelimit] put there (HL_ALLOW_CONFIG) that @r no longer lists, at
 * start as on a reload (the pinned map outlives kmtlsd); an operator's
 * kmtlsctl entries stay, also when the section lists them too.
 */
static int apply_allow(const struct rl_maps *m, const struct kmtls_ratelimit_conf *r,
		       char *err, size_t errlen)
{
	struct rl_allow_entry *have;
	struct hl_lpm_key k;
	__u8 tag = HL_ALLOW_CONFIG;
	long n = rl_allow_read(m, &have), j;
	char buf[64];
	int i, ret = 0;

	if (n < 0)
		return kmtls_fail(err, errlen, "[ratelimit] allow: cannot read the allowlist: %s",
				  strerror((int)-n));
	for (i = 0; i < r->allow.n && !ret; i++) {
		rl_parse_cidr(r->allow.v[i], &k);
		for (j = 0; j < n && memcmp(&have[j].k, &k, sizeof(k)); j++)
			;
		if (j < n && have[j].tag != HL_ALLOW_CONFIG)
			continue;	/* the operator's: leave it theirs */
		if (bpf_map_update_elem(m->allow, &k, &tag, BPF_ANY))
			ret = kmtls_fail(err, errlen, "[ratelimit] allow: cannot add %s: %s%s",
					 r->allow.v[i], strerror(errno), errno == ENOSPC ?
					 " (the allowlist is full: kmtlsctl ratelimit allow list)" : "");
	}
	for (j = 0; j < n && !ret; j++) {
		if (have[j].tag != HL_ALLOW_CONFIG || has_prefix(&r->allow, &have[j].k))
			continue;
		rl_format_prefix(have[j].k.addr, have[j].k.prefixlen, buf, sizeof(buf));
		if (bpf_map_delete_elem(m->allow, &have[j].k) && errno != ENOENT)
			ret = kmtls_fail(err, errlen, "[ratelimit] allow: cannot delete %s: %s",
					 buf, strerror(errno));
		else
			log_info("ratelimit: %s is no longer allowlisted", buf);
	}
	free(have);
	return ret;
}

static const char *const xdp_names[] = {
	[KMTLS_XDP_AUTO] = "auto", [KMTLS_XDP_NATIVE] = "native", [KMTLS_XDP_SKB] = "skb",
};

static struct rl_attach_opts attach_opts(const struct kmtls_ratelimit_conf *r)
{
	return (struct rl_attach_opts){
		.mode = r->xdp_mode == KMTLS_XDP_NATIVE ? RL_XDP_NATIVE :
			r->xdp_mode == KMTLS_XDP_SKB ? RL_XDP_SKB : RL_XDP_AUTO,
		.force = r->force,
	};
}

/* rl_attach*()'s sentence in the section's words. */
static int attach_fail(int ret, const char *ifname, const struct rl_attach_info *info,
		       const char *why, char *err, size_t errlen)
{
	if (ret == -EEXIST && info->replaced_name[0])
		return kmtls_fail(err, errlen, "[ratelimit] interfaces: %s: force = yes replaces it (or remove it: ip link set dev %s xdp off)",
				  why, ifname);
	if (ret == -EOPNOTSUPP)
		return kmtls_fail(err, errlen, "[ratelimit] interfaces: %s (no native XDP in this driver? xdp-mode = skb)",
				  why);
	return kmtls_fail(err, errlen, "[ratelimit] interfaces: %s", why);
}

static int attach_one(const char *ifname, const struct kmtls_ratelimit_conf *r,
		      char *err, size_t errlen)
{
	struct rl_attach_opts o = attach_opts(r);
	struct rl_attach_info info;
	const char *mode, *want = xdp_names[r->xdp_mode];
	char why[512];
	int ret;

	/* Attached in the other XDP mode: the mode only changes on a new link. */
	if (o.mode != RL_XDP_AUTO && rl_attached(ifname, &mode) && strcmp(mode, want) &&
	    strcmp(mode, "detached")) {
		if (rl_detach(ifname, NULL, why, sizeof(why)))
			return kmtls_fail(err, errlen, "[ratelimit] interfaces: %s", why);
		log_info("ratelimit: %s: moving hello_limit from %s to %s XDP", ifname, mode, want);
	}
	ret = rl_attach(ifname, &o, &info, why, sizeof(why));
	if (ret)
		return attach_fail(ret, ifname, &info, why, err, errlen);
	if (info.replaced_id)
		log_warn("ratelimit: removed XDP program '%s' (id %u) from %s (force = yes)",
			 info.replaced_name, info.replaced_id, ifname);
	if (!info.already)
		log_info("ratelimit: hello_limit attached to %s (%s XDP, prog %u, link %u)",
			 ifname, info.mode, info.prog_id, info.link_id);
	return 0;
}

static void detach_one(const char *ifname)
{
	char why[512];
	int ret = rl_detach(ifname, NULL, why, sizeof(why));

	if (!ret)
		log_info("ratelimit: hello_limit detached from %s (no longer in interfaces)", ifname);
	else if (ret != -ENOENT)	/* gone already: kmtlsctl ratelimit detach */
		log_err("ratelimit: %s", why);
}

static void log_settings(const struct hl_config *c, const struct kmtls_ratelimit_conf *r)
{
	char ports[HL_MAX_PORTS * 6 + 1] = "", src[64] = "no limit", all[64] = "no limit";
	size_t n = 0;
	__u32 i;

	for (i = 0; i < c->nports && i < HL_MAX_PORTS; i++)
		n += snprintf(ports + n, sizeof(ports) - n, "%s%u", i ? "," : "", c->ports[i]);
	if (c->rate)
		snprintf(src, sizeof(src), "%u/s burst %u", c->rate, c->burst);
	if (c->global_rate)
		snprintf(all, sizeof(all), "%u/s burst %u", c->global_rate, c->global_burst);
	log_info("ratelimit: %s, ports %s, per source %s (IPv4 /%u, IPv6 /%u), global %s; %d interface(s), %d allowlisted prefix(es) from [ratelimit]; pins in %s",
		 rl_mode_name(c->mode), ports, src, c->prefix4, c->prefix6, all,
		 r->interfaces.n, r->allow.n, kmtls_pin_dir());
}

/* Checks first, then settings, allowlist, interfaces. @old: NULL at start. */
static int apply(const struct kmtls_ratelimit_conf *old, const struct kmtls_ratelimit_conf *r,
		 char *err, size_t errlen)
{
	struct hl_config c;
	struct rl_maps m;
	int i, lock, ret;

	if (!r->present) {
		for (i = 0; old && old->present && i < old->interfaces.n; i++)
			detach_one(old->interfaces.v[i]);
		return 0;
	}
	if (rl_check_privileges(err, errlen))
		return -1;
	if (kmtls_pin_dir_prepare(err, errlen))
		return -1;
	lock = kmtls_pin_dir_lock();
	for (i = 0; i < r->interfaces.n; i++) {
		const char *ifname = r->interfaces.v[i];
		struct rl_attach_opts o = attach_opts(r);
		struct rl_attach_info info;
		char why[512];

		if (!if_nametoindex(ifname)) {
			kmtls_fail(err, errlen, "[ratelimit] interfaces: no interface '%s' in kmtlsd's network namespace (`ip link` lists them): create it first or remove it from the list",
				   ifname);
			ret = -ENODEV;
			goto out;
		}
		ret = rl_attach_check(ifname, &o, &info, why, sizeof(why));
		if (ret) {
			attach_fail(ret, ifname, &info, why, err, errlen);
			goto out;
		}
	}
	ret = rl_maps_get(&m, err, errlen);
	if (ret)
		goto out;
	ret = rl_config_get(&m, &c);
	if (!ret) {
		settings(r, &c);
		ret = rl_config_put(&m, &c);
	}
	if (ret)
		kmtls_fail(err, errlen, "cannot update the limiter's configuration in %s: %s",
			   kmtls_pin_dir(), ret == -EPROTO ? "it is from another kmtls version" :
			   strerror(-ret));
	else
		ret = apply_allow(&m, r, err, errlen);
	rl_maps_close(&m);
	for (i = 0; !ret && i < r->interfaces.n; i++)
		ret = attach_one(r->interfaces.v[i], r, err, errlen);
	for (i = 0; !ret && old && old->present && i < old->interfaces.n; i++)
		if (!kmtls_strlist_has(&r->interfaces, old->interfaces.v[i]))
			detach_one(old->interfaces.v[i]);
	if (!ret)
		log_settings(&c, r);
out:
	if (lock >= 0)
		close(lock);
	return ret ? -1 : 0;
}

/* The helper: one reload per byte from kmtlsd, until kmtlsd's end closes. */
static void __attribute__((noreturn)) helper(int fd, const struct kmtls_config *start)
{
	const struct kmtls_ratelimit_conf *prev = &start->ratelimit;
	struct kmtls_config *cur = NULL, *next;
	char *path = strdup(start->path);
	char err[768], c;
	ssize_t n;
	int ok;

	prctl(PR_SET_NAME, "kmtlsd-rl", 0, 0, 0);
	for (;;) {
		n = read(fd, &c, 1);
		if (n == 0)
			_exit(0);	/* kmtlsd is gone; the limiter stays */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || !path)
			_exit(1);
		next = calloc(1, sizeof(*next));
		ok = 0;
		if (!next)
			log_err("reload: [ratelimit]: out of memory");
		else if (kmtls_config_load(next, path, err, sizeof(err)) ||
			 kmtls_ratelimit_check(next, err, sizeof(err)))
			log_err("reload: %s; keeping the previous [ratelimit] settings", err);
		else if (apply(prev, &next->ratelimit, err, sizeof(err)))
			log_err("reload: %s%s", strncmp(err, "[ratelimit]", 11) ?
				"[ratelimit]: " : "", err);
		else
			ok = 1;
		if (ok) {
			if (cur) {
				kmtls_config_free(cur);
				free(cur);
			}
			cur = next;
			prev = &cur->ratelimit;
		} else if (next) {
			kmtls_config_free(next);
			free(next);
		}
		c = ok ? 0 : 1;
		if (write(fd, &c, 1) != 1)
			_exit(1);
	}
}

int kmtls_ratelimit_start(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	int sv[2];
	pid_t pid;

	if (!cfg->ratelimit.present)
		return 0;
	if (apply(NULL, &cfg->ratelimit, err, errlen))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return kmtls_fail(err, errlen, "ratelimit: socketpair: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return kmtls_fail(err, errlen, "ratelimit: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(sv[0]);
		helper(sv[1], cfg);
	}
	close(sv[1]);
	helper_fd = sv[0];
	log_info("ratelimit: process %d applies [ratelimit] on reload (it keeps the privileges kmtlsd started with)",
		 (int)pid);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int kmtls_ratelimit_reload(void)
{
	struct pollfd p = { .events = POLLIN };
	uint64_t deadline;
	int64_t left;
	char c = 'R', last = 1;
	ssize_t n;
	int ret;

	if (helper_fd < 0) {
		if (!helper_gone)
			return 0;	/* no [ratelimit] at start: nothing to apply */
		log_err("ratelimit: [ratelimit] not applied: the process that applies it is gone; restart kmtlsd to apply changes (the limiter itself keeps running)");
		return -1;
	}
	/* Answers that came after earlier reloads' waits gave up. */
	while (owed && recv(helper_fd, &c, 1, MSG_DONTWAIT) == 1)
		owed--;
	p.fd = helper_fd;
	c = 'R';
	if (send(helper_fd, &c, 1, MSG_NOSIGNAL) != 1)
		goto gone;
	owed++;
	/*
	 * The helper answers in order: this reload's answer is the last one
	 * owed. Waiting keeps systemd's watchdog fed (kmtls_notify_poll()).
	 */
	deadline = now_ms() + RELOAD_WAIT_MS;
	while (owed) {
		left = (int64_t)(deadline - now_ms());
		if (left <= 0) {
			log_warn("ratelimit: [ratelimit] reload still running after %d s; carrying on (its outcome will be logged)",
				 RELOAD_WAIT_MS / 1000);
			return -1;
		}
		ret = kmtls_notify_poll(&p, 1, (int)left);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			goto gone;
		if (!ret)
			continue;
		n = recv(helper_fd, &c, 1, 0);
		if (n != 1)
			goto gone;
		owed--;
		last = c;
	}
	return last ? -1 : 0;	/* it logged the outcome */
gone:
	log_err("ratelimit: the process that applies [ratelimit] is gone: restart kmtlsd to apply changes (the limiter itself keeps running)");
	close(helper_fd);
	helper_fd = -1;
	helper_gone = 1;
	return -1;
}
