// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl ratelimit status [--top N]: the configuration, where the program
 * is attached, the counters summed over CPUs, the allowlist and the sources
 * with the most over-limit ClientHellos (--top 0: all of them). Also the
 * configuration's text and JSON forms, which set prints too.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "rl_ctl.h"

json_object *rl_config_json(const struct hl_config *c)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	__u32 i;

	json_object_object_add(o, "mode", json_object_new_string(rl_mode_name(c->mode)));
	for (i = 0; i < c->nports && i < HL_MAX_PORTS; i++)
		json_object_array_add(ports, json_object_new_int(c->ports[i]));
	json_object_object_add(o, "ports", ports);
	json_object_object_add(o, "rate", json_object_new_int64(c->rate));
	json_object_object_add(o, "burst", json_object_new_int64(c->burst));
	json_object_object_add(o, "global_rate", json_object_new_int64(c->global_rate));
	json_object_object_add(o, "global_burst", json_object_new_int64(c->global_burst));
	json_object_object_add(o, "prefix4", json_object_new_int64(c->prefix4));
	json_object_object_add(o, "prefix6", json_object_new_int64(c->prefix6));
	return o;
}

void rl_config_print(const struct hl_config *c)
{
	__u32 i;

	printf("mode %s, ports ", rl_mode_name(c->mode));
	for (i = 0; i < c->nports && i < HL_MAX_PORTS; i++)
		printf("%s%u", i ? "," : "", c->ports[i]);
	printf("\nper source: ");
	if (c->rate)
		printf("%u/s burst %u", c->rate, c->burst);
	else
		printf("no limit");
	printf(" (IPv4 /%u, IPv6 /%u)\nglobal: ", c->prefix4, c->prefix6);
	if (c->global_rate)
		printf("%u/s burst %u\n", c->global_rate, c->global_burst);
	else
		printf("no limit\n");
}

struct src_row {
	struct hl_src_key key;
	struct hl_bucket b;
};

static int by_limited(const void *a, const void *b)
{
	const struct src_row *x = a, *y = b;

	if (x->b.limited != y->b.limited)
		return x->b.limited < y->b.limited ? 1 : -1;
	if (x->b.admitted != y->b.admitted)
		return x->b.admitted < y->b.admitted ? 1 : -1;
	return memcmp(&x->key, &y->key, sizeof(x->key));
}

/* Every source entry; *n rows, sorted by limited then admitted. */
static struct src_row *read_sources(const struct rl_maps *m, size_t *n)
{
	struct hl_src_key k, next;
	struct src_row *rows = NULL, *r;
	size_t cap = 0;
	void *prev = NULL;

	*n = 0;
	while (!bpf_map_get_next_key(m->sources, prev, &next)) {
		k = next;
		prev = &k;
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			r = realloc(rows, cap * sizeof(*rows));
			if (!r)
				break;
			rows = r;
		}
		rows[*n].key = next;
		/* Evicted between the two calls: skip it. */
		if (bpf_map_lookup_elem(m->sources, &next, &rows[*n].b))
			continue;
		(*n)++;
	}
	if (*n)
		qsort(rows, *n, sizeof(*rows), by_limited);
	return rows;
}

static unsigned int src_prefixlen(const struct hl_src_key *k, const struct hl_config *c)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(k->addr, mapped, 12) ? c->prefix6 : 96 + c->prefix4;
}

/* The hl_link_* pins: one JSON object per interface. */
static json_object *read_links(void)
{
	json_object *arr = json_object_new_array();
	size_t plen = strlen(HL_PIN_LINK);
	struct dirent *de;
	DIR *d = opendir(kmtls_pin_dir());

	if (!d)
		return arr;
	while ((de = readdir(d))) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);
		char path[4096], ifname[IF_NAMESIZE] = "";
		const char *mode = "detached";
		json_object *o;
		int fd;

		if (strncmp(de->d_name, HL_PIN_LINK, plen))
			continue;
		if (kmtls_pin_path(path, sizeof(path), de->d_name))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			memset(&info, 0, sizeof(info));
		close(fd);
		if (info.xdp.ifindex && if_indextoname(info.xdp.ifindex, ifname) &&
		    !bpf_xdp_query((int)info.xdp.ifindex, 0, &q))
			mode = rl_attach_mode_name(q.attach_mode);
		o = json_object_new_object();
		json_object_object_add(o, "iface", json_object_new_string(de->d_name + plen));
		json_object_object_add(o, "ifindex", json_object_new_int64(info.xdp.ifindex));
		json_object_object_add(o, "mode", json_object_new_string(mode));
		json_object_object_add(o, "prog_id", json_object_new_int64(info.prog_id));
		json_object_object_add(o, "link_id", json_object_new_int64(info.id));
		json_object_array_add(arr, o);
	}
	closedir(d);
	return arr;
}

json_object *rl_allow_json(const struct rl_maps *m)
{
	struct rl_allow_entry *v;
	long n = rl_allow_read(m, &v), i;
	json_object *arr;
	char buf[64];

	if (n < 0) {
		errno = (int)-n;
		return NULL;
	}
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		rl_format_prefix(v[i].k.addr, v[i].k.prefixlen, buf, sizeof(buf));
		json_object_array_add(arr, json_object_new_string(buf));
	}
	free(v);
	return arr;
}

static void print_text(const struct hl_config *cfg, const struct hl_stats *st,
		       json_object *links, json_object *allow, const struct src_row *rows,
		       size_t shown, size_t total)
{
	size_t i;
	int j;

	printf("hello_limit (pins in %s)\n", kmtls_pin_dir());
	rl_config_print(cfg);
	printf("attached:");
	if (!json_object_array_length(links))
		printf(" nowhere");
	for (i = 0; i < json_object_array_length(links); i++) {
		json_object *l = json_object_array_get_idx(links, i), *v;

		json_object_object_get_ex(l, "iface", &v);
		printf(" %s", json_object_get_string(v));
		json_object_object_get_ex(l, "mode", &v);
		printf(" (%s", json_object_get_string(v));
		json_object_object_get_ex(l, "link_id", &v);
		printf(", link %s)", json_object_get_string(v));
	}
	printf("\ncounters:\n");
	for (j = 0; j < RL_NSTATS; j++)
		printf("  %-18s %llu\n", rl_stat_names[j],
		       (unsigned long long)((const __u64 *)st)[j]);
	printf("allowlist:");
	if (!json_object_array_length(allow))
		printf(" empty");
	for (i = 0; i < json_object_array_length(allow); i++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(allow, i)));
	printf("\nsources: %zu tracked\n", total);
	for (i = 0; i < shown; i++) {
		char buf[64];

		rl_format_prefix(rows[i].key.addr, src_prefixlen(&rows[i].key, cfg), buf,
				 sizeof(buf));
		printf("  %-40s limited %llu, admitted %llu\n", buf,
		       (unsigned long long)rows[i].b.limited,
		       (unsigned long long)rows[i].b.admitted);
	}
}

int rl_status(struct ctl *c, int argc, char **argv)
{
	static const char usage[] = "usage: kmtlsctl ratelimit status [--top N]\n";
	static const struct option opts[] = {
		{ "top", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	json_object *o, *counters, *links, *allow, *srcs;
	struct src_row *rows;
	struct hl_config cfg;
	struct hl_stats st;
	struct rl_maps m;
	size_t n, shown, i;
	long top = 10;
	char err[512], *end;
	int opt, ret, j;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		if (opt == 't') {
			top = strtol(optarg, &end, 10);
			if (*end || end == optarg || top < 0)
				return ctl_fail(c, CTL_USAGE, "bad --top '%s'", optarg);
		} else if (opt == 'h') {
			printf("%s", usage);
			return CTL_OK;
		} else {
			fprintf(stderr, "%s", usage);
			return ctl_bad_option(c, "ratelimit status", argv, "t:h");
		}
	}
	if (optind != argc)
		return ctl_fail(c, CTL_USAGE, "unexpected argument '%s'", argv[optind]);

	ret = rl_maps_open(&m, err, sizeof(err));
	if (ret == -ENOENT) {
		if (c->json) {
			o = json_object_new_object();
			json_object_object_add(o, "loaded", json_object_new_boolean(0));
			json_object_object_add(o, "pin_dir", json_object_new_string(kmtls_pin_dir()));
			ctl_print_json(o);
		} else {
			printf("hello_limit: not loaded (nothing pinned in %s)\n", kmtls_pin_dir());
		}
		return CTL_OK;
	}
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	/* Zeroed by another loader: the program watches no port yet. */
	if (!bpf_map_lookup_elem(m.config, &(__u32){ 0 }, &cfg) && cfg.version == 0) {
		rl_maps_close(&m);
		return ctl_fail(c, CTL_ERR, "hello_limit maps in %s were never configured: the "
				"program watches no port until `kmtlsctl ratelimit set`",
				kmtls_pin_dir());
	}
	ret = rl_config_get(&m, &cfg);
	if (!ret)
		ret = rl_stats_get(&m, &st);
	if (ret) {
		rl_maps_close(&m);
		return ctl_fail(c, CTL_ERR, "cannot read the maps: %s", strerror(-ret));
	}
	allow = rl_allow_json(&m);
	if (!allow) {
		ret = errno;
		rl_maps_close(&m);
		return ctl_fail(c, CTL_ERR, "cannot read the allowlist: %s", strerror(ret));
	}
	links = read_links();
	rows = read_sources(&m, &n);
	rl_maps_close(&m);
	shown = top == 0 || (size_t)top > n ? n : (size_t)top;

	if (!c->json) {
		print_text(&cfg, &st, links, allow, rows, shown, n);
		json_object_put(links);
		json_object_put(allow);
		free(rows);
		return CTL_OK;
	}
	o = json_object_new_object();
	json_object_object_add(o, "loaded", json_object_new_boolean(1));
	json_object_object_add(o, "pin_dir", json_object_new_string(kmtls_pin_dir()));
	json_object_object_add(o, "config", rl_config_json(&cfg));
	json_object_object_add(o, "attached", links);
	counters = json_object_new_object();
	for (j = 0; j < RL_NSTATS; j++)
		json_object_object_add(counters, rl_stat_names[j],
				       json_object_new_int64((int64_t)((__u64 *)&st)[j]));
	json_object_object_add(o, "counters", counters);
	json_object_object_add(o, "allowlist", allow);
	json_object_object_add(o, "sources_tracked", json_object_new_int64((int64_t)n));
	srcs = json_object_new_array();
	for (i = 0; i < shown; i++) {
		json_object *s = json_object_new_object();
		char buf[64];

		rl_format_prefix(rows[i].key.addr, src_prefixlen(&rows[i].key, &cfg), buf,
				 sizeof(buf));
		json_object_object_add(s, "source", json_object_new_string(buf));
		json_object_object_add(s, "admitted",
				       json_object_new_int64((int64_t)rows[i].b.admitted));
		json_object_object_add(s, "limited",
				       json_object_new_int64((int64_t)rows[i].b.limited));
		json_object_array_add(srcs, s);
	}
	json_object_object_add(o, "top_sources", srcs);
	free(rows);
	ctl_print_json(o);
	return CTL_OK;
}
