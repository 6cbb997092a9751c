// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Attaching hello_limit to interfaces (agent/rl.h): one XDP link per
 * interface, pinned as "hl_link_<iface>", all links running the same
 * program instance's maps. An interface that runs an XDP program without
 * our link is foreign: its program is only removed when forced (its link,
 * or its netlink attachment).
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "bpffs.h"
#include "rl.h"

static int link_pin_path(char *buf, size_t len, const char *ifname)
{
	char name[IF_NAMESIZE + sizeof(HL_PIN_LINK)];

	snprintf(name, sizeof(name), "%s%s", HL_PIN_LINK, ifname);
	return kmtls_pin_path(buf, len, name);
}

const char *rl_attach_mode_name(__u8 mode)
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

static const char *current_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return "none";
	return rl_attach_mode_name(q.attach_mode);
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

/* Ports given to attach: written to the shared configuration. */
static int apply_ports(const char *ports, char *err, size_t errlen)
{
	struct hl_config cfg;
	struct rl_maps m;
	int ret;

	if (!ports)
		return 0;
	ret = rl_maps_open(&m, err, errlen);
	if (ret)
		return ret;
	ret = rl_config_get(&m, &cfg);
	if (!ret && rl_parse_ports(ports, &cfg, err, errlen))
		ret = -EINVAL;
	else if (!ret)
		ret = rl_config_put(&m, &cfg);
	rl_maps_close(&m);
	if (ret && ret != -EINVAL)
		snprintf(err, errlen, "cannot update the configuration: %s", strerror(-ret));
	return ret;
}

static const char *perm_hint(int e)
{
	return e == EPERM || e == EACCES ? " (needs CAP_BPF and CAP_NET_ADMIN: run as root)" : "";
}

/*
 * What attaching to @ifname would meet: 1 our link is there already, 0 the
 * way is free (or a foreign program that @o->force removes; its id in
 * @foreign), -errno with @err set when it cannot go ahead. Changes nothing.
 */
static int survey(const char *ifname, const struct rl_attach_opts *o, int *ifindex,
		  struct bpf_xdp_query_opts *q, __u32 *foreign, struct rl_attach_info *info,
		  char *err, size_t errlen)
{
	char path[4096];
	int ret;

	*foreign = 0;
	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex) {
		snprintf(err, errlen, "no interface '%s' in this network namespace "
			 "(`ip link` lists them)", ifname);
		return -ENODEV;
	}
	if (link_pin_path(path, sizeof(path), ifname)) {
		snprintf(err, errlen, "pin path too long");
		return -ENAMETOOLONG;
	}
	ret = pinned_link_ifindex(path, &info->link_id, &info->prog_id);
	if (ret == *ifindex)
		return 1;
	if (ret > 0) {
		snprintf(err, errlen, "%s belongs to ifindex %d, not %s (ifindex %d): the "
			 "interface was renamed; detach it under its old name", path, ret,
			 ifname, *ifindex);
		return -EEXIST;
	}
	info->link_id = info->prog_id = 0;
	if (bpf_xdp_query(*ifindex, 0, q)) {
		ret = errno;
		snprintf(err, errlen, "cannot query XDP on %s: %s%s", ifname, strerror(ret),
			 perm_hint(ret));
		return -ret;
	}
	*foreign = q->prog_id ? q->prog_id : q->drv_prog_id ? q->drv_prog_id :
		   q->skb_prog_id ? q->skb_prog_id : q->hw_prog_id;
	if (*foreign)
		prog_name(*foreign, info->replaced_name, sizeof(info->replaced_name));
	if (*foreign && !o->force) {
		snprintf(err, errlen, "%s already runs XDP program '%s' (id %u, %s) that "
			 "kmtls did not attach", ifname, info->replaced_name, *foreign,
			 rl_attach_mode_name(q->attach_mode));
		return -EEXIST;
	}
	return 0;
}

int rl_attach_check(const char *ifname, const struct rl_attach_opts *o,
		    struct rl_attach_info *info, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	__u32 foreign;
	int ifindex, ret;

	memset(info, 0, sizeof(*info));
	info->mode = "none";
	ret = survey(ifname, o, &ifindex, &q, &foreign, info, err, errlen);
	return ret < 0 ? ret : 0;
}

int rl_attach(const char *ifname, const struct rl_attach_opts *o,
	      struct rl_attach_info *info, char *err, size_t errlen)
{
	static const __u32 xdp_flags[] = {
		[RL_XDP_AUTO] = 0,
		[RL_XDP_NATIVE] = XDP_FLAGS_DRV_MODE,
		[RL_XDP_SKB] = XDP_FLAGS_SKB_MODE,
	};
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = xdp_flags[o->mode]);
	char path[4096], prog_path[4096];
	struct bpf_link_info li = { 0 };
	__u32 li_len = sizeof(li), foreign;
	struct hello_limit *skel;
	int ifindex, ret, link_fd;

	memset(info, 0, sizeof(*info));
	info->mode = "none";
	if (kmtls_pin_dir_prepare(err, errlen))
		return -EIO;
	if (link_pin_path(path, sizeof(path), ifname) ||
	    kmtls_pin_path(prog_path, sizeof(prog_path), HL_PIN_PROG)) {
		snprintf(err, errlen, "pin path too long");
		return -ENAMETOOLONG;
	}
	if (pinned_link_ifindex(path, NULL, NULL) == 0)
		unlink(path);	/* our link, its interface gone */
	ret = survey(ifname, o, &ifindex, &q, &foreign, info, err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 1) {		/* already ours: only the ports may change */
		info->already = 1;
		info->mode = current_mode(ifindex);
		return apply_ports(o->ports, err, errlen);
	}
	if (foreign) {
		ret = detach_foreign(ifindex, &q);
		if (ret) {
			snprintf(err, errlen, "cannot remove XDP program '%s' from %s: %s%s",
				 info->replaced_name, ifname, strerror(-ret), perm_hint(-ret));
			return ret;
		}
		info->replaced_id = foreign;
	}

	skel = rl_load(err, errlen);
	if (!skel)
		return -EIO;
	ret = apply_ports(o->ports, err, errlen);
	if (ret) {
		rl_unload(skel);
		return ret;
	}
	link_fd = bpf_link_create(rl_prog_fd(skel), ifindex, BPF_XDP, &lo);
	if (link_fd < 0) {
		ret = errno;
		rl_unload(skel);
		snprintf(err, errlen, "cannot attach hello_limit to %s: %s%s", ifname,
			 strerror(ret), perm_hint(ret));
		return ret == EINVAL ? -EOPNOTSUPP : -ret;
	}
	if (bpf_obj_pin(link_fd, path)) {
		ret = errno;
		bpf_link_detach(link_fd);
		close(link_fd);
		rl_unload(skel);
		snprintf(err, errlen, "cannot pin %s: %s", path, strerror(ret));
		return -ret;
	}
	/* The program pin names the newest instance (links keep older ones). */
	unlink(prog_path);
	bpf_obj_pin(rl_prog_fd(skel), prog_path);
	bpf_obj_get_info_by_fd(link_fd, &li, &li_len);
	close(link_fd);
	rl_unload(skel);
	info->prog_id = li.prog_id;
	info->link_id = li.id;
	info->mode = current_mode(ifindex);
	return 0;
}

/* No link pinned any more: the program pin goes too (the maps stay). */
static void drop_prog_pin_if_unused(void)
{
	char path[4096];
	struct dirent *de;
	int used = 0;
	DIR *d;

	if (kmtls_pin_path(path, sizeof(path), HL_PIN_PROG))
		return;
	d = opendir(kmtls_pin_dir());
	if (!d)
		return;
	while (!used && (de = readdir(d)))
		used = !strncmp(de->d_name, HL_PIN_LINK, strlen(HL_PIN_LINK));
	closedir(d);
	if (!used)
		unlink(path);
}

int rl_detach(const char *ifname, __u32 *link_id, char *err, size_t errlen)
{
	char path[4096];
	__u32 id = 0;
	int fd, ret = 0;

	if (link_pin_path(path, sizeof(path), ifname)) {
		snprintf(err, errlen, "pin path too long");
		return -ENAMETOOLONG;
	}
	fd = bpf_obj_get(path);
	if (fd < 0) {
		ret = errno;
		snprintf(err, errlen, "hello_limit is not attached to %s by kmtls (nothing "
			 "pinned at %s)%s", ifname, path, perm_hint(ret));
		return ret == EPERM || ret == EACCES ? -ret : -ENOENT;
	}
	pinned_link_ifindex(path, &id, NULL);
	if (link_id)
		*link_id = id;
	/* A link whose interface is gone is already detached. */
	if (bpf_link_detach(fd) && errno != ENOLINK && errno != EINVAL)
		ret = errno;
	close(fd);
	if (ret) {
		snprintf(err, errlen, "cannot detach link %u from %s: %s%s", id, ifname,
			 strerror(ret), perm_hint(ret));
		return -ret;
	}
	unlink(path);
	drop_prog_pin_if_unused();
	return 0;
}

int rl_attached(const char *ifname, const char **mode)
{
	char path[4096];
	int ifindex, ret;

	*mode = "none";
	if (link_pin_path(path, sizeof(path), ifname))
		return 0;
	ret = pinned_link_ifindex(path, NULL, NULL);
	if (ret < 0)
		return 0;
	ifindex = (int)if_nametoindex(ifname);
	*mode = ret && ret == ifindex ? current_mode(ifindex) : "detached";
	return 1;
}
