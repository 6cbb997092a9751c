// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_limit's pinned maps, the configuration in them, loading the
 * program, and the text forms of ports and prefixes (agent/rl.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>

#include "bpffs.h"
#include "pinned_maps.h"
#include "rl.h"
#include "hello_limit.skel.h"

const char *const rl_stat_names[] = {
	"seen", "passed", "dropped", "not_tcp", "unwatched_port", "no_payload",
	"malformed", "not_tls", "partial", "other_handshake", "hello_allowed",
	"hello_ok", "over_source", "over_global", "hello_odd_version",
};
_Static_assert(sizeof(struct hl_stats) / sizeof(__u64) == 15, "a name per counter");

static const struct kmtls_pinned_map wanted[] = {
	{ HL_MAP_CONFIG, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hl_config),
	  offsetof(struct rl_maps, config) },
	{ HL_MAP_STATS, BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct hl_stats),
	  offsetof(struct rl_maps, stats) },
	{ HL_MAP_SOURCES, BPF_MAP_TYPE_LRU_HASH, sizeof(struct hl_src_key),
	  sizeof(struct hl_bucket), offsetof(struct rl_maps, sources) },
	{ HL_MAP_GLOBAL, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct hl_bucket),
	  offsetof(struct rl_maps, global) },
	{ HL_MAP_ALLOW, BPF_MAP_TYPE_LPM_TRIE, sizeof(struct hl_lpm_key), 1,
	  offsetof(struct rl_maps, allow) },
};

static const struct kmtls_pinned_help help = {
	.missing = "", .redo = "detach everywhere", .glob = "hl_*",
};

void rl_maps_close(struct rl_maps *m)
{
	kmtls_pinned_maps_close(wanted, sizeof(wanted) / sizeof(wanted[0]), m);
}

int rl_maps_open(struct rl_maps *m, char *err, size_t errlen)
{
	return kmtls_pinned_maps_open(wanted, sizeof(wanted) / sizeof(wanted[0]), m, &help,
				      err, errlen);
}

struct hello_limit *rl_load(char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = kmtls_pin_dir());
	struct hello_limit *skel;
	struct hl_config c;
	int ret;

	kmtls_bpf_quiet_libbpf();
	skel = hello_limit__open_opts(&opts);
	if (!skel) {
		snprintf(err, errlen, "cannot open the hello_limit object: %s", strerror(errno));
		return NULL;
	}
	ret = hello_limit__load(skel);
	if (ret) {
		kmtls_pinned_load_failed("hello_limit", ret, &help, err, errlen);
		hello_limit__destroy(skel);
		return NULL;
	}
	hl_config_default(&c);
	if (kmtls_pinned_config_init(skel->maps.hl_config, HL_MAP_CONFIG, &c, sizeof(c),
				     HL_CONFIG_VERSION, err, errlen)) {
		hello_limit__destroy(skel);
		return NULL;
	}
	return skel;
}

int rl_prog_fd(struct hello_limit *skel)
{
	return bpf_program__fd(skel->progs.hello_limit);
}

void rl_unload(struct hello_limit *skel)
{
	hello_limit__destroy(skel);
}

int rl_maps_get(struct rl_maps *m, char *err, size_t errlen)
{
	struct hello_limit *skel;
	int ret;

	ret = rl_maps_open(m, err, errlen);
	if (ret != -ENOENT)
		return ret;
	if (kmtls_pin_dir_prepare(err, errlen))
		return -EIO;
	skel = rl_load(err, errlen);
	if (!skel)
		return -EIO;
	hello_limit__destroy(skel);	/* the maps stay, pinned */
	return rl_maps_open(m, err, errlen);
}

int rl_config_get(const struct rl_maps *m, struct hl_config *c)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(m->config, &zero, c))
		return -errno;
	/* Maps created by another loader start zeroed: the defaults apply. */
	if (c->version == 0)
		hl_config_default(c);
	return c->version == HL_CONFIG_VERSION ? 0 : -EPROTO;
}

int rl_config_put(const struct rl_maps *m, struct hl_config *c)
{
	__u32 zero = 0;

	hl_config_derive(c);
	return bpf_map_update_elem(m->config, &zero, c, BPF_ANY) ? -errno : 0;
}

int rl_stats_get(const struct rl_maps *m, struct hl_stats *s)
{
	int ncpu = libbpf_num_possible_cpus(), i, j, ret = 0;
	struct hl_stats *v;
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
		for (j = 0; j < RL_NSTATS; j++)
			((__u64 *)s)[j] += ((__u64 *)&v[i])[j];
	free(v);
	return ret;
}

long rl_allow_read(const struct rl_maps *m, struct rl_allow_entry **out)
{
	struct hl_lpm_key k, next;
	struct rl_allow_entry *v = NULL, *more;
	long n = 0;
	__u8 tag;

	*out = NULL;
	for (errno = 0; !bpf_map_get_next_key(m->allow, n ? &k : NULL, &next); n++) {
		k = next;
		/* An LPM lookup of a present key finds that key itself. */
		if (bpf_map_lookup_elem(m->allow, &k, &tag))
			tag = HL_ALLOW_MANUAL;
		more = realloc(v, (n + 1) * sizeof(*v));
		if (!more) {
			free(v);
			return -ENOMEM;
		}
		v = more;
		v[n].k = k;
		v[n].tag = tag;
	}
	if (errno != ENOENT) {
		free(v);
		return -errno;
	}
	*out = v;
	return n;
}

int rl_parse_ports(const char *s, struct hl_config *c, char *err, size_t errlen)
{
	char buf[256], *tok, *save = NULL, *end;
	__u32 n = 0, i;
	unsigned long p;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		goto bad;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		errno = 0;
		p = strtoul(tok, &end, 10);
		if (errno || *end || end == tok || p == 0 || p > 65535)
			goto bad;
		for (i = 0; i < n; i++)
			if (c->ports[i] == p)
				break;
		if (i < n)
			continue;
		if (n == HL_MAX_PORTS) {
			snprintf(err, errlen, "at most %d ports", HL_MAX_PORTS);
			return -1;
		}
		c->ports[n++] = (__u16)p;
	}
	if (n == 0)
		goto bad;
	for (i = n; i < HL_MAX_PORTS; i++)
		c->ports[i] = 0;
	c->nports = n;
	return 0;
bad:
	snprintf(err, errlen, "bad port list '%s' (want e.g. 443,8443)", s);
	return -1;
}

int rl_parse_cidr(const char *s, struct hl_lpm_key *k)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long len;
	int v6, i, max;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	memset(k, 0, sizeof(*k));
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	v6 = strchr(buf, ':') != NULL;
	if (v6 ? inet_pton(AF_INET6, buf, k->addr) != 1 :
		 inet_pton(AF_INET, buf, k->addr + 12) != 1)
		return -1;
	max = v6 ? 128 : 32;
	len = (unsigned long)max;
	if (slash) {
		/* strtoul would take "/ 8", "/+8" and "/-0", the last as /0: everyone */
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || len > (unsigned long)max)
			return -1;
	}
	if (!v6) {
		k->addr[10] = k->addr[11] = 0xff;
		len += 96;
	}
	k->prefixlen = (__u32)len;
	for (i = 0; i < 16; i++) {		/* clear the host bits */
		int bits = (int)len - 8 * i;

		if (bits <= 0)
			k->addr[i] = 0;
		else if (bits < 8)
			k->addr[i] &= (__u8)(0xff << (8 - bits));
	}
	return 0;
}

void rl_format_prefix(const __u8 addr[16], unsigned int prefixlen, char *buf, size_t len)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char a[INET6_ADDRSTRLEN];

	if (!memcmp(addr, mapped, 12) && prefixlen >= 96) {
		inet_ntop(AF_INET, addr + 12, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, prefixlen - 96);
	} else {
		inet_ntop(AF_INET6, addr, a, sizeof(a));
		snprintf(buf, len, "%s/%u", a, prefixlen);
	}
}


const char *rl_mode_name(__u32 mode)
{
	return mode == HL_MODE_MONITOR ? "monitor" : "enforce";
}

/* Effective capabilities, without libcap: capget(2) is two words of bits. */
static int has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return !!(d[cap / 32].effective & (1u << (cap % 32)));
}

#ifndef CAP_BPF
#define CAP_BPF 39	/* Linux 5.8; Debian 12's headers have it, older ones not */
#endif

int rl_check_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };
	int bpf, net;

	if (syscall(SYS_capget, &h, d))
		return 0;	/* cannot tell: let the kernel answer */
	bpf = has_cap(d, CAP_BPF) || has_cap(d, CAP_SYS_ADMIN);
	net = has_cap(d, CAP_NET_ADMIN);
	if (bpf && net)
		return 0;
	snprintf(err, errlen, "the XDP limiter needs %s%s%s to load and attach hello_limit: "
		 "run as root (under systemd: CapabilityBoundingSet= must keep CAP_BPF and "
		 "CAP_NET_ADMIN)", bpf ? "" : "CAP_BPF (or CAP_SYS_ADMIN)",
		 bpf || net ? "" : " and ", net ? "" : "CAP_NET_ADMIN");
	return -1;
}
