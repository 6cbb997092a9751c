// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl ratelimit - the XDP ClientHello flood limiter (bpf/hello_limit).
 *
 *   attach IFACE [--mode native|skb] [--ports P,...] [--force]
 *   detach IFACE
 *   set [--rate N] [--burst N] [--global-rate N] [--global-burst N]
 *       [--mode enforce|monitor] [--prefix4 N] [--prefix6 N] [--ports P,...]
 *   allow add|del CIDR, allow list
 *   status [--top N]
 *
 * The verbs parse and print; loading, pinning, attaching and the maps are
 * agent/rl.h, the same code kmtlsd's [ratelimit] section runs, so both
 * see and change the same state in the pin directory. Runs are serialized
 * with a flock on the pin directory (kmtlsd takes it too).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "rl_ctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kmtlsctl ratelimit attach IFACE [--mode native|skb] [--ports P,...] [--force]\n"
		"       kmtlsctl ratelimit detach IFACE\n"
		"       kmtlsctl ratelimit set [--rate N] [--burst N] [--global-rate N]\n"
		"                              [--global-burst N] [--mode enforce|monitor]\n"
		"                              [--prefix4 N] [--prefix6 N] [--ports P,...]\n"
		"       kmtlsctl ratelimit allow add|del CIDR | allow list\n"
		"       kmtlsctl ratelimit status [--top N]\n"
		"Rates are ClientHellos per second (0: no limit). Pins live in %s\n"
		"($KMTLS_BPF_PIN_DIR overrides); --json on every command.\n",
		KMTLS_PIN_DIR_DEFAULT);
}

static int parse_uint(const char *s, unsigned long max, __u32 *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > max || s[0] == '-')
		return -1;
	*out = (__u32)v;
	return 0;
}

/* ---- attach / detach (the work is in agent/rl_attach.c) ---------------- */

static json_object *attach_json(const char *ifname, const struct rl_attach_info *i)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "iface", json_object_new_string(ifname));
	json_object_object_add(o, "mode", json_object_new_string(i->mode));
	json_object_object_add(o, "prog_id", json_object_new_int64(i->prog_id));
	json_object_object_add(o, "link_id", json_object_new_int64(i->link_id));
	json_object_object_add(o, "already_attached", json_object_new_boolean(i->already));
	return o;
}

static int do_attach(struct ctl *c, const char *ifname, const struct rl_attach_opts *o)
{
	struct rl_attach_info info;
	char err[512];
	int ret;

	ret = rl_attach(ifname, o, &info, err, sizeof(err));
	if (ret == -EEXIST && info.replaced_name[0])
		return ctl_fail(c, CTL_ERR, "%s; --force replaces it", err);
	if (ret == -EOPNOTSUPP)
		return ctl_fail(c, CTL_ERR, "%s (no native XDP in this driver? try --mode skb)",
				err);
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (info.replaced_id)
		fprintf(stderr, "kmtlsctl: replaced XDP program '%s' (id %u) on %s\n",
			info.replaced_name, info.replaced_id, ifname);
	if (c->json)
		ctl_print_json(attach_json(ifname, &info));
	else if (info.already)
		printf("hello_limit already attached to %s (%s, prog %u, link %u)\n",
		       ifname, info.mode, info.prog_id, info.link_id);
	else
		printf("hello_limit attached to %s (%s, prog %u, link %u)\n", ifname,
		       info.mode, info.prog_id, info.link_id);
	return CTL_OK;
}

static int cmd_attach(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "ports", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_attach_opts o = { .mode = RL_XDP_AUTO };
	struct hl_config check;
	char err[128];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:p:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "native") || !strcmp(optarg, "drv"))
				o.mode = RL_XDP_NATIVE;
			else if (!strcmp(optarg, "skb") || !strcmp(optarg, "generic"))
				o.mode = RL_XDP_SKB;
			else
				return ctl_fail(c, CTL_USAGE, "--mode is native or skb, not '%s'",
						optarg);
			break;
		case 'p':
			o.ports = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return ctl_bad_option(c, "ratelimit attach", argv, "m:p:fh");
		}
	}
	if (optind != argc - 1)
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl ratelimit attach IFACE "
				"[--mode native|skb] [--ports P,...] [--force]");
	/* Check the list before anything changes on the interface. */
	if (o.ports && rl_parse_ports(o.ports, &check, err, sizeof(err)))
		return ctl_fail(c, CTL_USAGE, "%s", err);
	return do_attach(c, argv[optind], &o);
}

static int cmd_detach(struct ctl *c, int argc, char **argv)
{
	char err[512];
	__u32 link_id = 0;

	if (argc != 2 || argv[1][0] == '-')
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl ratelimit detach IFACE");
	if (rl_detach(argv[1], &link_id, err, sizeof(err)))
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "iface", json_object_new_string(argv[1]));
		json_object_object_add(o, "detached", json_object_new_boolean(1));
		json_object_object_add(o, "link_id", json_object_new_int64(link_id));
		ctl_print_json(o);
	} else {
		printf("hello_limit detached from %s\n", argv[1]);
	}
	return CTL_OK;
}

/* ---- set ---------------------------------------------------------------- */

#define RATE_MAX	10000000UL	/* per source */
#define GLOBAL_MAX	100000000UL

/* optarg of --@name, from @min to @max: 0, or -1 after a usage error. */
static int set_num(struct ctl *c, const char *name, unsigned long min, unsigned long max,
		   const char *what, __u32 *out)
{
	if (!parse_uint(optarg, max, out) && *out >= min)
		return 0;
	ctl_fail(c, CTL_USAGE, "bad --%s '%s': %lu to %lu (%s)", name, optarg, min, max, what);
	return -1;
}

static int cmd_set(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },
		{ "burst", required_argument, NULL, 'b' },
		{ "global-rate", required_argument, NULL, 'R' },
		{ "global-burst", required_argument, NULL, 'B' },
		{ "mode", required_argument, NULL, 'm' },
		{ "prefix4", required_argument, NULL, '4' },
		{ "prefix6", required_argument, NULL, '6' },
		{ "ports", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	__u32 rate = 0, burst = 0, grate = 0, gburst = 0, p4 = 0, p6 = 0, mode = 0;
	int set_rate = 0, set_burst = 0, set_grate = 0, set_gburst = 0, set_p4 = 0,
	    set_p6 = 0, set_mode = 0, opt, ret;
	const char *ports = NULL;
	struct hl_config cfg;
	struct rl_maps m;
	char err[512];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (set_num(c, "rate", 0, RATE_MAX, "ClientHellos per second from one "
				    "source; 0: no limit", &rate))
				return CTL_USAGE;
			set_rate = 1;
			break;
		case 'b':
			if (set_num(c, "burst", 1, RATE_MAX, "ClientHellos one source may send "
				    "at once", &burst))
				return CTL_USAGE;
			set_burst = 1;
			break;
		case 'R':
			if (set_num(c, "global-rate", 0, GLOBAL_MAX, "ClientHellos per second "
				    "in all; 0: no limit", &grate))
				return CTL_USAGE;
			set_grate = 1;
			break;
		case 'B':
			if (set_num(c, "global-burst", 1, GLOBAL_MAX, "ClientHellos at once in "
				    "all", &gburst))
				return CTL_USAGE;
			set_gburst = 1;
			break;
		case '4':
			if (set_num(c, "prefix4", 1, 32, "bits of an IPv4 source", &p4))
				return CTL_USAGE;
			set_p4 = 1;
			break;
		case '6':
			if (set_num(c, "prefix6", 1, 128, "bits of an IPv6 source", &p6))
				return CTL_USAGE;
			set_p6 = 1;
			break;
		case 'm':
			set_mode = 1;
			if (!strcmp(optarg, "enforce"))
				mode = HL_MODE_ENFORCE;
			else if (!strcmp(optarg, "monitor"))
				mode = HL_MODE_MONITOR;
			else
				return ctl_fail(c, CTL_USAGE, "bad --mode '%s': enforce or monitor",
						optarg);
			break;
		case 'p':
			ports = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return ctl_bad_option(c, "ratelimit set", argv, "h");
		}
	}
	if (optind != argc)
		return ctl_fail(c, CTL_USAGE, "unexpected argument '%s'", argv[optind]);

	ret = rl_maps_get(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	ret = rl_config_get(&m, &cfg);
	if (ret) {
		rl_maps_close(&m);
		return ctl_fail(c, CTL_ERR, "cannot read the configuration: %s", strerror(-ret));
	}
	if (set_rate) {
		cfg.rate = rate;
		if (!set_burst && rate && cfg.burst == 0)
			cfg.burst = rate;
	}
	if (set_burst)
		cfg.burst = burst;
	if (set_grate) {
		cfg.global_rate = grate;
		if (!set_gburst && grate && cfg.global_burst == 0)
			cfg.global_burst = grate;
	}
	if (set_gburst)
		cfg.global_burst = gburst;
	if (set_p4)
		cfg.prefix4 = p4;
	if (set_p6)
		cfg.prefix6 = p6;
	if (set_mode)
		cfg.mode = mode;
	if (ports && rl_parse_ports(ports, &cfg, err, sizeof(err))) {
		rl_maps_close(&m);
		return ctl_fail(c, CTL_USAGE, "%s", err);
	}
	ret = rl_config_put(&m, &cfg);
	rl_maps_close(&m);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot write the configuration: %s", strerror(-ret));
	if (c->json)
		ctl_print_json(rl_config_json(&cfg));
	else
		rl_config_print(&cfg);
	return CTL_OK;
}

/* ---- allow -------------------------------------------------------------- */

static int allow_list(struct ctl *c, const struct rl_maps *m)
{
	json_object *arr = rl_allow_json(m);
	size_t i;

	if (!arr)
		return ctl_fail(c, CTL_ERR, "cannot read the allowlist: %s", strerror(errno));
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "allowlist", arr);
		ctl_print_json(o);
		return CTL_OK;
	}
	for (i = 0; i < json_object_array_length(arr); i++)
		printf("%s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
	json_object_put(arr);
	return CTL_OK;
}

static int cmd_allow(struct ctl *c, int argc, char **argv)
{
	struct hl_lpm_key k;
	struct rl_maps m;
	char err[512], buf[64];
	__u8 one = HL_ALLOW_MANUAL;
	int ret, add;

	if (argc == 2 && !strcmp(argv[1], "list")) {
		ret = rl_maps_open(&m, err, sizeof(err));
		if (ret == -ENOENT) {		/* nothing pinned: an empty list */
			if (c->json) {
				json_object *o = json_object_new_object();

				json_object_object_add(o, "allowlist", json_object_new_array());
				ctl_print_json(o);
			}
			return CTL_OK;
		}
		if (ret)
			return ctl_fail(c, CTL_ERR, "%s", err);
		ret = allow_list(c, &m);
		rl_maps_close(&m);
		return ret;
	}
	if (argc != 3 || (strcmp(argv[1], "add") && strcmp(argv[1], "del")))
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl ratelimit allow add|del CIDR "
				"| allow list");
	add = !strcmp(argv[1], "add");
	if (rl_parse_cidr(argv[2], &k))
		return ctl_fail(c, CTL_USAGE, "bad prefix '%s' (want e.g. 192.0.2.0/24 or "
				"2001:db8::/48)", argv[2]);
	rl_format_prefix(k.addr, k.prefixlen, buf, sizeof(buf));
	ret = rl_maps_get(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (add)
		ret = bpf_map_update_elem(m.allow, &k, &one, BPF_ANY) ? -errno : 0;
	else
		ret = bpf_map_delete_elem(m.allow, &k) ? -errno : 0;
	rl_maps_close(&m);
	if (ret == -ENOENT)
		return ctl_fail(c, CTL_ERR, "%s is not in the allowlist", buf);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot %s %s: %s%s", add ? "add" : "delete", buf,
				strerror(-ret), ret == -ENOSPC ? " (allowlist full)" : "");
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, add ? "added" : "deleted", json_object_new_string(buf));
		ctl_print_json(o);
	} else {
		printf("%s %s\n", add ? "allowed" : "no longer allowed:", buf);
	}
	return CTL_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

int cmd_ratelimit(struct ctl *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct ctl *c, int argc, char **argv);
	} subs[] = {
		{ "attach", cmd_attach },
		{ "detach", cmd_detach },
		{ "set", cmd_set },
		{ "allow", cmd_allow },
		{ "status", rl_status },
	};
	int lock, ret;
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return ctl_fail(c, CTL_USAGE, "kmtlsctl ratelimit: attach, detach, set, allow or "
				"status?");
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return CTL_OK;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		lock = kmtls_pin_dir_lock();	/* -1 before the directory exists */
		ret = subs[i].run(c, argc - 1, argv + 1);
		if (lock >= 0)
			close(lock);
		return ret;
	}
	usage(stderr);
	return ctl_fail(c, CTL_USAGE, "kmtlsctl ratelimit: unknown command '%s'", argv[1]);
}
