// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsctl latency - handshake latency from the hs_latency BPF programs.
 *
 *   [--port N] [--interval S [--count N]]     histograms, percentiles, outcomes
 *   --events [--port N] [--count N] [--duration S]   one line per handshake
 *   attach [--cgroup PATH] [--ports P,...|all] [--active-ports P,...|none]
 *          [--usdt /path/to/kmtlsd]
 *   detach | reset | status
 *
 * State lives in the pin directory, nowhere else: the maps (hs_*), one
 * cgroup link per program (hs_link_sockops, hs_link_setsockopt,
 * hs_link_release) and one
 * link per USDT probe site (hs_link_usdt_<id>). The links pin the programs,
 * so everything keeps running after kmtlsctl exits. Runs that change
 * something are serialized with a flock on the pin directory.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "kmtlsctl.h"
#include "lat.h"
#include "hs_latency.skel.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kmtlsctl latency [--port N] [--interval S [--count N]]\n"
		"       kmtlsctl latency --events [--port N] [--count N] [--duration S]\n"
		"       kmtlsctl latency attach [--cgroup PATH] [--ports P,...|all]\n"
		"                               [--active-ports P,...|none] [--usdt BINARY]\n"
		"       kmtlsctl latency detach | reset | status\n"
		"Latency runs from the TCP connection's ESTABLISHED (accept queue included)\n"
		"to the key install (setsockopt SOL_TLS) or kmtlsd's kmtls:handshake_done.\n"
		"attach: cgroup v2 root by default; --ports are watched local ports of\n"
		"accepted connections (default 443,8443,6443), --active-ports remote ports\n"
		"of connect()ed ones. Pins live in %s ($KMTLS_BPF_PIN_DIR\n"
		"overrides); --json on every command.\n", KMTLS_PIN_DIR_DEFAULT);
}

/* ---- links -------------------------------------------------------------- */

static int link_info(const char *name, struct bpf_link_info *info)
{
	char path[4096];
	__u32 len = sizeof(*info);
	int fd, ret;

	memset(info, 0, sizeof(*info));
	if (kmtls_pin_path(path, sizeof(path), name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
	close(fd);
	return ret;
}

/* Names of the USDT pins, at most @max (@names NULL: just count them). */
static int usdt_pins(char names[][64], int max)
{
	struct dirent *de;
	DIR *d = opendir(kmtls_pin_dir());
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && (!names || n < max)) {
		if (strncmp(de->d_name, HS_PIN_USDT, strlen(HS_PIN_USDT)) ||
		    strlen(de->d_name) >= 64)
			continue;
		if (names)
			memcpy(names[n], de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	closedir(d);
	return n;
}

static void usdt_unpin_all(void)
{
	char names[64][64], path[4096];
	int i, n = usdt_pins(names, 64);

	for (i = 0; i < n; i++)
		if (!kmtls_pin_path(path, sizeof(path), names[i]))
			unlink(path);
}

static int pin_link(struct bpf_link *l, const char *name, char *err, size_t errlen)
{
	char path[4096];

	if (kmtls_pin_path(path, sizeof(path), name)) {
		snprintf(err, errlen, "pin path too long");
		return -1;
	}
	if (bpf_link__pin(l, path)) {
		snprintf(err, errlen, "cannot pin %.512s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * libbpf's USDT link is several uprobe links (one per probe site) inside a
 * user-space object that cannot be pinned; the kernel links are found by
 * their program and pinned one by one. The libbpf object must then neither
 * detach them nor be destroyed (its inner links would disable their perf
 * events on the way out): it stays, disconnected, until kmtlsctl exits.
 */
static struct bpf_link *volatile usdt_kept;	/* volatile: kept although never read */

static int attach_usdt(struct hs_latency *skel, const char *binary, int *nlinks,
		       char *err, size_t errlen)
{
	struct bpf_prog_info pinfo = { 0 };
	__u32 plen = sizeof(pinfo), id = 0;
	struct bpf_link *l;
	char name[64];
	int n = 0;

	if (access(binary, R_OK)) {
		snprintf(err, errlen, "cannot read %s: %s", binary, strerror(errno));
		return -1;
	}
	l = bpf_program__attach_usdt(skel->progs.hs_usdt_done, -1, binary, "kmtls",
				     "handshake_done", NULL);
	if (!l) {
		snprintf(err, errlen, "cannot attach to kmtls:handshake_done in %s: %s%s",
			 binary, strerror(errno),
			 errno == ENOENT ? " (not a kmtlsd built with its USDT probes?)" : "");
		return -1;
	}
	if (bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.hs_usdt_done), &pinfo, &plen)) {
		snprintf(err, errlen, "cannot read the program's id: %s", strerror(errno));
		bpf_link__destroy(l);
		return -1;
	}
	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);
		char path[4096];
		int fd = bpf_link_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.prog_id == pinfo.id) {
			snprintf(name, sizeof(name), "%s%u", HS_PIN_USDT, id);
			if (kmtls_pin_path(path, sizeof(path), name) || bpf_obj_pin(fd, path)) {
				snprintf(err, errlen, "cannot pin %s: %s", name, strerror(errno));
				close(fd);
				usdt_unpin_all();
				bpf_link__destroy(l);
				return -1;
			}
			n++;
		}
		close(fd);
	}
	if (!n) {
		snprintf(err, errlen, "no kernel link found for the USDT program (a kernel "
			 "without BPF perf links, before 5.15?)");
		bpf_link__destroy(l);
		return -1;
	}
	bpf_link__disconnect(l);
	usdt_kept = l;
	*nlinks = n;
	return 0;
}

/* No USDT links any more: stop indexing, forget the binary. */
static void usdt_config_clear(void)
{
	struct hs_config cfg;
	struct lat_maps m;
	char err[512];

	if (lat_maps_open(&m, err, sizeof(err)))
		return;
	if (!lat_config_get(&m, &cfg)) {
		cfg.flags &= ~HS_CFG_USDT;
		cfg.usdt[0] = 0;
		lat_config_put(&m, &cfg);
	}
	lat_conns_clear(&m);
	lat_maps_close(&m);
}

/* ---- attach ------------------------------------------------------------- */

/* Whether this kernel has kTLS: loaded, built in, or a module to load. */
static int kernel_has_ktls(void)
{
	char path[512], line[512];
	struct utsname u;
	int found = 0;
	FILE *f;

	if (!access("/proc/net/tls_stat", F_OK) || !access("/sys/module/tls", F_OK))
		return 1;
	if (uname(&u))
		return 1;		/* do not warn on a guess */
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "kernel/net/tls/tls.ko", 21);
	if (f)
		fclose(f);
	return found;
}

struct attach_args {
	const char *cgroup, *ports, *active, *usdt;
};

static int parse_attach(struct ctl *c, int argc, char **argv, struct attach_args *a)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "ports", required_argument, NULL, 'p' },
		{ "active-ports", required_argument, NULL, 'a' },
		{ "usdt", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int opt;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->cgroup = optarg;
			break;
		case 'p':
			a->ports = optarg;
			break;
		case 'a':
			a->active = optarg;
			break;
		case 'u':
			a->usdt = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			ctl_bad_option(c, "latency attach", argv, "h");
			return -1;
		}
	}
	if (optind != argc) {
		ctl_fail(c, CTL_USAGE, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

/* The configuration from --ports / --active-ports over @cfg: 0 or -1. */
static int apply_ports(const struct attach_args *a, struct hs_config *cfg, char *err,
		       size_t errlen)
{
	if (a->ports && !strcmp(a->ports, "all")) {
		cfg->flags |= HS_CFG_ALL_PASSIVE;
	} else if (a->ports) {
		if (lat_parse_ports(a->ports, cfg->ports, &cfg->nports, err, errlen))
			return -1;
		cfg->flags &= ~HS_CFG_ALL_PASSIVE;
	}
	if (a->active && lat_parse_ports(a->active, cfg->active_ports, &cfg->nactive, err,
					 errlen))
		return -1;
	return 0;
}

static void attach_report(struct ctl *c, const struct hs_config *cfg, __u64 cgid,
			  int already, int nusdt)
{
	struct bpf_link_info so, sso, rel;

	link_info(HS_PIN_SOCKOPS, &so);
	link_info(HS_PIN_SOCKOPT, &sso);
	link_info(HS_PIN_RELEASE, &rel);
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "cgroup", json_object_new_string(cfg->cgroup));
		json_object_object_add(o, "cgroup_id", json_object_new_int64((int64_t)cgid));
		json_object_object_add(o, "sockops_link", json_object_new_int64(so.id));
		json_object_object_add(o, "setsockopt_link", json_object_new_int64(sso.id));
		json_object_object_add(o, "release_link", json_object_new_int64(rel.id));
		json_object_object_add(o, "already_attached", json_object_new_boolean(already));
		json_object_object_add(o, "usdt", cfg->usdt[0] ?
				       json_object_new_string(cfg->usdt) : NULL);
		json_object_object_add(o, "usdt_links", json_object_new_int(nusdt));
		json_object_object_add(o, "config", lat_config_json(cfg));
		ctl_print_json(o);
		return;
	}
	printf("hs_latency %s cgroup %s (sockops link %u, setsockopt link %u, release link %u)\n",
	       already ? "already attached to" : "attached to", cfg->cgroup, so.id, sso.id,
	       rel.id);
	if (nusdt)
		printf("USDT kmtls:handshake_done in %s: %d probe sites\n", cfg->usdt, nusdt);
	lat_config_print(cfg);
}

static int do_attach(struct ctl *c, const struct attach_args *a)
{
	struct bpf_link *lo = NULL, *ls = NULL, *lr = NULL;
	struct hs_latency *skel = NULL;
	struct bpf_link_info info;
	char err[1024], cgpath[2048];
	struct hs_config cfg;
	struct lat_maps m;
	int cgfd, ret = CTL_ERR, already = 0, nusdt = 0;
	__u64 cgid = 0;

	if (kmtls_pin_dir_prepare(err, sizeof(err)))
		return ctl_fail(c, CTL_ERR, "%s", err);
	cgfd = ctl_cgroup_open(a->cgroup, cgpath, sizeof(cgpath), err, sizeof(err));
	if (cgfd < 0)
		return ctl_fail(c, CTL_ERR, "%s", err);
	if (ctl_cgroup_id(cgfd, &cgid)) {
		ctl_fail(c, CTL_ERR, "cannot read the id of cgroup %s: %s", cgpath,
			 strerror(errno));
		goto out;
	}
	/* One attachment: the same cgroup again only updates the settings. */
	if (!link_info(HS_PIN_SOCKOPS, &info)) {
		if (info.cgroup.cgroup_id != cgid) {
			ctl_fail(c, CTL_ERR, "hs_latency is attached to another cgroup (id %llu); "
				 "kmtlsctl latency detach first",
				 (unsigned long long)info.cgroup.cgroup_id);
			goto out;
		}
		already = 1;
	}
	skel = lat_load(err, sizeof(err));
	if (!skel) {
		ctl_fail(c, CTL_ERR, "%s", err);
		goto out;
	}
	if (lat_maps_open(&m, err, sizeof(err))) {
		ctl_fail(c, CTL_ERR, "%s", err);
		goto out;
	}
	if (lat_config_get(&m, &cfg) || apply_ports(a, &cfg, err, sizeof(err))) {
		lat_maps_close(&m);
		ctl_fail(c, CTL_ERR, "configuration: %s", err);
		goto out;
	}
	if (snprintf(cfg.cgroup, sizeof(cfg.cgroup), "%s", cgpath) >= (int)sizeof(cfg.cgroup))
		fprintf(stderr, "kmtlsctl: cgroup path shortened in the status\n");
	if (a->usdt && !realpath(a->usdt, cfg.usdt))
		snprintf(cfg.usdt, sizeof(cfg.usdt), "%s", a->usdt);
	/* Index new connections for the USDT program before it is attached. */
	if (a->usdt)
		cfg.flags |= HS_CFG_USDT;
	lat_config_put(&m, &cfg);
	if (!already)
		lat_conns_clear(&m);
	lat_maps_close(&m);

	if (!already) {
		lo = bpf_program__attach_cgroup(skel->progs.hs_sockops, cgfd);
		ls = lo ? bpf_program__attach_cgroup(skel->progs.hs_setsockopt, cgfd) : NULL;
		lr = ls ? bpf_program__attach_cgroup(skel->progs.hs_release, cgfd) : NULL;
		if (!lr) {
			ctl_fail(c, CTL_ERR, "cannot attach to cgroup %s: %s", cgpath,
				 strerror(errno));
			goto out;
		}
		if (pin_link(lo, HS_PIN_SOCKOPS, err, sizeof(err)) ||
		    pin_link(ls, HS_PIN_SOCKOPT, err, sizeof(err)) ||
		    pin_link(lr, HS_PIN_RELEASE, err, sizeof(err))) {
			bpf_link__unpin(lo);
			bpf_link__unpin(ls);
			ctl_fail(c, CTL_ERR, "%s", err);
			goto out;
		}
	}
	if (a->usdt) {
		/* A gap rather than an overlap: never two programs on one probe. */
		usdt_unpin_all();
		if (attach_usdt(skel, cfg.usdt, &nusdt, err, sizeof(err))) {
			usdt_config_clear();
			ctl_fail(c, CTL_ERR, "%s", err);
			goto out;
		}
	}
	if (!a->usdt && !usdt_pins(NULL, 0) && !kernel_has_ktls())
		fprintf(stderr, "kmtlsctl: this kernel has no kTLS, so no TLS library reaches "
			"setsockopt(SOL_TLS): without --usdt kmtlsd's handshakes only count "
			"(as closed) when their connections end\n");
	attach_report(c, &cfg, cgid, already, nusdt);
	ret = CTL_OK;
out:
	bpf_link__destroy(lo);		/* pinned: stays attached */
	bpf_link__destroy(ls);
	bpf_link__destroy(lr);
	hs_latency__destroy(skel);
	close(cgfd);
	return ret;
}

static int cmd_attach(struct ctl *c, int argc, char **argv)
{
	struct attach_args a;
	struct hs_config check = { 0 };
	char err[256];
	int ret = parse_attach(c, argc, argv, &a);

	if (ret)
		return ret > 0 ? CTL_OK : CTL_USAGE;
	/* Check the lists before anything is loaded. */
	if (apply_ports(&a, &check, err, sizeof(err)))
		return ctl_fail(c, CTL_USAGE, "%s", err);
	return do_attach(c, &a);
}

/* ---- detach, reset, status ---------------------------------------------- */

static int unpin_cgroup_link(const char *name, __u32 *id)
{
	struct bpf_link_info info;
	char path[4096];
	int fd, ret = 0;

	if (kmtls_pin_path(path, sizeof(path), name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (!link_info(name, &info))
		*id = info.id;
	/* Detach even if someone else holds the link open. */
	if (bpf_link_detach(fd) && errno != ENOLINK)
		ret = -errno;
	close(fd);
	if (!ret)
		unlink(path);
	return ret;
}

static int cmd_detach(struct ctl *c, int argc, char **argv)
{
	__u32 so_id = 0, sso_id = 0, rel_id = 0;
	char names[64][64], err[512];
	struct hs_config cfg;
	struct lat_maps m;
	int r1, r2, r3, nusdt;

	(void)argv;
	if (argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl latency detach");
	nusdt = usdt_pins(names, 64);
	r1 = unpin_cgroup_link(HS_PIN_SOCKOPS, &so_id);
	r2 = unpin_cgroup_link(HS_PIN_SOCKOPT, &sso_id);
	r3 = unpin_cgroup_link(HS_PIN_RELEASE, &rel_id);
	usdt_unpin_all();
	if (r1 == -ENOENT && r2 == -ENOENT && r3 == -ENOENT && !nusdt)
		return ctl_fail(c, CTL_ERR, "hs_latency is not attached by kmtls (nothing "
				"pinned under %s)", kmtls_pin_dir());
	if (r1 == -ENOENT)
		r1 = 0;
	if (r2 == -ENOENT)
		r2 = 0;
	if (r3 == -ENOENT)
		r3 = 0;
	if (r1 || r2 || r3)
		return ctl_fail(c, CTL_ERR, "cannot detach: %s", strerror(-(r1 ? r1 : r2 ? r2 : r3)));
	if (!lat_maps_open(&m, err, sizeof(err))) {
		lat_conns_clear(&m);
		if (!lat_config_get(&m, &cfg)) {
			cfg.cgroup[0] = cfg.usdt[0] = 0;
			cfg.flags &= ~HS_CFG_USDT;
			lat_config_put(&m, &cfg);
		}
		lat_maps_close(&m);
	}
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "detached", json_object_new_boolean(1));
		json_object_object_add(o, "sockops_link", json_object_new_int64(so_id));
		json_object_object_add(o, "setsockopt_link", json_object_new_int64(sso_id));
		json_object_object_add(o, "release_link", json_object_new_int64(rel_id));
		json_object_object_add(o, "usdt_links", json_object_new_int(nusdt));
		ctl_print_json(o);
	} else {
		printf("hs_latency detached (histograms kept: kmtlsctl latency reset clears "
		       "them)\n");
	}
	return CTL_OK;
}

static int cmd_reset(struct ctl *c, int argc, char **argv)
{
	struct lat_maps m;
	char err[512];
	int ret;

	(void)argv;
	if (argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl latency reset");
	ret = lat_maps_open(&m, err, sizeof(err));
	if (ret)
		return ctl_fail(c, CTL_ERR, "%s", err);
	ret = lat_reset(&m);
	lat_maps_close(&m);
	if (ret)
		return ctl_fail(c, CTL_ERR, "cannot reset: %s", strerror(-ret));
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "reset", json_object_new_boolean(1));
		ctl_print_json(o);
	} else {
		printf("hs_latency histograms and counters cleared\n");
	}
	return CTL_OK;
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
	struct bpf_link_info so, sso, rel;
	char names[64][64], err[512];
	int i, loaded, attached, nusdt;
	struct hs_config cfg = { 0 };
	struct hs_stats st = { 0 };
	struct lat_maps m;

	(void)argv;
	if (argc != 1)
		return ctl_fail(c, CTL_USAGE, "usage: kmtlsctl latency status");
	loaded = !lat_maps_open(&m, err, sizeof(err));
	if (loaded) {
		lat_config_get(&m, &cfg);
		lat_stats_get(&m, &st);
		lat_maps_close(&m);
	}
	attached = !link_info(HS_PIN_SOCKOPS, &so) && !link_info(HS_PIN_SOCKOPT, &sso) &&
		   !link_info(HS_PIN_RELEASE, &rel);
	nusdt = usdt_pins(names, 64);
	if (c->json) {
		json_object *o = json_object_new_object(), *s = json_object_new_object();

		json_object_object_add(o, "loaded", json_object_new_boolean(loaded));
		json_object_object_add(o, "attached", json_object_new_boolean(attached));
		if (attached) {
			json_object_object_add(o, "cgroup", json_object_new_string(cfg.cgroup));
			json_object_object_add(o, "cgroup_id",
					       json_object_new_int64((int64_t)so.cgroup.cgroup_id));
			json_object_object_add(o, "sockops_link", json_object_new_int64(so.id));
			json_object_object_add(o, "setsockopt_link", json_object_new_int64(sso.id));
			json_object_object_add(o, "release_link", json_object_new_int64(rel.id));
		}
		json_object_object_add(o, "usdt", nusdt && cfg.usdt[0] ?
				       json_object_new_string(cfg.usdt) : NULL);
		json_object_object_add(o, "usdt_links", json_object_new_int(nusdt));
		if (loaded) {
			json_object_object_add(o, "config", lat_config_json(&cfg));
			for (i = 0; i < LAT_NSTATS; i++)
				json_object_object_add(s, lat_stat_names[i],
						       json_object_new_int64((int64_t)((__u64 *)&st)[i]));
			json_object_object_add(o, "stats", s);
		} else {
			json_object_put(s);
		}
		ctl_print_json(o);
		return CTL_OK;
	}
	if (!loaded) {
		printf("hs_latency: not loaded (kmtlsctl latency attach)\n");
		return CTL_OK;
	}
	if (attached)
		printf("hs_latency attached to cgroup %s (id %llu; sockops link %u, setsockopt "
		       "link %u, release link %u)\n", cfg.cgroup,
		       (unsigned long long)so.cgroup.cgroup_id, so.id, sso.id, rel.id);
	else
		printf("hs_latency: maps pinned, not attached\n");
	if (nusdt)
		printf("USDT kmtls:handshake_done in %s: %d probe sites\n",
		       cfg.usdt[0] ? cfg.usdt : "?", nusdt);
	lat_config_print(&cfg);
	for (i = 0; i < LAT_NSTATS; i++)
		printf("  %-16s %llu\n", lat_stat_names[i],
		       (unsigned long long)((__u64 *)&st)[i]);
	return CTL_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

int cmd_latency(struct ctl *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct ctl *c, int argc, char **argv);
		int locked;
	} subs[] = {
		{ "attach", cmd_attach, 1 },
		{ "detach", cmd_detach, 1 },
		{ "reset", cmd_reset, 1 },
		{ "status", cmd_status, 0 },
	};
	int lock = -1, ret, i;
	size_t s;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return CTL_OK;
	}
	for (s = 0; argc >= 2 && s < sizeof(subs) / sizeof(subs[0]); s++) {
		if (strcmp(argv[1], subs[s].name))
			continue;
		if (subs[s].locked)
			lock = kmtls_pin_dir_lock();	/* -1 before the directory exists */
		ret = subs[s].run(c, argc - 1, argv + 1);
		if (lock >= 0)
			close(lock);
		return ret;
	}
	if (argc >= 2 && argv[1][0] != '-')
		return ctl_fail(c, CTL_USAGE, "kmtlsctl latency: unknown command '%s'", argv[1]);
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--events") || !strcmp(argv[i], "-e"))
			return lat_events(c, argc, argv);
	return lat_show(c, argc, argv);
}
