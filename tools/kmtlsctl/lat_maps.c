// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl latency: the pinned maps of hs_latency, loading the program, the
 * configuration, counters and histograms in them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../agent/pinned_maps.h"
#include "kmtlsctl.h"
#include "lat.h"
#include "hs_latency.skel.h"

const char *const lat_stat_names[] = {
	"tracked", "by_ktls", "by_usdt", "by_close", "events", "table_full",
	"stale", "ktls_untracked", "usdt_untracked", "late", "hist_full",
	"events_dropped",
};
_Static_assert(sizeof(struct hs_stats) / sizeof(__u64) == 12, "a name per counter");

static const struct kmtls_pinned_map wanted[] = {
	{ HS_MAP_CONFIG, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hs_config),
	  offsetof(struct lat_maps, config) },
	{ HS_MAP_CONNS, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hs_track),
	  offsetof(struct lat_maps, conns) },
	{ HS_MAP_ADDRS, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hs_addr),
	  offsetof(struct lat_maps, addrs) },
	{ HS_MAP_HIST, BPF_MAP_TYPE_PERCPU_HASH, sizeof(struct hs_hist_key),
	  sizeof(struct hs_hist), offsetof(struct lat_maps, hist) },
	{ HS_MAP_ROWS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct hs_hist),
	  offsetof(struct lat_maps, rows) },
	{ HS_MAP_ROWKEY, BPF_MAP_TYPE_ARRAY, 4, 4, offsetof(struct lat_maps, rowkey) },
	{ HS_MAP_ROWIX, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hs_rowix),
	  offsetof(struct lat_maps, rowix) },
	{ HS_MAP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct hs_pcpu),
	  offsetof(struct lat_maps, stats) },
	{ HS_MAP_EVENTS, BPF_MAP_TYPE_RINGBUF, 0, 0, offsetof(struct lat_maps, events) },
};

static const struct kmtls_pinned_help help = {
	.missing = " (kmtlsctl latency attach loads it)",
	.redo = "kmtlsctl latency detach", .glob = "hs_*",
};

void lat_maps_close(struct lat_maps *m)
{
	kmtls_pinned_maps_close(wanted, sizeof(wanted) / sizeof(wanted[0]), m);
}

int lat_maps_open(struct lat_maps *m, char *err, size_t errlen)
{
	return kmtls_pinned_maps_open(wanted, sizeof(wanted) / sizeof(wanted[0]), m, &help,
				      err, errlen);
}

struct hs_latency *lat_load(char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = kmtls_pin_dir());
	struct hs_latency *skel;
	struct hs_config c;
	int ret;

	kmtls_bpf_quiet_libbpf();
	skel = hs_latency__open_opts(&opts);
	if (!skel) {
		snprintf(err, errlen, "cannot open the hs_latency object: %s", strerror(errno));
		return NULL;
	}
	ret = hs_latency__load(skel);
	if (ret) {
		kmtls_pinned_load_failed("hs_latency", ret, &help, err, errlen);
		hs_latency__destroy(skel);
		return NULL;
	}
	hs_config_default(&c);
	if (kmtls_pinned_config_init(skel->maps.hs_config, HS_MAP_CONFIG, &c, sizeof(c),
				     HS_CONFIG_VERSION, err, errlen)) {
		hs_latency__destroy(skel);
		return NULL;
	}
	return skel;
}

int lat_config_get(const struct lat_maps *m, struct hs_config *c)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(m->config, &zero, c))
		return -errno;
	if (c->version == 0)
		hs_config_default(c);
	return c->version == HS_CONFIG_VERSION ? 0 : -EPROTO;
}

int lat_config_put(const struct lat_maps *m, const struct hs_config *c)
{
	__u32 zero = 0;

	return bpf_map_update_elem(m->config, &zero, c, BPF_ANY) ? -errno : 0;
}

int lat_stats_get(const struct lat_maps *m, struct hs_stats *s)
{
	int ncpu = libbpf_num_possible_cpus(), i, j, ret = 0;
	struct hs_pcpu *v;
	__u32 zero = 0;

	if (ncpu < 1)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->stats, &zero, v))
		ret = -errno;
	memset(s, 0, sizeof(*s));
	for (i = 0; !ret && i < ncpu; i++)
		for (j = 0; j < LAT_NSTATS; j++)
			((__u64 *)s)[j] += ((__u64 *)&v[i].stats)[j];
	free(v);
	return ret;
}

/* Delete every key of a hash map; the count, or -errno. */
static int map_clear(int fd, size_t key_size)
{
	char key[64], next[64];
	int n = 0;

	if (key_size > sizeof(key))
		return -EINVAL;
	/* Always restart from the first key: deleting breaks the walk. */
	while (!bpf_map_get_next_key(fd, NULL, next)) {
		memcpy(key, next, key_size);
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
			return -errno;
		n++;
	}
	return n;
}

int lat_conns_clear(const struct lat_maps *m)
{
	size_t len = (size_t)HS_CONNS * sizeof(struct hs_track);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->conns, 0);

	if (p == MAP_FAILED)
		return -errno;
	memset(p, 0, len);
	munmap(p, len);
	return 0;
}

int lat_reset(const struct lat_maps *m)
{
	int ncpu = libbpf_num_possible_cpus(), ret;
	struct hs_hist *h;
	struct hs_pcpu *v;
	__u32 zero = 0, r;

	ret = map_clear(m->hist, sizeof(struct hs_hist_key));
	if (ret < 0)
		return ret;
	if (ncpu < 1)
		return -EINVAL;
	v = calloc((size_t)ncpu, sizeof(*v));
	h = calloc((size_t)ncpu, sizeof(*h));
	ret = v && h ? 0 : -ENOMEM;
	/* The rows keep their (port, direction): only their counts go. */
	for (r = 0; !ret && r < HS_HIST_ROWS; r++)
		if (bpf_map_update_elem(m->rows, &r, h, BPF_ANY))
			ret = -errno;
	if (!ret && bpf_map_update_elem(m->stats, &zero, v, BPF_ANY))
		ret = -errno;
	free(v);
	free(h);
	return ret;
}

/*
 * Add the per-CPU values @pc of @key to its entry of @l, a new one if none
 * or if @unique (the hash map's keys are: only the rows are looked up).
 */
static int hist_add(struct lat_hist **l, size_t *cnt, size_t *cap, const struct hs_hist_key *key,
		    const struct hs_hist *pc, int ncpu, int unique)
{
	struct lat_hist *e = NULL, *nv;
	size_t j;
	int c, i;

	for (j = 0; !unique && j < *cnt && !e; j++)
		if (!memcmp(&(*l)[j].key, key, sizeof(*key)))
			e = &(*l)[j];
	if (!e) {
		if (*cnt == *cap) {
			*cap = *cap ? 2 * *cap : 16;
			nv = realloc(*l, *cap * sizeof(**l));
			if (!nv)
				return -ENOMEM;
			*l = nv;
		}
		e = &(*l)[(*cnt)++];
		memset(e, 0, sizeof(*e));
		e->key = *key;
	}
	for (c = 0; c < ncpu; c++) {
		for (i = 0; i < HS_SLOTS; i++)
			e->h.slots[i] += pc[c].slots[i];
		e->h.count += pc[c].count;
		e->h.sum_ns += pc[c].sum_ns;
	}
	return 0;
}

int lat_hist_read(const struct lat_maps *m, struct lat_hist **out, size_t *n)
{
	int ncpu = libbpf_num_possible_cpus(), ret = 0;
	struct hs_hist_key k, next;
	struct lat_hist *v = NULL;
	size_t cap = 0, cnt = 0;
	struct hs_hist *pc;
	void *prev = NULL;
	__u32 r, rk;

	if (ncpu < 1)
		return -EINVAL;
	/* One value per possible CPU (the size is a multiple of 8 already). */
	pc = calloc((size_t)ncpu, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	while (!bpf_map_get_next_key(m->hist, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(m->hist, &k, pc))
			continue;	/* deleted meanwhile (reset) */
		ret = hist_add(&v, &cnt, &cap, &k, pc, ncpu, 1);
		if (ret)
			break;
	}
	for (r = 0; !ret && r < HS_HIST_ROWS; r++) {
		if (bpf_map_lookup_elem(m->rowkey, &r, &rk) || !(rk & HS_ROW_USED) ||
		    bpf_map_lookup_elem(m->rows, &r, pc))
			continue;
		k.port = (__u16)rk;
		k.active = (__u8)((rk >> 16) & 1);
		k.outcome = HS_OK;
		ret = hist_add(&v, &cnt, &cap, &k, pc, ncpu, 0);
	}
	free(pc);
	if (ret) {
		free(v);
		return ret;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int lat_parse_ports(const char *s, __u16 *ports, __u32 *n, char *err, size_t errlen)
{
	char buf[256], *tok, *save = NULL, *end;
	unsigned long p;
	__u32 cnt = 0, i;

	if (!strcmp(s, "none")) {
		*n = 0;
		memset(ports, 0, HS_MAX_PORTS * sizeof(*ports));
		return 0;
	}
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		goto bad;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		errno = 0;
		p = strtoul(tok, &end, 10);
		if (errno || *end || end == tok || p == 0 || p > 65535)
			goto bad;
		for (i = 0; i < cnt; i++)
			if (ports[i] == p)
				break;
		if (i < cnt)
			continue;
		if (cnt == HS_MAX_PORTS) {
			snprintf(err, errlen, "at most %d ports", HS_MAX_PORTS);
			return -1;
		}
		ports[cnt++] = (__u16)p;
	}
	if (cnt == 0)
		goto bad;
	for (i = cnt; i < HS_MAX_PORTS; i++)
		ports[i] = 0;
	*n = cnt;
	return 0;
bad:
	snprintf(err, errlen, "bad port list '%s' (want e.g. 443,8443)", s);
	return -1;
}

static json_object *ports_json(const __u16 *ports, __u32 n)
{
	json_object *a = json_object_new_array();
	__u32 i;

	for (i = 0; i < n && i < HS_MAX_PORTS; i++)
		json_object_array_add(a, json_object_new_int(ports[i]));
	return a;
}

json_object *lat_config_json(const struct hs_config *c)
{
	json_object *o = json_object_new_object();

	if (c->flags & HS_CFG_ALL_PASSIVE)
		json_object_object_add(o, "ports", json_object_new_string("all"));
	else
		json_object_object_add(o, "ports", ports_json(c->ports, c->nports));
	json_object_object_add(o, "active_ports", ports_json(c->active_ports, c->nactive));
	return o;
}

static void print_ports(const __u16 *ports, __u32 n)
{
	__u32 i;

	if (!n)
		printf("none");
	for (i = 0; i < n && i < HS_MAX_PORTS; i++)
		printf("%s%u", i ? "," : "", ports[i]);
}

void lat_config_print(const struct hs_config *c)
{
	printf("server side (accepted connections): ");
	if (c->flags & HS_CFG_ALL_PASSIVE)
		printf("every local port");
	else
		print_ports(c->ports, c->nports);
	printf("; client side (connect): ");
	print_ports(c->active_ports, c->nactive);
	printf("\n");
}
