// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd configuration.
 *
 * One table of listener keys serves both the INI file and the command line,
 * so every flag has a config key of the same name and a bad value gets the
 * same sentence from both: 'key = "value": expected <what is accepted>'.
 * The INI loader prefixes it with "file:line: [section] ".
 *
 * libinih reads the file through our own line reader, because the handler
 * alone cannot do three things we need: know the line number, see section
 * headers (an empty, unknown or repeated section never reaches the
 * handler) and keep an indented key from being taken as the continuation
 * of the previous value.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>
#include <uapi/linux/kmtls.h>

#include "addr.h"
#include "config.h"

#define DAY_MS		(24u * 3600 * 1000)
#define DURATION	"a duration such as 500ms, 10s or 5m (a plain number is ms) up to 24h"
#define MAX_LINE	4096	/* libinih's 200 is short for cipher lists */
#define MAX_NAME	64	/* listener names end up in logs and metrics */
#define MAX_KEYS	32

/*
 * Strings first, then lists: listener_free() walks the table by type.
 * K_UIDS (allow-uid) is in the kernel table only, freed by kernel_free();
 * K_WORDS in the ratelimit table only, freed by kmtls_config_free().
 */
enum key_type { K_STR, K_ADDR, K_ADDR_UNIX, K_LIST, K_CSV, K_ENUM, K_MS, K_UINT, K_UIDS,
	K_WORDS };

struct enum_val {
	const char *name;
	int val;
};

struct key_desc {
	const char *name;		/* canonical: the long flag name */
	enum key_type type;
	size_t off;			/* field in the struct being set */
	const char *what;		/* "expected ..." in errors */
	const struct enum_val *vals;	/* K_ENUM, ends with a NULL name */
	unsigned long min, max;		/* K_MS, K_UINT */
};

static const struct enum_val ktls_vals[] = {
	{ "auto", KMTLS_KTLS_AUTO }, { "require", KMTLS_KTLS_REQUIRE },
	{ "off", KMTLS_KTLS_OFF }, { NULL, 0 },
};

static const struct enum_val proxy_vals[] = {
	{ "none", KMTLS_PROXY_NONE }, { "v2", KMTLS_PROXY_V2 },
	{ "v2-cert", KMTLS_PROXY_V2_CERT }, { NULL, 0 },
};

static const struct enum_val mode_vals[] = {
	{ "terminate", KMTLS_MODE_TERMINATE }, { "originate", KMTLS_MODE_ORIGINATE },
	{ NULL, 0 },
};

static const struct enum_val tls_vals[] = {
	{ "1.2", 0x0303 }, { "1.3", 0x0304 }, { NULL, 0 },
};

static const struct enum_val bool_vals[] = {
	{ "true", 1 }, { "false", 0 }, { "yes", 1 }, { "no", 0 },
	{ "1", 1 }, { "0", 0 }, { NULL, 0 },
};

static const struct enum_val sandbox_vals[] = {
	{ "on", KMTLS_SANDBOX_ON }, { "off", KMTLS_SANDBOX_OFF }, { NULL, 0 },
};

static const struct enum_val xdp_vals[] = {
	{ "auto", KMTLS_XDP_AUTO }, { "native", KMTLS_XDP_NATIVE },
	{ "skb", KMTLS_XDP_SKB }, { NULL, 0 },
};

static const struct enum_val rl_mode_vals[] = {
	{ "enforce", 0 }, { "monitor", 1 }, { NULL, 0 },	/* enum hl_mode */
};

static const struct enum_val level_vals[] = {
	{ "error", LOG_ERR }, { "warning", LOG_WARNING },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG }, { NULL, 0 },
};

#define L(f) offsetof(struct kmtls_listener_conf, f)
#define G(f) offsetof(struct kmtls_config, f)
#define KEY(n, t, o, w, ...) { .name = n, .type = t, .off = o, .what = w, __VA_ARGS__ }

static const struct key_desc listener_keys[] = {
	KEY("listen", K_ADDR_UNIX, L(listen),
	    "an address such as 0.0.0.0:8443, [::]:8443 or (originate) unix:/absolute/path"),
	KEY("backend", K_ADDR_UNIX, L(backend),
	    "an address such as 127.0.0.1:8080, [::1]:8080 or unix:/absolute/path"),
	KEY("mode", K_ENUM, L(mode), "terminate or originate", .vals = mode_vals),
	KEY("server-name", K_STR, L(server_name),
	    "the name the server's certificate must carry (originate mode; also sent as SNI)"),
	KEY("ticket-keys", K_STR, L(ticket_keys),
	    "a file of 80-byte session-ticket keys, the first one current"),
	KEY("cert", K_STR, L(cert), "a certificate file"),
	KEY("key", K_STR, L(key), "a private key file"),
	KEY("ca", K_STR, L(ca), "a CA file or directory"),
	KEY("crl", K_CSV, L(crl), "CRL files, comma-separated"),
	KEY("allow-uri", K_LIST, L(allow_uri), "a URI glob such as spiffe://example.org/*"),
	KEY("allow-dns", K_LIST, L(allow_dns), "a DNS name"),
	KEY("allow-cn", K_LIST, L(allow_cn), "a subject common name"),
	KEY("ktls", K_ENUM, L(ktls), "auto, require or off", .vals = ktls_vals),
	KEY("proxy-protocol", K_ENUM, L(proxy_protocol), "none, v2 or v2-cert", .vals = proxy_vals),
	KEY("tls-min", K_ENUM, L(tls_min), "1.2 or 1.3", .vals = tls_vals),
	KEY("ciphers", K_STR, L(ciphers), "a cipher list such as TLS13-AES128-GCM-SHA256"),
	KEY("groups", K_STR, L(groups), "a group list such as X25519:P-256"),
	KEY("handshake-timeout", K_MS, L(handshake_timeout_ms), DURATION, .min = 1, .max = DAY_MS),
	KEY("idle-timeout", K_MS, L(idle_timeout_ms), DURATION ", or 0 for none", .max = DAY_MS),
	KEY("connect-timeout", K_MS, L(connect_timeout_ms), DURATION, .min = 1, .max = DAY_MS),
	KEY("max-connections", K_UINT, L(max_connections),
	    "a whole number from 1 to 1000000", .min = 1, .max = 1000000),
	KEY("tcp-fastopen", K_UINT, L(tcp_fastopen),
	    "a TCP Fast Open queue length from 0 (off) to 65535", .max = 65535),
	KEY("allow-insecure-key-perms", K_ENUM, L(allow_insecure_key_perms),
	    "true, false, yes, no, 1 or 0", .vals = bool_vals),
	{ .name = NULL },
};

static const struct key_desc global_keys[] = {
	KEY("workers", K_UINT, G(workers),
	    "a whole number from 0 (one per CPU) to 4096", .max = 4096),
	KEY("log-level", K_ENUM, G(log_level), "error, warning, info or debug", .vals = level_vals),
	KEY("status-listen", K_ADDR_UNIX, G(status_listen),
	    "a local address such as 127.0.0.1:9443 or unix:/run/kmtls/status.sock"),
	KEY("drain-timeout", K_MS, G(drain_timeout_ms), DURATION, .max = DAY_MS),
	KEY("user", K_STR, G(user), "a user name such as kmtls"),
	KEY("sandbox", K_ENUM, G(sandbox), "on or off", .vals = sandbox_vals),
	KEY("watch-files", K_ENUM, G(watch_files), "yes, no, true, false, 1 or 0",
	    .vals = bool_vals),
	{ .name = NULL },
};

/* [ratelimit]: what agent/ratelimit.c applies; ports and allow it checks. */
#define R(f) offsetof(struct kmtls_ratelimit_conf, f)

static const struct key_desc ratelimit_keys[] = {
	KEY("interfaces", K_WORDS, R(interfaces), "interface names such as eth0 eth1"),
	KEY("xdp-mode", K_ENUM, R(xdp_mode), "auto, native or skb", .vals = xdp_vals),
	KEY("ports", K_STR, R(ports), "TCP ports such as 443,8443"),
	KEY("mode", K_ENUM, R(mode), "enforce or monitor", .vals = rl_mode_vals),
	KEY("rate", K_UINT, R(rate),
	    "ClientHellos per second per source, 0 (no limit) to 10000000", .max = 10000000),
	KEY("burst", K_UINT, R(burst), "a whole number from 1 to 10000000",
	    .min = 1, .max = 10000000),
	KEY("global-rate", K_UINT, R(global_rate),
	    "ClientHellos per second from all sources, 0 (no limit) to 100000000",
	    .max = 100000000),
	KEY("global-burst", K_UINT, R(global_burst), "a whole number from 1 to 100000000",
	    .min = 1, .max = 100000000),
	KEY("prefix4", K_UINT, R(prefix4), "an IPv4 prefix length from 1 to 32",
	    .min = 1, .max = 32),
	KEY("prefix6", K_UINT, R(prefix6), "an IPv6 prefix length from 1 to 128",
	    .min = 1, .max = 128),
	KEY("allow", K_WORDS, R(allow), "prefixes such as 192.0.2.0/24 2001:db8::/48"),
	KEY("force", K_ENUM, R(force), "true, false, yes, no, 1 or 0", .vals = bool_vals),
	{ .name = NULL },
};

/*
 * [kernel NAME]: the listener keys that mean the same for a kernel profile
 * (the listener table's entries are used, so syntax and errors are the
 * same), then the keys of its own. struct kmtls_kernel_conf starts with its
 * struct kmtls_listener_conf, so the listener offsets hold for it as well.
 */
static const char *const kernel_shared[] = {
	"server-name", "cert", "key", "ca", "crl", "allow-uri", "allow-dns",
	"allow-cn", "tls-min", "ciphers", "groups", "allow-insecure-key-perms",
};

#define K(f) offsetof(struct kmtls_kernel_conf, f)

static const struct key_desc kernel_own[] = {
	KEY("allow-uid", K_UIDS, K(allow_uid),
	    "uids or user names, comma-separated (an unknown user is refused)"),
	{ .name = NULL },
};

_Static_assert(offsetof(struct kmtls_kernel_conf, tls) == 0,
	       "kernel profiles reuse the listener key offsets");
_Static_assert(sizeof(listener_keys) / sizeof(listener_keys[0]) <= MAX_KEYS,
	       "conf_ctx.seen too small");
_Static_assert(sizeof(ratelimit_keys) / sizeof(ratelimit_keys[0]) <= MAX_KEYS,
	       "conf_ctx.seen too small");
_Static_assert(sizeof(kernel_shared) / sizeof(kernel_shared[0]) +
	       sizeof(kernel_own) / sizeof(kernel_own[0]) <= MAX_KEYS,
	       "conf_ctx.seen too small");

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Strict numbers: digits only (strtoul alone takes blanks, signs and "0x"),
 * then one of the unit suffixes; only durations have more than "".
 */
static int parse_num(const char *s, int duration, unsigned long min,
		     unsigned long max, unsigned long *v)
{
	static const struct { const char *sfx; unsigned long mul; } units[] = {
		{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 },
	};
	size_t i, n = duration ? sizeof(units) / sizeof(units[0]) : 1;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 10);
	for (i = 0; i < n && !errno; i++) {
		if (strcmp(end, units[i].sfx) || *v > max / units[i].mul)
			continue;
		*v *= units[i].mul;
		return *v >= min ? 0 : -1;
	}
	return -1;
}

static int parse_enum(const struct enum_val *vals, const char *s, int *v)
{
	for (; vals->name; vals++) {
		if (!strcasecmp(vals->name, s)) {
			*v = vals->val;
			return 0;
		}
	}
	return -1;
}

/* The same parser the listener binds with, so both agree on syntax. */
static int addr_ok(const char *s, int unix_ok)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char why[256];

	return !kmtls_addr_parse(s, unix_ok, &ss, &len, why, sizeof(why));
}

static int strlist_add(struct kmtls_strlist *sl, const char *s)
{
	char **v = realloc(sl->v, (sl->n + 1) * sizeof(*v));

	if (!v)
		return -1;
	sl->v = v;
	v[sl->n] = strdup(s);
	if (!v[sl->n])
		return -1;
	sl->n++;
	return 0;
}

static void strlist_free(struct kmtls_strlist *sl)
{
	while (sl->n)
		free(sl->v[--sl->n]);
	free(sl->v);
	sl->v = NULL;
}

static char *trim(char *s)
{
	char *end;

	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* "a.pem, b.pem": each item appended; empty items are skipped. */
static int csv_add(struct kmtls_strlist *sl, const char *value)
{
	char *copy = strdup(value), *rest = copy, *item;
	int before = sl->n, ret = 0;

	if (!copy)
		return -1;
	while (!ret && (item = strsep(&rest, ","))) {
		item = trim(item);
		if (*item)
			ret = strlist_add(sl, item);
	}
	free(copy);
	return ret || sl->n == before ? -1 : 0;
}

/* "eth0 eth1", "a, b": each blank- or comma-separated item appended. */
static int words_add(struct kmtls_strlist *sl, const char *value)
{
	char *copy = strdup(value), *rest = copy, *item;
	int before = sl->n, ret = 0;

	if (!copy)
		return -1;
	while (!ret && (item = strsep(&rest, " \t,")))
		if (*item)
			ret = strlist_add(sl, item);
	free(copy);
	return ret || sl->n == before ? -1 : 0;
}

static int (*user_lookup)(const char *name, unsigned int *uid);

void kmtls_config_set_user_lookup(int (*fn)(const char *name, unsigned int *uid))
{
	user_lookup = fn;
}

/* One uid: a number below (uid_t)-1, or an existing user's name. */
static int uid_parse(const char *s, unsigned int *uid)
{
	struct passwd pw, *res = NULL;
	unsigned long v;
	char buf[4096];

	if (isdigit((unsigned char)*s)) {
		if (parse_num(s, 0, 0, 0xfffffffeUL, &v)) {
			errno = 0;	/* a bad value, not a failed lookup */
			return -1;
		}
		*uid = v;
		return 0;
	}
	if (user_lookup)
		return user_lookup(s, uid);
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) || !res) {
		errno = 0;	/* "no such user" is a bad value, not ENOMEM */
		return -1;
	}
	*uid = res->pw_uid;
	return 0;
}

/* "0, www-data, 1000": each item appended; empty items are skipped. */
static int uids_add(struct kmtls_uidlist *ul, const char *value)
{
	struct kmtls_strlist items = { NULL, 0 };
	unsigned int *v;
	int i, ret;

	ret = csv_add(&items, value);
	for (i = 0; !ret && i < items.n; i++) {
		v = realloc(ul->v, (ul->n + 1) * sizeof(*v));
		if (!v) {
			ret = -1;
			break;
		}
		ul->v = v;
		ret = uid_parse(items.v[i], &v[ul->n]);
		ul->n += !ret;
	}
	strlist_free(&items);
	return ret;
}

/* Parse value into its field; -1 if it is not acceptable. */
static int key_parse(const struct key_desc *d, void *field, const char *value)
{
	unsigned long v;
	char *s;

	switch (d->type) {
	case K_ADDR:
	case K_ADDR_UNIX:
		if (!addr_ok(value, d->type == K_ADDR_UNIX))
			return -1;
		/* fall through */
	case K_STR:
		if (!*value || !(s = strdup(value)))
			return -1;
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	case K_LIST:
		return *value ? strlist_add(field, value) : -1;
	case K_CSV:
		return csv_add(field, value);
	case K_ENUM:
		return parse_enum(d->vals, value, field);
	case K_MS:
	case K_UINT:
		if (parse_num(value, d->type == K_MS, d->min, d->max, &v))
			return -1;
		*(unsigned int *)field = v;
		return 0;
	case K_UIDS:
		return uids_add(field, value);
	case K_WORDS:
		return words_add(field, value);
	}
	return -1;
}

/* Keys compare with '-' and '_' as the same character. */
static int key_eq(const char *canon, const char *key)
{
	for (; *canon && *key; canon++, key++)
		if (*canon != *key && !(*canon == '-' && *key == '_'))
			return 0;
	return *canon == *key;
}

static const struct key_desc *key_find(const struct key_desc *tab,
				       const char *key)
{
	for (; tab->name; tab++)
		if (key_eq(tab->name, key))
			return tab;
	return NULL;
}

static int table_set(const struct key_desc *tab, void *base, const char *key,
		     const char *value, char *err, size_t len)
{
	const struct key_desc *d = key_find(tab, key);
	char what[512];
	size_t n = 0;

	if (!d) {
		for (d = tab; d->name && n < sizeof(what); d++)
			n += snprintf(what + n, sizeof(what) - n, "%s%s",
				      d == tab ? "" : ", ", d->name);
		return fail(err, len, "%s = \"%s\": unknown key; accepted keys are %s",
			    key, value, what);
	}
	errno = 0;
	if (!key_parse(d, (char *)base + d->off, value))
		return 0;
	if (errno == ENOMEM)
		return fail(err, len, "%s = \"%s\": out of memory", key, value);
	if (d->type == K_UIDS && errno)	/* a user name lookup that could not be made */
		return fail(err, len, "%s = \"%s\": cannot look up user names: %s",
			    key, value, strerror(errno));
	return fail(err, len, "%s = \"%s\": expected %s", key, value, d->what);
}

int kmtls_listener_init(struct kmtls_listener_conf *l, const char *name)
{
	memset(l, 0, sizeof(*l));
	l->ktls = KMTLS_KTLS_AUTO;
	l->proxy_protocol = KMTLS_PROXY_NONE;
	l->tls_min = 0x0304;	/* TLS 1.2 is opt-in */
	l->handshake_timeout_ms = 10000;
	l->idle_timeout_ms = 300000;
	l->connect_timeout_ms = 5000;
	l->max_connections = 10000;
	l->name = strdup(name);
	return l->name ? 0 : -1;
}

int kmtls_listener_set(struct kmtls_listener_conf *l, const char *key,
		       const char *value, char *err, size_t errlen)
{
	return table_set(listener_keys, l, key, value, err, errlen);
}

int kmtls_config_set_global(struct kmtls_config *cfg, const char *key, const char *value,
			    char *err, size_t errlen)
{
	return table_set(global_keys, cfg, key, value, err, errlen);
}

int kmtls_listener_key_repeats(const char *key)
{
	const struct key_desc *d = key_find(listener_keys, key);

	return d && (d->type == K_LIST || d->type == K_CSV || d->type == K_UIDS ||
		     d->type == K_WORDS);
}

/* Table-driven, so a key added to the table cannot be forgotten here. */
static void listener_free(struct kmtls_listener_conf *l)
{
	const struct key_desc *d;

	for (d = listener_keys; d->name; d++) {
		if (d->type <= K_ADDR_UNIX)
			free(*(char **)((char *)l + d->off));
		else if (d->type <= K_CSV)
			strlist_free((void *)((char *)l + d->off));
	}
	free(l->name);
}

/* The kernel table: kernel_shared[]'s listener entries, then kernel_own[]. */
static const struct key_desc *kernel_keys(void)
{
	static struct key_desc tab[MAX_KEYS + 1];
	size_t i, n = 0;

	if (tab[0].name)
		return tab;
	for (i = 0; i < sizeof(kernel_shared) / sizeof(kernel_shared[0]); i++)
		tab[n++] = *key_find(listener_keys, kernel_shared[i]);
	for (i = 0; kernel_own[i].name; i++)
		tab[n++] = kernel_own[i];
	return tab;
}

static void kernel_free(struct kmtls_kernel_conf *k)
{
	listener_free(&k->tls);
	free(k->allow_uid.v);
	k->allow_uid.v = NULL;
	k->allow_uid.n = 0;
}

const struct kmtls_kernel_conf *kmtls_config_kernel(const struct kmtls_config *cfg,
						    const char *name)
{
	int i;

	for (i = 0; i < cfg->n_kernels; i++)
		if (!strcmp(cfg->kernels[i].tls.name, name))
			return &cfg->kernels[i];
	return NULL;
}

static struct kmtls_kernel_conf *add_kernel(struct kmtls_config *cfg, const char *name)
{
	struct kmtls_kernel_conf *v, *k;

	v = realloc(cfg->kernels, (cfg->n_kernels + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cfg->kernels = v;
	k = &v[cfg->n_kernels];
	memset(k, 0, sizeof(*k));
	if (kmtls_listener_init(&k->tls, name))
		return NULL;
	k->tls.ktls = KMTLS_KTLS_REQUIRE;
	cfg->n_kernels++;
	return k;
}

struct kmtls_listener_conf *kmtls_config_add_listener(struct kmtls_config *cfg,
						      const char *name)
{
	struct kmtls_listener_conf *v;

	v = realloc(cfg->listeners, (cfg->n_listeners + 1) * sizeof(*v));
	if (!v)
		return NULL;
	cfg->listeners = v;
	if (kmtls_listener_init(&v[cfg->n_listeners], name))
		return NULL;
	return &v[cfg->n_listeners++];
}

void kmtls_config_free(struct kmtls_config *cfg)
{
	while (cfg->n_listeners)
		listener_free(&cfg->listeners[--cfg->n_listeners]);
	free(cfg->listeners);
	cfg->listeners = NULL;
	while (cfg->n_kernels)
		kernel_free(&cfg->kernels[--cfg->n_kernels]);
	free(cfg->kernels);
	cfg->kernels = NULL;
	strlist_free(&cfg->ratelimit.interfaces);
	strlist_free(&cfg->ratelimit.allow);
	free(cfg->ratelimit.ports);
	cfg->ratelimit.ports = NULL;
	free(cfg->status_listen);
	cfg->status_listen = NULL;
	free(cfg->user);
	cfg->user = NULL;
	free(cfg->path);
	cfg->path = NULL;
	strlist_free(&cfg->cmdline);
}

/* ------------------------------------------------------------------ */
/* Reload: comparing and moving values key by key                     */

static const struct key_desc *table_of(enum kmtls_conf_table t)
{
	return t == KMTLS_CONF_GLOBAL ? global_keys :
	       t == KMTLS_CONF_LISTENER ? listener_keys : kernel_keys();
}

static size_t key_size(enum key_type type)
{
	switch (type) {
	case K_STR:
	case K_ADDR:
	case K_ADDR_UNIX:
		return sizeof(char *);
	case K_LIST:
	case K_CSV:
	case K_WORDS:
		return sizeof(struct kmtls_strlist);
	case K_UIDS:
		return sizeof(struct kmtls_uidlist);
	case K_ENUM:
		return sizeof(int);
	case K_MS:
	case K_UINT:
		return sizeof(unsigned int);
	}
	return 0;
}

/* A value as the file would spell it; lists comma-separated. */
static void key_format(const struct key_desc *d, const void *field, char *buf,
		       size_t len)
{
	const struct kmtls_strlist *sl = field;
	const struct kmtls_uidlist *ul = field;
	const struct enum_val *e;
	size_t n = 0;
	int i;

	buf[0] = '\0';
	switch (d->type) {
	case K_STR:
	case K_ADDR:
	case K_ADDR_UNIX:
		snprintf(buf, len, "%s", *(char *const *)field ? *(char *const *)field : "");
		return;
	case K_LIST:
	case K_CSV:
	case K_WORDS:
		for (i = 0; i < sl->n && n < len; i++)
			n += snprintf(buf + n, len - n, "%s%s", i ? ", " : "", sl->v[i]);
		return;
	case K_UIDS:
		for (i = 0; i < ul->n && n < len; i++)
			n += snprintf(buf + n, len - n, "%s%u", i ? ", " : "", ul->v[i]);
		return;
	case K_ENUM:
		for (e = d->vals; e->name; e++)
			if (e->val == *(const int *)field)
				break;
		snprintf(buf, len, "%s", e->name ? e->name : "?");
		return;
	case K_MS:
		snprintf(buf, len, "%ums", *(const unsigned int *)field);
		return;
	case K_UINT:
		snprintf(buf, len, "%u", *(const unsigned int *)field);
		return;
	}
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int key_equal(const struct key_desc *d, const void *a, const void *b)
{
	const struct kmtls_strlist *sa = a, *sb = b;
	const struct kmtls_uidlist *ua = a, *ub = b;
	int i;

	switch (d->type) {
	case K_STR:
	case K_ADDR:
	case K_ADDR_UNIX:
		return str_eq(*(char *const *)a, *(char *const *)b);
	case K_LIST:
	case K_CSV:
	case K_WORDS:
		for (i = 0; sa->n == sb->n && i < sa->n; i++)
			if (strcmp(sa->v[i], sb->v[i]))
				return 0;
		return sa->n == sb->n;
	case K_UIDS:
		return ua->n == ub->n &&
		       (!ua->n || !memcmp(ua->v, ub->v, ua->n * sizeof(*ua->v)));
	case K_ENUM:
	case K_MS:
	case K_UINT:
		return !memcmp(a, b, key_size(d->type));
	}
	return 0;
}

void kmtls_config_diff(enum kmtls_conf_table t, const void *a, const void *b,
		       void (*fn)(void *arg, const char *key, const char *was,
				  const char *now),
		       void *arg)
{
	const struct key_desc *d;
	char was[512], now[512];

	for (d = table_of(t); d->name; d++) {
		if (key_equal(d, (const char *)a + d->off, (const char *)b + d->off))
			continue;
		key_format(d, (const char *)a + d->off, was, sizeof(was));
		key_format(d, (const char *)b + d->off, now, sizeof(now));
		fn(arg, d->name, was, now);
	}
}

int kmtls_config_copy_key(enum kmtls_conf_table t, void *dst, const void *src,
			  const char *key)
{
	const struct key_desc *d = key_find(table_of(t), key);

	if (!d)
		return -1;
	memcpy((char *)dst + d->off, (const char *)src + d->off, key_size(d->type));
	return 0;
}

int kmtls_config_swap_key(enum kmtls_conf_table t, void *a, void *b,
			  const char *key)
{
	const struct key_desc *d = key_find(table_of(t), key);
	unsigned char tmp[sizeof(struct kmtls_strlist) + sizeof(struct kmtls_uidlist)];
	size_t n;

	if (!d)
		return -1;
	n = key_size(d->type);
	memcpy(tmp, (char *)a + d->off, n);
	memcpy((char *)a + d->off, (char *)b + d->off, n);
	memcpy((char *)b + d->off, tmp, n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* INI file                                                           */

enum sec_kind { SEC_NONE, SEC_GLOBAL, SEC_LISTENER, SEC_KERNEL, SEC_RATELIMIT, SEC_BAD };

struct conf_ctx {
	struct kmtls_config *cfg;
	const char *path;
	FILE *f;
	int lineno;		/* line the reader handed to libinih last */
	enum sec_kind kind;
	int cur;		/* listener or kernel profile index */
	int seen_global;
	char section[MAX_NAME + 16];
	int seen[MAX_KEYS];	/* line each single-valued key was set on */
	int err_line;		/* first error wins: later ones may be fallout */
	char err[1024];
};

/* Record the first error with its place; returns 0 for libinih. */
__attribute__((format(printf, 2, 3)))
static int conf_error(struct conf_ctx *ctx, const char *fmt, ...)
{
	int in_sec = ctx->kind == SEC_GLOBAL || ctx->kind == SEC_LISTENER ||
		     ctx->kind == SEC_KERNEL || ctx->kind == SEC_RATELIMIT;
	va_list ap;
	int n;

	if (ctx->err_line)
		return 0;
	ctx->err_line = ctx->lineno;
	n = snprintf(ctx->err, sizeof(ctx->err), "%s:%d: %s%s%s", ctx->path,
		     ctx->lineno, in_sec ? "[" : "", in_sec ? ctx->section : "",
		     in_sec ? "] " : "");
	if (n < 0 || (size_t)n >= sizeof(ctx->err))
		return 0;	/* a path that long leaves no room anyway */
	va_start(ap, fmt);
	vsnprintf(ctx->err + n, sizeof(ctx->err) - n, fmt, ap);
	va_end(ap);
	return 0;
}

static int name_ok(const char *s)
{
	return *s && strlen(s) <= MAX_NAME && strspn(s,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(s);
}

static void conf_listener(struct conf_ctx *ctx, const char *name)
{
	int i;

	if (!name_ok(name)) {
		conf_error(ctx, "[listener %s]: a listener needs a name of at most %d letters, digits, '.', '_' or '-'",
			   name, MAX_NAME);
		return;
	}
	for (i = 0; i < ctx->cfg->n_listeners; i++) {
		if (!strcmp(ctx->cfg->listeners[i].name, name)) {
			conf_error(ctx, "[listener %s] appears twice: listener names must be unique",
				   name);
			return;
		}
	}
	if (!kmtls_config_add_listener(ctx->cfg, name)) {
		conf_error(ctx, "[listener %s]: out of memory", name);
		return;
	}
	ctx->cur = ctx->cfg->n_listeners - 1;
	ctx->kind = SEC_LISTENER;
	snprintf(ctx->section, sizeof(ctx->section), "listener %s", name);
}

/* [kernel NAME]: NAME is what applications pass as their profile. */
static void conf_kernel(struct conf_ctx *ctx, const char *name)
{
	if (!*name) {
		conf_error(ctx, "[kernel]: a kernel profile needs a name; [kernel default] serves requests that name no profile");
		return;
	}
	if (!name_ok(name) || strlen(name) >= KMTLS_PROFILE_MAX) {
		conf_error(ctx, "[kernel %s]: a kernel profile needs a name of at most %d letters, digits, '.', '_' or '-'",
			   name, KMTLS_PROFILE_MAX - 1);
		return;
	}
	if (kmtls_config_kernel(ctx->cfg, name)) {
		conf_error(ctx, "[kernel %s] appears twice: kernel profile names must be unique",
			   name);
		return;
	}
	if (!add_kernel(ctx->cfg, name)) {
		conf_error(ctx, "[kernel %s]: out of memory", name);
		return;
	}
	ctx->cur = ctx->cfg->n_kernels - 1;
	ctx->kind = SEC_KERNEL;
	snprintf(ctx->section, sizeof(ctx->section), "kernel %s", name);
}

/* [ratelimit]: absent keys keep what is pinned (KMTLS_RL_KEEP, -1, NULL). */
static void conf_ratelimit(struct conf_ctx *ctx)
{
	struct kmtls_ratelimit_conf *r = &ctx->cfg->ratelimit;

	if (r->present++) {
		conf_error(ctx, "[ratelimit] appears twice: merge the two sections");
		return;
	}
	ctx->kind = SEC_RATELIMIT;
	strcpy(ctx->section, "ratelimit");
	r->xdp_mode = KMTLS_XDP_AUTO;
	r->mode = -1;
	r->rate = r->burst = r->global_rate = r->global_burst = KMTLS_RL_KEEP;
	r->prefix4 = r->prefix6 = KMTLS_RL_KEEP;
}

/* "listener web" -> "web" when @s is @word alone or followed by a blank. */
static const char *section_arg(const char *s, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(s, word, n) || (s[n] && !isspace((unsigned char)s[n])))
		return NULL;
	return s + n;
}

/* A "[...]" line; libinih itself reports one without its ']'. */
static void conf_section(struct conf_ctx *ctx, const char *line)
{
	const char *end = strchr(line, ']'), *after;
	char buf[MAX_LINE], *name;
	const char *arg;

	ctx->kind = SEC_BAD;
	memset(ctx->seen, 0, sizeof(ctx->seen));
	if (!end)
		return;
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - line - 1), line + 1);
	name = trim(buf);
	/* libinih drops whatever follows "]": only a comment may. */
	after = end + 1 + strspn(end + 1, " \t\r\n");
	if (*after && *after != ';' && *after != '#') {
		conf_error(ctx, "[%s] is followed by \"%.*s\": a section header stands alone on its line",
			   name, (int)strcspn(after, "\r\n"), after);
		return;
	}
	if (!strcmp(name, "kmtlsd")) {
		if (ctx->seen_global++)
			conf_error(ctx, "[kmtlsd] appears twice: merge the two sections");
		ctx->kind = SEC_GLOBAL;
		strcpy(ctx->section, "kmtlsd");
	} else if (!strcmp(name, "ratelimit")) {
		conf_ratelimit(ctx);
	} else if ((arg = section_arg(name, "listener"))) {
		conf_listener(ctx, trim((char *)arg));
	} else if ((arg = section_arg(name, "kernel"))) {
		conf_kernel(ctx, trim((char *)arg));
	} else {
		conf_error(ctx, "unknown section [%s]: expected [kmtlsd], [listener NAME], [kernel NAME] or [ratelimit]",
			   name);
	}
}

/* fgets for libinih: counts lines, sees sections, strips indentation. */
static char *conf_read_line(char *buf, int size, void *stream)
{
	struct conf_ctx *ctx = stream;
	size_t n, skip = 0;

	if (!fgets(buf, size, ctx->f))
		return NULL;
	ctx->lineno++;
	n = strlen(buf);
	/* libinih would read the rest as a line of its own. */
	if (n && buf[n - 1] != '\n' && !feof(ctx->f))
		conf_error(ctx, "line longer than %d characters", size - 2);
	if (ctx->lineno == 1 && !strncmp(buf, "\xef\xbb\xbf", 3))
		skip = 3;
	skip += strspn(buf + skip, " \t");
	memmove(buf, buf + skip, n - skip + 1);
	if (buf[0] == '[')
		conf_section(ctx, buf);
	return buf;
}

static int conf_key(struct conf_ctx *ctx, const struct key_desc *tab,
		    void *base, const char *key, const char *value)
{
	const struct key_desc *d = key_find(tab, key);
	char msg[sizeof(ctx->err)];
	const char *hash = strstr(value, " #") ?: strstr(value, "\t#");

	/*
	 * inih ends a value at " ;" only: "x # note" would be the value
	 * "x # note", an allow-list entry matching nobody. Paths, names and
	 * subject CNs may hold " #" ("Build Agent #3"); nothing else can.
	 */
	if (hash && d && d->type != K_STR && !key_eq("allow-cn", d->name) &&
	    !key_eq("crl", d->name))
		return conf_error(ctx, "%s = \"%s\": a comment after a value starts with ';' (a '#' comment needs a line of its own)",
				  key, value);
	if (d && d->type != K_LIST && d->type != K_CSV && d->type != K_UIDS &&
	    d->type != K_WORDS) {
		if (ctx->seen[d - tab])
			return conf_error(ctx, "%s is set twice (first on line %d): keep one",
					  key, ctx->seen[d - tab]);
		ctx->seen[d - tab] = ctx->lineno;
	}
	if (table_set(tab, base, key, value, msg, sizeof(msg)))
		return conf_error(ctx, "%s", msg);
	return 1;
}

static int conf_handler(void *user, const char *section, const char *key,
			const char *value)
{
	struct conf_ctx *ctx = user;

	(void)section;	/* conf_section() has tracked it already */
	switch (ctx->kind) {
	case SEC_GLOBAL:
		return conf_key(ctx, global_keys, ctx->cfg, key, value);
	case SEC_LISTENER:
		return conf_key(ctx, listener_keys,
				&ctx->cfg->listeners[ctx->cur], key, value);
	case SEC_KERNEL:
		if (key_eq("ktls", key))
			return conf_error(ctx, "ktls = \"%s\": a kernel profile always requires kTLS (a request that cannot have it fails with EOPNOTSUPP): remove the key",
					  value);
		return conf_key(ctx, kernel_keys(), &ctx->cfg->kernels[ctx->cur],
				key, value);
	case SEC_RATELIMIT:
		return conf_key(ctx, ratelimit_keys, &ctx->cfg->ratelimit, key, value);
	case SEC_NONE:
		return conf_error(ctx, "%s = \"%s\" is outside any section: put it under [kmtlsd], [listener NAME] or [kernel NAME]",
				  key, value);
	default:
		return 1;	/* the bad section header was reported */
	}
}

static int conf_parse(struct conf_ctx *ctx, char *err, size_t errlen)
{
	int saved = ini_max_line;
	int ret;

	ini_max_line = MAX_LINE;	/* a run-time knob in Debian's libinih */
	ret = ini_parse_stream(conf_read_line, ctx, conf_handler, ctx);
	ini_max_line = saved;
	if (ferror(ctx->f))
		return fail(err, errlen, "%s: read error", ctx->path);
	if (ret > 0 && (!ctx->err_line || ret < ctx->err_line))
		return fail(err, errlen, "%s:%d: syntax error: expected [section], key = value or a comment",
			    ctx->path, ret);
	if (ctx->err_line)
		return fail(err, errlen, "%s", ctx->err);
	if (ret)
		return fail(err, errlen, "%s: out of memory", ctx->path);
	return 0;
}

int kmtls_config_load(struct kmtls_config *cfg, const char *path, char *err,
		      size_t errlen)
{
	struct conf_ctx ctx = { .cfg = cfg, .path = path };
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_INFO;
	cfg->drain_timeout_ms = 30000;
	cfg->path = strdup(path);
	ctx.f = cfg->path ? fopen(path, "re") : NULL;
	if (!ctx.f) {
		fail(err, errlen, "cannot open %s: %s", path, strerror(errno));
		kmtls_config_free(cfg);	/* the path */
		return -1;
	}
	ret = conf_parse(&ctx, err, errlen);
	fclose(ctx.f);
	if (ret)
		kmtls_config_free(cfg);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Validation                                                         */

/*
 * Open like the TLS code will (O_NONBLOCK: a FIFO must not hang us). @sec
 * is the section as errors name it: "listener web", "kernel default".
 */
static int check_path(const char *sec, const char *key, const char *path,
		      int dir_ok, struct stat *st, char *err, size_t len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return fail(err, len, "[%s] %s %s cannot be read: %s",
			    sec, key, path, strerror(errno));
	ret = fstat(fd, st);
	close(fd);
	if (ret)
		return fail(err, len, "[%s] %s %s: %s", sec, key, path,
			    strerror(errno));
	if (S_ISREG(st->st_mode) || (dir_ok && S_ISDIR(st->st_mode)))
		return 0;
	return fail(err, len, "[%s] %s %s is not a regular file%s",
		    sec, key, path, dir_ok ? " or a directory" : "");
}

static int check_files(const struct kmtls_listener_conf *l, const char *sec,
		       char *err, size_t len)
{
	struct stat st;
	mode_t m;
	int i;

	for (i = 0; i < l->crl.n; i++)
		if (check_path(sec, "crl", l->crl.v[i], 0, &st, err, len))
			return -1;
	/* The key last: its mode is what st holds below. */
	if (check_path(sec, "cert", l->cert, 0, &st, err, len) ||
	    check_path(sec, "ca", l->ca, 1, &st, err, len) ||
	    check_path(sec, "key", l->key, 0, &st, err, len))
		return -1;
	m = st.st_mode & 07777;
	if (!(m & 066) || l->allow_insecure_key_perms)
		return 0;
	return fail(err, len, "[%s] private key %s is %s by group/others (mode %04o): run chmod 600 %s (or set allow-insecure-key-perms)",
		    sec, l->key, (m & 044) ? "readable" : "writable", m, l->key);
}

static int check_addr(const struct kmtls_listener_conf *l, const char *key,
		      const char *addr, char *err, size_t len)
{
	const struct key_desc *d = key_find(listener_keys, key);

	if (addr_ok(addr, d->type == K_ADDR_UNIX))
		return 0;
	return fail(err, len, "[listener %s] %s = \"%s\": expected %s", l->name,
		    key, addr, d->what);
}

static int check_listener(const struct kmtls_listener_conf *l, char *err,
			  size_t len)
{
	const char *need[] = { "listen", "backend", "cert", "key", "ca" };
	const char *have[] = { l->listen, l->backend, l->cert, l->key, l->ca };
	char sec[MAX_NAME + 16];
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!have[i])
			return fail(err, len, "[listener %s] has no %s: listen, backend, cert, key and ca are required",
				    l->name, need[i]);
	if (check_addr(l, "listen", l->listen, err, len) ||
	    check_addr(l, "backend", l->backend, err, len))
		return -1;
	/* kTLS lives on TCP sockets: the TLS side of a listener must be TCP. */
	if (l->mode == KMTLS_MODE_TERMINATE && !strncmp(l->listen, "unix:", 5))
		return fail(err, len, "[listener %s] listen = \"%s\": a terminating listener accepts TLS over TCP; unix: is for originate mode",
			    l->name, l->listen);
	if (l->tcp_fastopen && !strncmp(l->listen, "unix:", 5))
		return fail(err, len, "[listener %s] tcp-fastopen = %u: TCP Fast Open needs a TCP listen address, not \"%s\": remove the key",
			    l->name, l->tcp_fastopen, l->listen);
	if (l->mode == KMTLS_MODE_ORIGINATE && !strncmp(l->backend, "unix:", 5))
		return fail(err, len, "[listener %s] backend = \"%s\": originate mode speaks TLS to the backend, which needs TCP",
			    l->name, l->backend);
	if (l->mode == KMTLS_MODE_ORIGINATE && !l->server_name)
		return fail(err, len, "[listener %s] originate mode needs server-name: the name the server's certificate must carry",
			    l->name);
	snprintf(sec, sizeof(sec), "listener %s", l->name);
	return check_files(l, sec, err, len);
}

static int check_kernel(const struct kmtls_config *cfg,
			const struct kmtls_kernel_conf *k, char *err, size_t len)
{
	const struct kmtls_listener_conf *l = &k->tls;
	const char *need[] = { "cert", "key", "ca" };
	const char *have[] = { l->cert, l->key, l->ca };
	char sec[MAX_NAME + 16];
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!have[i])
			return fail(err, len, "[kernel %s] has no %s: cert, key and ca are required",
				    l->name, need[i]);
	/* ACCEPT, DONE and group agents are CAP_NET_ADMIN, which a uid switch drops. */
	if (cfg->user)
		return fail(err, len, "[kernel %s]: the kernel service needs CAP_NET_ADMIN, which user = \"%s\" in [kmtlsd] gives up: remove one or the other",
			    l->name, cfg->user);
	snprintf(sec, sizeof(sec), "kernel %s", l->name);
	return check_files(l, sec, err, len);
}

int kmtls_config_validate(const struct kmtls_config *cfg, char *err,
			  size_t errlen)
{
	const struct kmtls_listener_conf *l;
	int i, j;

	if (!cfg->n_listeners && !cfg->n_kernels)
		return fail(err, errlen, "no listener and no kernel profile: add a [listener NAME] section with listen, backend, cert, key and ca, or a [kernel NAME] section with cert, key and ca");
	for (i = 0; i < cfg->n_kernels; i++)
		if (check_kernel(cfg, &cfg->kernels[i], err, errlen))
			return -1;
	for (i = 0; i < cfg->n_listeners; i++) {
		l = &cfg->listeners[i];
		if (check_listener(l, err, errlen))
			return -1;
		/* SO_REUSEPORT would let both bind and split the traffic. */
		for (j = 0; j < i; j++)
			if (kmtls_addr_same(cfg->listeners[j].listen, l->listen))
				return fail(err, errlen, "[listener %s] listen = \"%s\" is already used by [listener %s]: each listener needs its own address",
					    l->name, l->listen, cfg->listeners[j].name);
		if (cfg->status_listen && kmtls_addr_same(cfg->status_listen, l->listen))
			return fail(err, errlen, "[kmtlsd] status-listen = \"%s\" is [listener %s]'s address too: give the status endpoint its own",
				    cfg->status_listen, l->name);
	}
	return 0;
}

int kmtls_strlist_has(const struct kmtls_strlist *l, const char *s)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}
