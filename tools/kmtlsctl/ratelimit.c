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
 * State lives in the pin directory, nowhere else: the maps (configuration,
 * counters, buckets, allowlist), the newest program ("hello_limit") and one
 * XDP link per interface ("hl_link_<iface>"). A link is what makes an
 * attachment ours: an XDP program on an interface without our link is
 * foreign and is only replaced with --force. Runs are serialized with a
 * flock on the pin directory.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "kmtlsctl.h"
#include "rl.h"
#include "hello_limit.skel.h"

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
		CTL_PIN_DIR_DEFAULT);
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

/* ---- attach / detach ---------------------------------------------------- */

static int link_pin_path(char *buf, size_t len, const char *ifname)
{
	char name[IF_NAMESIZE + sizeof(HL_PIN_LINK)];

	snprintf(name, sizeof(name), "%s%s", HL_PIN_LINK, ifname);
	return ctl_pin_path(buf, len, name);
}

static const char *attach_mode_name(__u8 mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:
		return "native";
	case XDP_ATTACHED_SKB:
		return "skb";
	case XDP_ATTACHED_HW:
		return "hw";
	case XDP_ATTACHED_MULTI:
		return "multi";
	default:
		return "none";
	}
}

static void prog_name(__u32 id, char *buf, size_t len)
{
	struct bpf_prog_info info = { 0 };
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	snprintf(buf, len, "?");
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen))
		snprintf(buf, len, "%s", info.name[0] ? info.name : "(no name)");
	close(fd);
}

/* Remove whatever XDP program is on @ifindex: its link, else netlink. */
static int detach_foreign(int ifindex, const struct bpf_xdp_query_opts *q)
{
	__u32 id = 0;
	int ret;

	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);
		int fd = bpf_link_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_XDP &&
		    info.xdp.ifindex == (__u32)ifindex) {
			ret = bpf_link_detach(fd) ? -errno : 0;
			close(fd);
			if (ret)
				return ret;
		} else {
			close(fd);
		}
	}
	if (q->drv_prog_id && bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL) &&
	    errno != ENOENT)
		return -errno;
	if (q->skb_prog_id && bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL) &&
	    errno != ENOENT)
		return -errno;
	if (q->hw_prog_id && bpf_xdp_detach(ifindex, XDP_FLAGS_HW_MODE, NULL) &&
	    errno != ENOENT)
		return -errno;
	return 0;
}

/* The link pinned at @path: its ifindex (0: interface gone) or -errno. */
static int pinned_link_ifindex(const char *path, __u32 *link_id, __u32 *prog_id)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path), ret;

	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : (int)info.xdp.ifindex;
	if (link_id)
		*link_id = info.id;
	if (prog_id)
		*prog_id = info.prog_id;
	close(fd);
	return ret;
}

static json_object *attach_json(const char *ifname, const char *mode, __u32 prog_id,
				__u32 link_id, int already)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "iface", json_object_new_string(ifname));
	json_object_object_add(o, "mode", json_object_new_string(mode));
	json_object_object_add(o, "prog_id", json_object_new_int64(prog_id));
	json_object_object_add(o, "link_id", json_object_new_int64(link_id));
	json_object_object_add(o, "already_attached", json_object_new_boolean(already));
	return o;
}

/* --ports given to attach: written to the shared configuration. */
static int apply_ports(struct ctl *c, const char *ports)
{
	struct hl_config cfg;
	struct rl_maps m;
	char err[512];
	int ret;

	if (!ports)
		return 0;
	ret = rl_maps_open(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	ret = rl_config_get(&m, &cfg);
	if (!ret && rl_parse_ports(ports, &cfg, err, sizeof(err)))
		ret = -EINVAL;		/* checked by cmd_attach already */
	else if (!ret)
		ret = rl_config_put(&m, &cfg);
	rl_maps_close(&m);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot update the configuration: %s", strerror(-ret));
	return 0;
}

static int do_attach(struct ctl *c, const char *ifname, __u32 flags, const char *ports,
		     int force)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
	char path[4096], prog_path[4096], err[512], name[64];
	struct bpf_link_info li = { 0 };
	__u32 li_len = sizeof(li), link_id = 0, prog_id = 0;
	struct hello_limit *skel;
	int ifindex, ret, link_fd;
	__u32 foreign;

	ifindex = (int)if_nametoindex(ifname);
	if (!ifindex)
		return ctl_fail(c, CTL_ERR, "no interface '%s' in this network namespace", ifname);
	if (ctl_pin_dir_prepare(err, sizeof(err)))
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (link_pin_path(path, sizeof(path), ifname) ||
	    ctl_pin_path(prog_path, sizeof(prog_path), HL_PIN_PROG))
		return ctl_fail(c, CTL_ERR, "pin path too long");

	/* Already ours? Then only the ports may change. */
	ret = pinned_link_ifindex(path, &link_id, &prog_id);
	if (ret == ifindex) {
		if (bpf_xdp_query(ifindex, 0, &q))
			q.attach_mode = XDP_ATTACHED_NONE;
		if (apply_ports(c, ports))
			return CTL_ERR;
		if (c->json)
			ctl_print_json(attach_json(ifname, attach_mode_name(q.attach_mode),
						   prog_id, link_id, 1));
		else
			printf("hello_limit already attached to %s (%s, prog %u, link %u)\n",
			       ifname, attach_mode_name(q.attach_mode), prog_id, link_id);
		return CTL_OK;
	}
	if (ret > 0)
		return ctl_fail(c, CTL_ERR, "%s belongs to ifindex %d, not %s (ifindex %d): "
				"the interface was renamed; detach it under its old name",
				path, ret, ifname, ifindex);
	if (ret == 0)			/* our link, its interface gone */
		unlink(path);

	if (bpf_xdp_query(ifindex, 0, &q))
		return ctl_fail(c, CTL_ERR, "cannot query XDP on %s: %s", ifname, strerror(errno));
	foreign = q.prog_id ? q.prog_id : q.drv_prog_id ? q.drv_prog_id :
		  q.skb_prog_id ? q.skb_prog_id : q.hw_prog_id;
	if (foreign) {
		prog_name(foreign, name, sizeof(name));
		if (!force)
			return ctl_fail(c, CTL_ERR, "%s already runs XDP program '%s' (id %u, %s) "
					"that kmtls did not attach; --force replaces it",
					ifname, name, foreign, attach_mode_name(q.attach_mode));
		ret = detach_foreign(ifindex, &q);
		if (ret)
			return ctl_fail(c, CTL_ERR, "cannot remove XDP program '%s' from %s: %s",
					name, ifname, strerror(-ret));
		fprintf(stderr, "kmtlsctl: replaced XDP program '%s' (id %u) on %s\n",
			name, foreign, ifname);
	}

	skel = rl_load(err, sizeof(err));
	if (!skel)
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (apply_ports(c, ports)) {
		hello_limit__destroy(skel);
		return CTL_ERR;
	}
	link_fd = bpf_link_create(bpf_program__fd(skel->progs.hello_limit), ifindex,
				  BPF_XDP, &lo);
	if (link_fd < 0) {
		ret = errno;
		hello_limit__destroy(skel);
		return ctl_fail(c, CTL_ERR, "cannot attach hello_limit to %s: %s%s", ifname,
				strerror(ret), ret == EOPNOTSUPP || ret == EINVAL ?
				" (no native XDP in this driver? try --mode skb)" : "");
	}
	if (bpf_obj_pin(link_fd, path)) {
		ret = errno;
		bpf_link_detach(link_fd);
		close(link_fd);
		hello_limit__destroy(skel);
		return ctl_fail(c, CTL_ERR, "cannot pin %s: %s", path, strerror(ret));
	}
	/* The program pin names the newest instance (links keep older ones). */
	unlink(prog_path);
	if (bpf_obj_pin(bpf_program__fd(skel->progs.hello_limit), prog_path))
		fprintf(stderr, "kmtlsctl: cannot pin %s: %s\n", prog_path, strerror(errno));
	bpf_obj_get_info_by_fd(link_fd, &li, &li_len);
	close(link_fd);
	hello_limit__destroy(skel);

	if (bpf_xdp_query(ifindex, 0, &q))
		q.attach_mode = XDP_ATTACHED_NONE;
	if (c->json)
		ctl_print_json(attach_json(ifname, attach_mode_name(q.attach_mode), li.prog_id,
					   li.id, 0));
	else
		printf("hello_limit attached to %s (%s, prog %u, link %u)\n", ifname,
		       attach_mode_name(q.attach_mode), li.prog_id, li.id);
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
	const char *ports = NULL;
	struct hl_config check;
	char err[128];
	__u32 flags = 0;
	int opt, force = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:p:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "native") || !strcmp(optarg, "drv"))
				flags = XDP_FLAGS_DRV_MODE;
			else if (!strcmp(optarg, "skb") || !strcmp(optarg, "generic"))
				flags = XDP_FLAGS_SKB_MODE;
			else
				return ctl_fail(c, CTL_USAGE, "--mode is native or skb, not '%s'",
						optarg);
			break;
		case 'p':
			ports = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind != argc - 1)
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl ratelimit attach IFACE "
				"[--mode native|skb] [--ports P,...] [--force]");
	/* Check the list before anything changes on the interface. */
	if (ports && rl_parse_ports(ports, &check, err, sizeof(err)))
		return ctl_fail(c, CTL_USAGE, "%s", err);
	return do_attach(c, argv[optind], flags, ports, force);
}

/* No link pinned any more: the program pin goes too (the maps stay). */
static void drop_prog_pin_if_unused(void)
{
	char path[4096], link0[4096];
	struct dirent *de;
	DIR *d;

	if (ctl_pin_path(path, sizeof(path), HL_PIN_PROG))
		return;
	d = opendir(ctl_pin_dir());
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, HL_PIN_LINK, strlen(HL_PIN_LINK)))
			break;
	snprintf(link0, sizeof(link0), "%s", de ? de->d_name : "");
	closedir(d);
	if (!link0[0])
		unlink(path);
}

static int cmd_detach(struct ctl *c, int argc, char **argv)
{
	char path[4096];
	__u32 link_id = 0;
	int fd, ret = 0;

	if (argc != 2 || argv[1][0] == '-')
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl ratelimit detach IFACE");
	if (link_pin_path(path, sizeof(path), argv[1]))
		return ctl_fail(c, CTL_ERR, "pin path too long");
	fd = bpf_obj_get(path);
	if (fd < 0)
		return ctl_fail(c, CTL_ERR, "hello_limit is not attached to %s by kmtls "
				"(nothing pinned at %s)", argv[1], path);
	pinned_link_ifindex(path, &link_id, NULL);
	/* A link whose interface is gone is already detached. */
	if (bpf_link_detach(fd) && errno != ENOLINK && errno != EINVAL)
		ret = errno;
	close(fd);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot detach link %u from %s: %s", link_id,
				argv[1], strerror(ret));
	unlink(path);
	drop_prog_pin_if_unused();
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
	    set_p6 = 0, set_mode = 0, opt, ret, li = 0;
	const char *ports = NULL;
	struct hl_config cfg;
	struct rl_maps m;
	char err[512];

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		switch (opt) {
		case 'r':
			set_rate = !parse_uint(optarg, 10000000, &rate) ? 1 : -1;
			break;
		case 'b':
			set_burst = !parse_uint(optarg, 10000000, &burst) && burst ? 1 : -1;
			break;
		case 'R':
			set_grate = !parse_uint(optarg, 100000000, &grate) ? 1 : -1;
			break;
		case 'B':
			set_gburst = !parse_uint(optarg, 100000000, &gburst) && gburst ? 1 : -1;
			break;
		case '4':
			set_p4 = !parse_uint(optarg, 32, &p4) && p4 ? 1 : -1;
			break;
		case '6':
			set_p6 = !parse_uint(optarg, 128, &p6) && p6 ? 1 : -1;
			break;
		case 'm':
			set_mode = 1;
			if (!strcmp(optarg, "enforce"))
				mode = HL_MODE_ENFORCE;
			else if (!strcmp(optarg, "monitor"))
				mode = HL_MODE_MONITOR;
			else
				set_mode = -1;
			break;
		case 'p':
			ports = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		default:
			usage(stderr);
			return CTL_USAGE;
		}
		if (set_rate < 0 || set_burst < 0 || set_grate < 0 || set_gburst < 0 ||
		    set_p4 < 0 || set_p6 < 0 || set_mode < 0)
			return ctl_fail(c, CTL_USAGE, "bad value '%s' for --%s (rates: 0 = no "
					"limit; bursts and prefixes: at least 1; mode: "
					"enforce or monitor)", optarg, opts[li].name);
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
	struct hl_lpm_key k, next;
	json_object *arr = json_object_new_array();
	char buf[64];
	void *prev = NULL;

	while (!bpf_map_get_next_key(m->allow, prev, &next)) {
		rl_format_prefix(next.addr, next.prefixlen, buf, sizeof(buf));
		json_object_array_add(arr, json_object_new_string(buf));
		k = next;
		prev = &k;
	}
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "allowlist", arr);
		ctl_print_json(o);
	} else {
		size_t i;

		for (i = 0; i < json_object_array_length(arr); i++)
			printf("%s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
		json_object_put(arr);
	}
	return CTL_OK;
}

static int cmd_allow(struct ctl *c, int argc, char **argv)
{
	struct hl_lpm_key k;
	struct rl_maps m;
	char err[512], buf[64];
	__u8 one = 1;
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

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_USAGE : CTL_OK;
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		lock = ctl_pin_dir_lock();	/* -1 before the directory exists */
		ret = subs[i].run(c, argc - 1, argv + 1);
		if (lock >= 0)
			close(lock);
		return ret;
	}
	usage(stderr);
	return ctl_fail(c, CTL_USAGE, "kmtlsctl ratelimit: unknown command '%s'", argv[1]);
}
