// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host side for kmtlsctl status and stats: kmtls.ko (/sys/module/kmtls,
 * /proc/net/kmtls_stat of this network namespace) and the BPF programs
 * (their pins, read through the same functions as kmtlsctl ratelimit and
 * latency). Only reads; never loads or mounts anything.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "../../agent/rl.h"
#include "kmtlsctl.h"
#include "lat.h"
#include "st.h"

#define KMOD_SYS	"/sys/module/kmtls"
#define KMOD_STAT	"/proc/net/kmtls_stat"

json_object *st_kmod(void)
{
	json_object *o = json_object_new_object(), *cnt = NULL;
	char name[64];
	unsigned long long v;
	FILE *f;

	json_object_object_add(o, "loaded", json_object_new_boolean(!access(KMOD_SYS, F_OK)));
	/* "Name<TAB>value" per line, like /proc/net/tls_stat (kmod/proc.c). */
	f = fopen(KMOD_STAT, "re");
	if (f) {
		cnt = json_object_new_object();
		while (fscanf(f, "%63s %llu", name, &v) == 2)
			json_object_object_add(cnt, name, json_object_new_int64((int64_t)v));
		fclose(f);
	}
	json_object_object_add(o, "counters", cnt);
	return o;
}

/* "not loaded", or what kept us from knowing. */
static const char *absent(int err)
{
	return err == -ENOENT ? "not loaded" :
	       err == -EACCES || err == -EPERM ? "unknown (permission denied: run as root)" :
	       "unknown (pins from another kmtls version?)";
}

static json_object *counters_json(const __u64 *v, const char *const *names, int n)
{
	json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < n; i++)
		json_object_object_add(o, names[i], json_object_new_int64((int64_t)v[i]));
	return o;
}

/* Our XDP links (hl_link_<iface> pins) and their attach mode. */
static json_object *hl_links(void)
{
	json_object *arr = json_object_new_array(), *l;
	size_t plen = strlen(HL_PIN_LINK);
	const char *mode;
	struct dirent *de;
	DIR *d = opendir(kmtls_pin_dir());

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, HL_PIN_LINK, plen) ||
		    !rl_attached(de->d_name + plen, &mode))
			continue;
		l = json_object_new_object();
		json_object_object_add(l, "iface", json_object_new_string(de->d_name + plen));
		json_object_object_add(l, "mode", json_object_new_string(mode));
		json_object_array_add(arr, l);
	}
	if (d)
		closedir(d);
	return arr;
}

static json_object *hello_limit(int counters)
{
	json_object *o = json_object_new_object();
	struct hl_stats st;
	struct rl_maps m;
	char err[512];
	int ret;

	ret = rl_maps_open(&m, err, sizeof(err));
	json_object_object_add(o, "state", json_object_new_string(ret ? absent(ret) : "loaded"));
	if (ret)
		return o;
	json_object_object_add(o, "attached", hl_links());
	if (counters && !rl_stats_get(&m, &st))
		json_object_object_add(o, "counters", counters_json((const __u64 *)&st,
								    rl_stat_names, RL_NSTATS));
	rl_maps_close(&m);
	return o;
}

static int pinned(const char *name)
{
	char path[4096];
	int fd;

	if (kmtls_pin_path(path, sizeof(path), name))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static json_object *hs_latency(int counters)
{
	json_object *o = json_object_new_object();
	struct hs_config cfg;
	struct hs_stats st;
	struct lat_maps m;
	char err[512];
	int ret, attached;

	ret = lat_maps_open(&m, err, sizeof(err));
	json_object_object_add(o, "state", json_object_new_string(ret ? absent(ret) : "loaded"));
	if (ret)
		return o;
	attached = pinned(HS_PIN_SOCKOPS) && pinned(HS_PIN_SOCKOPT) && pinned(HS_PIN_RELEASE);
	json_object_object_add(o, "attached", json_object_new_boolean(attached));
	if (attached && !lat_config_get(&m, &cfg))
		json_object_object_add(o, "cgroup", json_object_new_string(cfg.cgroup));
	if (counters && !lat_stats_get(&m, &st))
		json_object_object_add(o, "counters", counters_json((const __u64 *)&st,
								    lat_stat_names, LAT_NSTATS));
	lat_maps_close(&m);
	return o;
}

json_object *st_bpf(int counters)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "pin_dir", json_object_new_string(kmtls_pin_dir()));
	json_object_object_add(o, "hello_limit", hello_limit(counters));
	json_object_object_add(o, "hs_latency", hs_latency(counters));
	return o;
}
