// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd.conf: every key parsed into struct kmtls_config, every bad value
 * refused with file:line, section and key, and validation of addresses,
 * files and private key permissions.
 *
 * Each test writes its config into a fresh mkdtemp() directory next to
 * empty stand-ins for the PEM files: validation only opens and stats them
 * (the TLS context code parses them), so real certificates are not needed.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "../../agent/config.h"
#include "../../agent/ratelimit.h"
#include "kselftest_harness.h"

/*
 * The harness ends each test with _exit(), which skips LeakSanitizer's
 * exit-time check: ask for it explicitly at teardown under ASan.
 */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#define leaks()	__lsan_do_recoverable_leak_check()
#else
#define leaks()	0
#endif

/* The required keys; "$D" stands for the scratch directory. */
/* [listener NAME] on ADDR, with EXTRA lines ("" for none). */
#define AT(name, extra, addr)						\
	"[listener " name "]\n" extra "listen = " addr "\n"		\
	"backend = 127.0.0.1:8080\ncert = $D/server.pem\n"		\
	"key = $D/server.key\nca = $D/ca.pem\n"
#define LISTENER(name) AT(name, "", "127.0.0.1:8443")
#define ORIG "mode = originate\nserver-name = localhost\n"

struct scratch {
	char dir[64];
	char path[128];		/* $D/kmtlsd.conf */
	struct kmtls_config cfg;
	char err[1024];
};

static void put(struct scratch *s, const char *name, mode_t mode)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", s->dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs("stand-in\n", f);
		fclose(f);
	}
	chmod(p, mode);
}

static int scratch_init(struct scratch *s)
{
	char p[256];

	memset(s, 0, sizeof(*s));
	strcpy(s->dir, "/tmp/kmtls-config-XXXXXX");
	if (!mkdtemp(s->dir))
		return -1;
	snprintf(s->path, sizeof(s->path), "%s/kmtlsd.conf", s->dir);
	put(s, "server.pem", 0644);
	put(s, "server.key", 0600);
	put(s, "ca.pem", 0644);
	put(s, "crl1.pem", 0644);
	put(s, "crl2.pem", 0644);
	snprintf(p, sizeof(p), "%s/cadir", s->dir);
	return mkdir(p, 0755);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static void scratch_fini(struct scratch *s)
{
	kmtls_config_free(&s->cfg);
	nftw(s->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Write text with every "$D" replaced by the scratch directory. */
static void write_conf(struct scratch *s, const char *text)
{
	FILE *f = fopen(s->path, "w");
	const char *d;

	if (!f)
		return;
	while ((d = strstr(text, "$D"))) {
		fprintf(f, "%.*s%s", (int)(d - text), text, s->dir);
		text = d + 2;
	}
	fputs(text, f);
	fclose(f);
}

static int load(struct scratch *s, const char *text)
{
	s->err[0] = '\0';
	write_conf(s, text);
	return kmtls_config_load(&s->cfg, s->path, s->err, sizeof(s->err));
}

/* Load and validate: what `kmtlsd --check-config` does. */
static int check(struct scratch *s, const char *text)
{
	if (load(s, text))
		return -1;
	return kmtls_config_validate(&s->cfg, s->err, sizeof(s->err));
}

static int has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

FIXTURE(conf) {
	struct scratch s;
};

FIXTURE_SETUP(conf)
{
	ASSERT_EQ(0, scratch_init(&self->s));
}

FIXTURE_TEARDOWN(conf)
{
	scratch_fini(&self->s);
	EXPECT_EQ(0, leaks());
}

#define S (&self->s)
#define EXPECT_ERR(needle) \
	EXPECT_TRUE(has(S->err, needle)) TH_LOG("want \"%s\" in \"%s\"", needle, S->err)

TEST_F(conf, full_file_round_trips)
{
	const struct kmtls_listener_conf *l;

	ASSERT_EQ(0, check(S,
		"; kmtlsd test configuration\n"
		"[kmtlsd]\n"
		"workers = 2            ; 0 or absent = one per CPU\n"
		"log_level = debug\n"
		"\n"
		"[listener web]\n"
		"listen = 0.0.0.0:8443\n"
		"backend = unix:/run/app.sock\n"
		"cert = $D/server.pem\n"
		"key = $D/server.key\n"
		"ca = $D/cadir\n"
		"crl = $D/crl1.pem\n"
		"allow-uri = spiffe://example.org/*\n"
		"allow-dns = client.example.org\n"
		"allow-cn = client\n"
		"ktls = require\n"
		"proxy_protocol = v2-cert\n"
		"tls_min = 1.3\n"
		"ciphers = TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256\n"
		"groups = X25519:P-256\n"
		"handshake_timeout = 7s\n"
		"idle_timeout = 0\n"
		"connect_timeout = 250ms\n"
		"max_connections = 1000000\n"
		"allow-insecure-key-perms = yes\n")) TH_LOG("%s", S->err);
	EXPECT_EQ(2, S->cfg.workers);
	EXPECT_EQ(LOG_DEBUG, S->cfg.log_level);
	ASSERT_EQ(1, S->cfg.n_listeners);
	l = &S->cfg.listeners[0];
	EXPECT_STREQ("web", l->name);
	EXPECT_STREQ("0.0.0.0:8443", l->listen);
	EXPECT_STREQ("unix:/run/app.sock", l->backend);
	EXPECT_TRUE(has(l->cert, "/server.pem"));
	EXPECT_TRUE(has(l->key, "/server.key"));
	EXPECT_TRUE(has(l->ca, "/cadir"));
	ASSERT_EQ(1, l->crl.n);
	EXPECT_TRUE(has(l->crl.v[0], "/crl1.pem"));
	ASSERT_EQ(1, l->allow_uri.n);
	EXPECT_STREQ("spiffe://example.org/*", l->allow_uri.v[0]);
	ASSERT_EQ(1, l->allow_dns.n);
	EXPECT_STREQ("client.example.org", l->allow_dns.v[0]);
	ASSERT_EQ(1, l->allow_cn.n);
	EXPECT_STREQ("client", l->allow_cn.v[0]);
	EXPECT_EQ((int)KMTLS_KTLS_REQUIRE, (int)l->ktls);
	EXPECT_EQ((int)KMTLS_PROXY_V2_CERT, (int)l->proxy_protocol);
	EXPECT_EQ(0x0304, l->tls_min);
	EXPECT_STREQ("TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256", l->ciphers);
	EXPECT_STREQ("X25519:P-256", l->groups);
	EXPECT_EQ(7000u, l->handshake_timeout_ms);
	EXPECT_EQ(0u, l->idle_timeout_ms);
	EXPECT_EQ(250u, l->connect_timeout_ms);
	EXPECT_EQ(1000000u, l->max_connections);
	EXPECT_EQ(1, l->allow_insecure_key_perms);
}

TEST_F(conf, defaults)
{
	const struct kmtls_listener_conf *l;

	ASSERT_EQ(0, check(S, LISTENER("web"))) TH_LOG("%s", S->err);
	EXPECT_EQ(0, S->cfg.workers);
	EXPECT_EQ(LOG_INFO, S->cfg.log_level);
	l = &S->cfg.listeners[0];
	EXPECT_EQ((int)KMTLS_KTLS_AUTO, (int)l->ktls);
	EXPECT_EQ((int)KMTLS_PROXY_NONE, (int)l->proxy_protocol);
	EXPECT_EQ(0x0304, l->tls_min);	/* TLS 1.3 only unless tls_min = 1.2 */
	EXPECT_EQ(NULL, l->ciphers);
	EXPECT_EQ(NULL, l->groups);
	EXPECT_EQ(0, l->crl.n);
	EXPECT_EQ(0, l->allow_uri.n);
	EXPECT_EQ(10000u, l->handshake_timeout_ms);
	EXPECT_EQ(300000u, l->idle_timeout_ms);
	EXPECT_EQ(5000u, l->connect_timeout_ms);
	EXPECT_EQ(10000u, l->max_connections);
	EXPECT_EQ(0, l->allow_insecure_key_perms);
}

TEST_F(conf, multiple_listeners)
{
	ASSERT_EQ(0, check(S,
		LISTENER("web")
		"[listener api]\n"
		"listen = [::]:9443\n"
		"backend = [::1]:9080\n"
		"cert = $D/server.pem\n"
		"key = $D/server.key\n"
		"ca = $D/ca.pem\n"
		"ktls = off\n"
		"[listener grpc.internal-1]\n"
		"listen = 10.0.0.1:443\n"
		"backend = unix:/run/grpc.sock\n"
		"cert = $D/server.pem\n"
		"key = $D/server.key\n"
		"ca = $D/ca.pem\n")) TH_LOG("%s", S->err);
	ASSERT_EQ(3, S->cfg.n_listeners);
	EXPECT_STREQ("web", S->cfg.listeners[0].name);
	EXPECT_STREQ("api", S->cfg.listeners[1].name);
	EXPECT_STREQ("grpc.internal-1", S->cfg.listeners[2].name);
	EXPECT_STREQ("[::]:9443", S->cfg.listeners[1].listen);
	EXPECT_STREQ("[::1]:9080", S->cfg.listeners[1].backend);
	EXPECT_EQ((int)KMTLS_KTLS_AUTO, (int)S->cfg.listeners[0].ktls);
	EXPECT_EQ((int)KMTLS_KTLS_OFF, (int)S->cfg.listeners[1].ktls);
}

TEST_F(conf, repeatable_keys_append)
{
	const struct kmtls_listener_conf *l;

	ASSERT_EQ(0, check(S,
		LISTENER("web")
		"crl = $D/crl1.pem\n"
		"crl = $D/crl2.pem, $D/crl1.pem ,\n"
		"allow-uri = spiffe://example.org/a/*\n"
		"allow_uri = spiffe://example.org/b\n"
		"allow-dns = a.example.org\n"
		"allow_dns = b.example.org\n"
		"allow-cn = Acme, Inc\n"
		"allow_cn = client\n"
		"allow-cn = Build Agent #3\n")) TH_LOG("%s", S->err);
	l = &S->cfg.listeners[0];
	ASSERT_EQ(3, l->crl.n);
	EXPECT_TRUE(has(l->crl.v[0], "/crl1.pem"));
	EXPECT_TRUE(has(l->crl.v[1], "/crl2.pem"));
	EXPECT_TRUE(has(l->crl.v[2], "/crl1.pem"));
	EXPECT_NE(' ', l->crl.v[2][strlen(l->crl.v[2]) - 1]);
	ASSERT_EQ(2, l->allow_uri.n);
	EXPECT_STREQ("spiffe://example.org/a/*", l->allow_uri.v[0]);
	EXPECT_STREQ("spiffe://example.org/b", l->allow_uri.v[1]);
	ASSERT_EQ(2, l->allow_dns.n);
	EXPECT_STREQ("b.example.org", l->allow_dns.v[1]);
	/* A CN may hold a comma (only crl is split) and " #". */
	ASSERT_EQ(3, l->allow_cn.n);
	EXPECT_STREQ("Acme, Inc", l->allow_cn.v[0]);
	EXPECT_STREQ("Build Agent #3", l->allow_cn.v[2]);
}

TEST_F(conf, durations)
{
	static const struct { const char *v; unsigned int ms; } ok[] = {
		{ "1500", 1500 }, { "250ms", 250 }, { "10s", 10000 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "24h", 86400000 },
		{ "86400s", 86400000 }, { "0", 0 },
	};
	static const char *const bad[] = {
		"", "s", "10x", "10 s", "-1", "+5", " 5", "0x10", "1.5s",
		"86400001", "1441m", "25h", "99999999999999999999s",
	};
	struct kmtls_listener_conf *l = kmtls_config_add_listener(&S->cfg, "cli");
	char *err = S->err;
	size_t i, n = sizeof(S->err);

	ASSERT_NE(NULL, l);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		EXPECT_EQ(0, kmtls_listener_set(l, "idle-timeout", ok[i].v, err, n))
			TH_LOG("%s: %s", ok[i].v, err);
		EXPECT_EQ(ok[i].ms, l->idle_timeout_ms) TH_LOG("%s", ok[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-1, kmtls_listener_set(l, "idle_timeout", bad[i], err, n))
			TH_LOG("accepted \"%s\"", bad[i]);
		EXPECT_TRUE(has(err, "idle_timeout = \"") && has(err, "expected a duration"))
			TH_LOG("%s", err);
	}
	/* Handshakes and connects cannot be instant: 0 is refused there. */
	EXPECT_EQ(-1, kmtls_listener_set(l, "handshake-timeout", "0", err, n));
	EXPECT_EQ(-1, kmtls_listener_set(l, "connect_timeout", "0ms", err, n));
	EXPECT_EQ(0, kmtls_listener_set(l, "connect_timeout", "1", err, n));
	EXPECT_EQ(1u, l->connect_timeout_ms);
}

TEST_F(conf, dash_and_underscore)
{
	static const char *const keys[][2] = {
		{ "proxy-protocol", "proxy_protocol" },
		{ "tls-min", "tls_min" },
		{ "max-connections", "max_connections" },
		{ "allow-insecure-key-perms", "allow_insecure_key_perms" },
		{ "handshake-timeout", "handshake_timeout" },
	};
	static const char *const vals[] = { "v2", "1.3", "77", "true", "3s" };
	struct kmtls_config c = { 0 };
	struct kmtls_listener_conf *a, *b;
	char err[512];
	size_t i;

	ASSERT_NE(NULL, kmtls_config_add_listener(&c, "a"));
	ASSERT_NE(NULL, kmtls_config_add_listener(&c, "b"));
	a = &c.listeners[0];
	b = &c.listeners[1];
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		EXPECT_EQ(0, kmtls_listener_set(a, keys[i][0], vals[i], err, sizeof(err)))
			TH_LOG("%s", err);
		EXPECT_EQ(0, kmtls_listener_set(b, keys[i][1], vals[i], err, sizeof(err)))
			TH_LOG("%s", err);
	}
	EXPECT_EQ((int)KMTLS_PROXY_V2, (int)a->proxy_protocol);
	EXPECT_EQ((int)a->proxy_protocol, (int)b->proxy_protocol);
	EXPECT_EQ(0x0304, b->tls_min);
	EXPECT_EQ(77u, b->max_connections);
	EXPECT_EQ(1, b->allow_insecure_key_perms);
	EXPECT_EQ(3000u, b->handshake_timeout_ms);
	EXPECT_EQ(0, memcmp((char *)a + sizeof(a->name), (char *)b + sizeof(b->name),
			    sizeof(*a) - sizeof(a->name)));
	/* Only '-' and '_' are interchangeable. */
	EXPECT_EQ(-1, kmtls_listener_set(a, "tls.min", "1.2", err, sizeof(err)));
	EXPECT_EQ(-1, kmtls_listener_set(a, "proxyprotocol", "v2", err, sizeof(err)));
	kmtls_config_free(&c);
	/* And in the [kmtlsd] section. */
	ASSERT_EQ(0, load(S, "[kmtlsd]\nlog-level = warning\n" LISTENER("x")))
		TH_LOG("%s", S->err);
	EXPECT_EQ(LOG_WARNING, S->cfg.log_level);
}

TEST_F(conf, set_reports_key_and_value)
{
	static const char *const flags[][2] = {
		{ "listen", "[::1]:1" }, { "listen", "127.0.0.1:2" },
		{ "backend", "unix:/x" }, { "cert", "c" }, { "key", "k" },
		{ "ca", "a" }, { "crl", "r" }, { "allow-uri", "u" },
		{ "allow-dns", "d" }, { "allow-cn", "n" }, { "ktls", "AUTO" },
		{ "proxy-protocol", "none" }, { "tls-min", "1.2" },
		{ "ciphers", "A:B" }, { "groups", "X25519" },
		{ "handshake-timeout", "1s" }, { "idle-timeout", "1s" },
		{ "connect-timeout", "1s" }, { "max-connections", "1" },
		{ "allow-insecure-key-perms", "0" },
	};
	struct kmtls_listener_conf *l = kmtls_config_add_listener(&S->cfg, "cli");
	char err[512];
	size_t i;
	int ret;

	ASSERT_NE(NULL, l);
	EXPECT_EQ(-1, kmtls_listener_set(l, "ktls", "maybe", err, sizeof(err)));
	EXPECT_STREQ("ktls = \"maybe\": expected auto, require or off", err);
	EXPECT_EQ(-1, kmtls_listener_set(l, "frobnicate", "1", err, sizeof(err)));
	EXPECT_TRUE(has(err, "frobnicate = \"1\": unknown key; accepted keys are listen, backend"))
		TH_LOG("%s", err);
	/* Every flag the daemon documents is a key; strings replace. */
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		ret = kmtls_listener_set(l, flags[i][0], flags[i][1], err, sizeof(err));
		if (ret)
			TH_LOG("%s", err);
		EXPECT_EQ(0, ret);
	}
	EXPECT_STREQ("127.0.0.1:2", l->listen);
}

TEST_F(conf, layout_is_forgiving)
{
	ASSERT_EQ(0, check(S,
		"\xef\xbb\xbf# written on Windows\n"
		"  [kmtlsd]  ; main\n"
		"\tworkers=4\n"
		"[ listener  web ]\n"
		"    listen   =   127.0.0.1:8443   ; inline comment\n"
		"    backend = 127.0.0.1:8080\n"
		"    cert = $D/server.pem\n"
		"    key = $D/server.key\n"
		"    ca = $D/ca.pem\n")) TH_LOG("%s", S->err);
	EXPECT_EQ(4, S->cfg.workers);
	ASSERT_EQ(1, S->cfg.n_listeners);
	EXPECT_STREQ("web", S->cfg.listeners[0].name);
	EXPECT_STREQ("127.0.0.1:8443", S->cfg.listeners[0].listen);
	EXPECT_STREQ("127.0.0.1:8080", S->cfg.listeners[0].backend);
}

TEST_F(conf, cannot_open)
{
	EXPECT_EQ(-1, kmtls_config_load(&S->cfg, "/nonexistent/kmtlsd.conf", S->err,
					sizeof(S->err)));
	EXPECT_ERR("cannot open /nonexistent/kmtlsd.conf: No such file");
	EXPECT_EQ(0, S->cfg.n_listeners);
}

TEST_F(conf, long_lines)
{
	char *text = malloc(8192), *p;
	int i;

	ASSERT_NE(NULL, text);
	/* A long cipher list is fine... */
	p = text + sprintf(text, LISTENER("web") "ciphers = ");
	for (i = 0; i < 40; i++)
		p += sprintf(p, "%sTLS13-AES128-GCM-SHA256", i ? ":" : "");
	strcpy(p, "\n");
	EXPECT_EQ(0, load(S, text)) TH_LOG("%s", S->err);
	kmtls_config_free(&S->cfg);
	/* ... one that does not fit is refused, not cut. */
	for (i = 0; i < 200; i++)
		p += sprintf(p, ":TLS13-AES128-GCM-SHA256");
	strcpy(p, "\n");
	EXPECT_EQ(-1, load(S, text));
	EXPECT_ERR("kmtlsd.conf:7: [listener web] line longer than");
	free(text);
}

TEST_F(conf, validate_requires_keys)
{
	static const char *const keys[] = { "listen", "backend", "cert", "key", "ca" };
	char text[1024], line[64], *at;
	const char *nl;
	size_t i;

	ASSERT_EQ(-1, check(S, "[kmtlsd]\nworkers = 1\n"));
	EXPECT_ERR("no listener");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		kmtls_config_free(&S->cfg);
		/* The base listener with the line of keys[i] left out. */
		snprintf(line, sizeof(line), "\n%s = ", keys[i]);
		strcpy(text, LISTENER("web"));
		at = strstr(text, line);
		ASSERT_NE(NULL, at);
		nl = strchr(at + 1, '\n');
		memmove(at + 1, nl + 1, strlen(nl + 1) + 1);
		EXPECT_EQ(-1, check(S, text));
		snprintf(line, sizeof(line), "[listener web] has no %s: ", keys[i]);
		EXPECT_ERR(line);
	}
}

TEST_F(conf, key_permissions)
{
	char key[256];

	snprintf(key, sizeof(key), "%s/server.key", S->dir);
	/* 0600: fine. */
	EXPECT_EQ(0, check(S, LISTENER("web"))) TH_LOG("%s", S->err);
	kmtls_config_free(&S->cfg);

	/* 0644: refused, naming the file, its mode and the fix. */
	ASSERT_EQ(0, chmod(key, 0644));
	EXPECT_EQ(-1, check(S, LISTENER("web")));
	EXPECT_ERR("private key ");
	EXPECT_ERR(key);
	EXPECT_ERR("is readable by group/others (mode 0644): run chmod 600 ");
	EXPECT_ERR("(or set allow-insecure-key-perms)");
	kmtls_config_free(&S->cfg);

	/* Group-writable is as bad as readable. */
	ASSERT_EQ(0, chmod(key, 0620));
	EXPECT_EQ(-1, check(S, LISTENER("web")));
	EXPECT_ERR("is writable by group/others (mode 0620)");
	kmtls_config_free(&S->cfg);

	/* 0644 allowed on request. */
	ASSERT_EQ(0, chmod(key, 0644));
	EXPECT_EQ(0, check(S, LISTENER("web") "allow-insecure-key-perms = true\n"))
		TH_LOG("%s", S->err);
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, LISTENER("web") "allow_insecure_key_perms = no\n"));
	EXPECT_ERR("(mode 0644)");
}

TEST_F(conf, validate_files)
{
	/* A CA directory is fine; a missing CRL or a directory as cert is not. */
	EXPECT_EQ(-1, check(S,
		"[listener web]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\n"
		"cert = $D/server.pem\nkey = $D/server.key\nca = $D/cadir\n"
		"crl = $D/crl1.pem, $D/missing.pem\n"));
	EXPECT_ERR("[listener web] crl ");
	EXPECT_ERR("/missing.pem cannot be read: No such file or directory");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S,
		"[listener web]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\n"
		"cert = $D/cadir\nkey = $D/server.key\nca = $D/cadir\n"));
	EXPECT_ERR("[listener web] cert ");
	EXPECT_ERR("/cadir is not a regular file");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(0, check(S,
		"[listener web]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\n"
		"cert = $D/server.pem\nkey = $D/server.key\nca = $D/cadir\n"))
		TH_LOG("%s", S->err);
}

TEST_F(conf, validate_addresses)
{
	struct kmtls_listener_conf *l;

	/* Listeners built in code skip kmtls_listener_set()'s check. */
	ASSERT_EQ(0, load(S, LISTENER("web")));
	l = &S->cfg.listeners[0];
	free(l->backend);
	l->backend = strdup("unix:relative.sock");
	EXPECT_EQ(-1, kmtls_config_validate(&S->cfg, S->err, sizeof(S->err)));
	EXPECT_ERR("[listener web] backend = \"unix:relative.sock\": expected an address");
	free(l->listen);
	l->listen = strdup("127.0.0.1:0");
	EXPECT_EQ(-1, kmtls_config_validate(&S->cfg, S->err, sizeof(S->err)));
	EXPECT_ERR("[listener web] listen = \"127.0.0.1:0\": expected");
	kmtls_config_free(&S->cfg);

	/* kTLS needs TCP on the TLS side; originate needs the name to verify. */
	EXPECT_EQ(-1, check(S, "[listener u]\nlisten = unix:/run/u.sock\nbackend = 127.0.0.1:2\n"
			    "cert = $D/server.pem\nkey = $D/server.key\nca = $D/ca.pem\n"));
	EXPECT_ERR("[listener u] listen = \"unix:/run/u.sock\": a terminating listener accepts TLS over TCP");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, "[listener o]\nmode = originate\nlisten = unix:/run/o.sock\n"
			    "backend = unix:/run/b.sock\nserver-name = s\n"
			    "cert = $D/server.pem\nkey = $D/server.key\nca = $D/ca.pem\n"));
	EXPECT_ERR("originate mode speaks TLS to the backend, which needs TCP");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, "[listener o]\nmode = originate\nlisten = unix:/run/o.sock\n"
			    "backend = 127.0.0.1:2\n"
			    "cert = $D/server.pem\nkey = $D/server.key\nca = $D/ca.pem\n"));
	EXPECT_ERR("[listener o] originate mode needs server-name");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(0, check(S, "[listener o]\nmode = originate\nlisten = unix:/run/o.sock\n"
			   "backend = 127.0.0.1:2\nserver-name = localhost\n"
			   "cert = $D/server.pem\nkey = $D/server.key\nca = $D/ca.pem\n"))
		TH_LOG("%s", S->err);
	EXPECT_EQ((int)KMTLS_MODE_ORIGINATE, (int)S->cfg.listeners[0].mode);
	EXPECT_STREQ("localhost", S->cfg.listeners[0].server_name);
	kmtls_config_free(&S->cfg);

	/* Two listeners on one address would silently share it. */
	EXPECT_EQ(-1, check(S, LISTENER("a") LISTENER("b")));
	EXPECT_ERR("[listener b] listen = \"127.0.0.1:8443\" is already used by [listener a]");
	kmtls_config_free(&S->cfg);
	/* However spelled. */
	EXPECT_EQ(-1, check(S, LISTENER("a") AT("b", "", "127.0.0.1:08443")));
	EXPECT_ERR("[listener b] listen = \"127.0.0.1:08443\" is already used by [listener a]");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, AT("a", "", "[::]:443") AT("b", "", "[0::0]:443")));
	EXPECT_ERR("[listener b] listen = \"[0::0]:443\" is already used by [listener a]");
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, AT("a", ORIG, "unix:/tmp/kx.sock") AT("b", ORIG, "unix:/tmp//./kx.sock")));
	EXPECT_ERR("[listener b] listen = \"unix:/tmp//./kx.sock\" is already used by [listener a]");
	kmtls_config_free(&S->cfg);
	/* Another port, another address family: their own addresses. */
	EXPECT_EQ(0, check(S, LISTENER("a") AT("b", "", "127.0.0.1:8444") AT("c", "", "[::1]:8443")))
		TH_LOG("%s", S->err);
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, "[kmtlsd]\nstatus-listen = 127.0.0.1:8443\n" LISTENER("a")));
	EXPECT_ERR("[kmtlsd] status-listen = \"127.0.0.1:8443\" is [listener a]'s address too");
}

/* ---- [kernel NAME]: the kernel service's profiles ----------------------- */

#define KERNEL(name)				\
	"[kernel " name "]\n"			\
	"cert = $D/server.pem\n"		\
	"key = $D/server.key\n"			\
	"ca = $D/ca.pem\n"

TEST_F(conf, kernel_profiles)
{
	const struct kmtls_kernel_conf *k;

	/* Kernel profiles alone are a configuration. */
	ASSERT_EQ(0, check(S,
		"[kernel default]\n"
		"cert = $D/server.pem\n"
		"key = $D/server.key\n"
		"ca = $D/cadir\n"
		"crl = $D/crl1.pem, $D/crl2.pem\n"
		"allow-uri = spiffe://example.org/*\n"
		"allow_dns = client.example.org\n"
		"allow-cn = client\n"
		"tls-min = 1.2\n"
		"ciphers = TLS13-AES128-GCM-SHA256\n"
		"groups = X25519\n"
		"server-name = api.example.org\n"
		"allow-uid = 0, 1000\n"
		"allow-uid = root\n"
		"\n"
		KERNEL("web.client-1"))) TH_LOG("%s", S->err);
	EXPECT_EQ(0, S->cfg.n_listeners);
	ASSERT_EQ(2, S->cfg.n_kernels);
	k = kmtls_config_kernel(&S->cfg, "default");
	ASSERT_NE(NULL, k);
	EXPECT_STREQ("default", k->tls.name);
	EXPECT_TRUE(has(k->tls.ca, "/cadir"));
	ASSERT_EQ(2, k->tls.crl.n);
	ASSERT_EQ(1, k->tls.allow_uri.n);
	EXPECT_STREQ("spiffe://example.org/*", k->tls.allow_uri.v[0]);
	EXPECT_STREQ("client.example.org", k->tls.allow_dns.v[0]);
	EXPECT_STREQ("client", k->tls.allow_cn.v[0]);
	EXPECT_EQ(0x0303, k->tls.tls_min);
	EXPECT_STREQ("TLS13-AES128-GCM-SHA256", k->tls.ciphers);
	EXPECT_STREQ("X25519", k->tls.groups);
	EXPECT_STREQ("api.example.org", k->tls.server_name);
	EXPECT_EQ((int)KMTLS_KTLS_REQUIRE, (int)k->tls.ktls);
	ASSERT_EQ(3, k->allow_uid.n);
	EXPECT_EQ(0u, k->allow_uid.v[0]);
	EXPECT_EQ(1000u, k->allow_uid.v[1]);
	EXPECT_EQ(0u, k->allow_uid.v[2]);
	k = kmtls_config_kernel(&S->cfg, "web.client-1");
	ASSERT_NE(NULL, k);
	EXPECT_EQ(0, k->allow_uid.n);	/* any uid */
	EXPECT_EQ(0x0304, k->tls.tls_min);
	EXPECT_EQ(NULL, kmtls_config_kernel(&S->cfg, "nosuch"));
	kmtls_config_free(&S->cfg);

	/* Listeners and profiles side by side. */
	ASSERT_EQ(0, check(S, LISTENER("web") KERNEL("default"))) TH_LOG("%s", S->err);
	EXPECT_EQ(1, S->cfg.n_listeners);
	EXPECT_EQ(1, S->cfg.n_kernels);
}

struct changed {
	char keys[512];
	char last_was[256], last_now[256];
};

static void on_diff(void *arg, const char *key, const char *was, const char *now)
{
	struct changed *c = arg;
	size_t n = strlen(c->keys);

	snprintf(c->keys + n, sizeof(c->keys) - n, "%s%s", n ? " " : "", key);
	snprintf(c->last_was, sizeof(c->last_was), "%s", was);
	snprintf(c->last_now, sizeof(c->last_now), "%s", now);
}

/* What a reload compares and moves, key by key (agent/reconfig.c). */
TEST_F(conf, reload_diff_copy_swap)
{
	struct kmtls_config a;
	struct kmtls_listener_conf *la, *lb, mix;
	struct kmtls_kernel_conf *ka, *kb;
	struct changed c;

	memset(&c, 0, sizeof(c));
	ASSERT_EQ(0, load(S, LISTENER("web")
		"allow-uri = a, b\nciphers = TLS13-AES128-GCM-SHA256\nidle-timeout = 5s\n\n"
		KERNEL("default") "allow-uid = 0\n")) TH_LOG("%s", S->err);
	a = S->cfg;
	memset(&S->cfg, 0, sizeof(S->cfg));
	/* One entry "a, b" against two: a different list with the same text. */
	ASSERT_EQ(0, load(S, "[kmtlsd]\nworkers = 3\n\n" LISTENER("web")
		"allow-uri = a\nallow-uri = b\nciphers = TLS13-AES128-GCM-SHA256\n"
		"idle-timeout = 5000ms\ntcp-fastopen = 8\n\n"
		KERNEL("default") "allow-uid = 0, 1000\n")) TH_LOG("%s", S->err);
	la = &a.listeners[0];
	lb = &S->cfg.listeners[0];
	kmtls_config_diff(KMTLS_CONF_LISTENER, la, lb, on_diff, &c);
	EXPECT_STREQ("allow-uri tcp-fastopen", c.keys);
	EXPECT_STREQ("0", c.last_was);
	EXPECT_STREQ("8", c.last_now);
	c.keys[0] = '\0';
	kmtls_config_diff(KMTLS_CONF_GLOBAL, &a, &S->cfg, on_diff, &c);
	EXPECT_STREQ("workers", c.keys);
	c.keys[0] = '\0';
	ka = &a.kernels[0];
	kb = &S->cfg.kernels[0];
	kmtls_config_diff(KMTLS_CONF_KERNEL, ka, kb, on_diff, &c);
	EXPECT_STREQ("allow-uid", c.keys);
	EXPECT_STREQ("0", c.last_was);
	EXPECT_STREQ("0, 1000", c.last_now);

	/* copy shares, swap exchanges; each list stays owned once. */
	mix = *la;
	EXPECT_EQ(0, kmtls_config_copy_key(KMTLS_CONF_LISTENER, &mix, lb, "allow-uri"));
	EXPECT_EQ(lb->allow_uri.v, mix.allow_uri.v);
	EXPECT_EQ(la->listen, mix.listen);
	EXPECT_EQ(-1, kmtls_config_copy_key(KMTLS_CONF_LISTENER, &mix, lb, "allow-uid"));
	EXPECT_EQ(0, kmtls_config_swap_key(KMTLS_CONF_LISTENER, la, lb, "allow-uri"));
	ASSERT_EQ(2, la->allow_uri.n);
	EXPECT_STREQ("b", la->allow_uri.v[1]);
	ASSERT_EQ(1, lb->allow_uri.n);
	EXPECT_STREQ("a, b", lb->allow_uri.v[0]);
	EXPECT_EQ(0, kmtls_config_swap_key(KMTLS_CONF_KERNEL, ka, kb, "allow-uid"));
	EXPECT_EQ(2, ka->allow_uid.n);
	EXPECT_EQ(1, kb->allow_uid.n);
	c.keys[0] = '\0';
	kmtls_config_diff(KMTLS_CONF_LISTENER, la, lb, on_diff, &c);
	EXPECT_STREQ("allow-uri tcp-fastopen", c.keys);
	kmtls_config_free(&a);
}

TEST_F(conf, kernel_validation)
{
	static const char *const keys[] = { "cert", "key", "ca" };
	char text[512], line[64], *at;
	const char *nl;
	size_t i;

	ASSERT_EQ(-1, check(S, "[kmtlsd]\nworkers = 1\n"));
	EXPECT_ERR("no listener and no kernel profile: add a [listener NAME] section");
	EXPECT_ERR("or a [kernel NAME] section with cert, key and ca");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		kmtls_config_free(&S->cfg);
		snprintf(line, sizeof(line), "\n%s = ", keys[i]);
		strcpy(text, KERNEL("default"));
		at = strstr(text, line);
		ASSERT_NE(NULL, at);
		nl = strchr(at + 1, '\n');
		memmove(at + 1, nl + 1, strlen(nl + 1) + 1);
		EXPECT_EQ(-1, check(S, text));
		snprintf(line, sizeof(line), "[kernel default] has no %s: ", keys[i]);
		EXPECT_ERR(line);
	}
	kmtls_config_free(&S->cfg);
	EXPECT_EQ(-1, check(S, "[kernel default]\ncert = $D/server.pem\nkey = $D/missing.key\nca = $D/ca.pem\n"));
	EXPECT_ERR("[kernel default] key ");
	EXPECT_ERR("/missing.key cannot be read: No such file or directory");
	kmtls_config_free(&S->cfg);

	/* ACCEPT needs CAP_NET_ADMIN, which a user switch gives up. */
	EXPECT_EQ(-1, check(S, "[kmtlsd]\nuser = nobody\n" KERNEL("default")));
	EXPECT_ERR("[kernel default]: the kernel service needs CAP_NET_ADMIN, which user = \"nobody\"");
}

/* [ratelimit]: given keys set, absent ones keep the pinned value. */
TEST_F(conf, ratelimit_section)
{
	const struct kmtls_ratelimit_conf *r = &S->cfg.ratelimit;

	ASSERT_EQ(0, check(S, LISTENER("web")
			   "[ratelimit]\n"
			   "interfaces = eth0 eth1\n"
			   "interfaces = eth2,eth3\n"
			   "xdp-mode = skb\n"
			   "ports = 443,8443\n"
			   "rate = 50\n"
			   "global_rate = 0\n"
			   "mode = monitor\n"
			   "allow = 10.0.0.0/8 2001:db8::/32\n"
			   "allow = 192.0.2.7\n"
			   "force = yes\n")) TH_LOG("%s", S->err);
	EXPECT_EQ(0, kmtls_ratelimit_check(&S->cfg, S->err, sizeof(S->err))) TH_LOG("%s", S->err);
	EXPECT_EQ(1, r->present);
	ASSERT_EQ(4, r->interfaces.n);
	EXPECT_STREQ("eth0", r->interfaces.v[0]);
	EXPECT_STREQ("eth3", r->interfaces.v[3]);
	EXPECT_EQ(KMTLS_XDP_SKB, r->xdp_mode);
	EXPECT_STREQ("443,8443", r->ports);
	EXPECT_EQ(50u, r->rate);
	EXPECT_EQ(KMTLS_RL_KEEP, r->burst);
	EXPECT_EQ(0u, r->global_rate);
	EXPECT_EQ(KMTLS_RL_KEEP, r->prefix4);
	EXPECT_EQ(1, r->mode);
	ASSERT_EQ(3, r->allow.n);
	EXPECT_STREQ("2001:db8::/32", r->allow.v[1]);
	EXPECT_EQ(1, r->force);
	kmtls_config_free(&S->cfg);

	/* Only the section header: every setting stays as pinned. */
	ASSERT_EQ(0, check(S, LISTENER("web") "[ratelimit]\n")) TH_LOG("%s", S->err);
	EXPECT_EQ(1, r->present);
	EXPECT_EQ(0, r->interfaces.n);
	EXPECT_EQ(KMTLS_XDP_AUTO, r->xdp_mode);
	EXPECT_EQ(-1, r->mode);
	EXPECT_EQ(NULL, r->ports);
	EXPECT_EQ(KMTLS_RL_KEEP, r->rate);
	EXPECT_EQ(0, r->force);
	kmtls_config_free(&S->cfg);

	/* No section: nothing to apply. */
	ASSERT_EQ(0, check(S, LISTENER("web"))) TH_LOG("%s", S->err);
	EXPECT_EQ(0, r->present);
	EXPECT_EQ(0, kmtls_ratelimit_check(&S->cfg, S->err, sizeof(S->err)));
}

/* What only kmtls_ratelimit_check() knows: ports, prefixes, names. */
TEST_F(conf, ratelimit_check)
{
	static const struct { const char *line, *err; } bad[] = {
		{ "allow = 10.0.0.0/33", "[ratelimit] allow: \"10.0.0.0/33\" is not a prefix: expected e.g. 192.0.2.0/24" },
		{ "allow = 10.0.0.0/8 300.1.2.3", "[ratelimit] allow: \"300.1.2.3\" is not a prefix" },
		{ "allow = 2001:db8::/129", "\"2001:db8::/129\" is not a prefix" },
		/* strtoul's leniency: "/-0" would be /0, every source */
		{ "allow = 10.0.0.0/-0", "\"10.0.0.0/-0\" is not a prefix" },
		{ "allow = 10.0.0.0/+8", "\"10.0.0.0/+8\" is not a prefix" },
		{ "ports = 443,0", "[ratelimit] ports = \"443,0\": bad port list '443,0' (want e.g. 443,8443)" },
		{ "ports = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "at most 16 ports" },
		{ "interfaces = a234567890123456", "[ratelimit] interfaces: \"a234567890123456\" is not an interface name" },
	};
	char text[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), LISTENER("web") "[ratelimit]\n%s\n", bad[i].line);
		ASSERT_EQ(0, check(S, text)) TH_LOG("%s", S->err);
		EXPECT_EQ(-1, kmtls_ratelimit_check(&S->cfg, S->err, sizeof(S->err)));
		EXPECT_ERR(bad[i].err);
		kmtls_config_free(&S->cfg);
	}
}

/* Bad files: each must name file:line, the section and the key. */
FIXTURE(bad) {
	struct scratch s;
};

FIXTURE_VARIANT(bad) {
	const char *text;
	const char *expect;
};

FIXTURE_SETUP(bad)
{
	ASSERT_EQ(0, scratch_init(&self->s));
}

FIXTURE_TEARDOWN(bad)
{
	scratch_fini(&self->s);
	EXPECT_EQ(0, leaks());
}

#define BAD(id, t, e) \
	FIXTURE_VARIANT_ADD(bad, id) { .text = t, .expect = e }
#define BAD_LISTENER(id, line, e) \
	BAD(id, "[listener web]\n" line "\n", "kmtlsd.conf:2: [listener web] " e)

BAD_LISTENER(ktls, "ktls = maybe", "ktls = \"maybe\": expected auto, require or off");
BAD_LISTENER(proxy, "proxy_protocol = v1",
	     "proxy_protocol = \"v1\": expected none, v2 or v2-cert");
BAD_LISTENER(tls_min, "tls-min = 1.1", "tls-min = \"1.1\": expected 1.2 or 1.3");
BAD_LISTENER(bool, "allow-insecure-key-perms = sure",
	     "allow-insecure-key-perms = \"sure\": expected true, false, yes, no, 1 or 0");
BAD_LISTENER(timeout_unit, "handshake_timeout = 10x",
	     "handshake_timeout = \"10x\": expected a duration such as 500ms");
BAD_LISTENER(timeout_zero, "handshake-timeout = 0", "handshake-timeout = \"0\": expected");
BAD_LISTENER(timeout_day, "connect_timeout = 25h", "connect_timeout = \"25h\": expected");
BAD_LISTENER(timeout_neg, "idle_timeout = -5s", "idle_timeout = \"-5s\": expected");
BAD_LISTENER(maxconn_zero, "max_connections = 0",
	     "max_connections = \"0\": expected a whole number from 1 to 1000000");
BAD_LISTENER(maxconn_big, "max-connections = 1000001", "max-connections = \"1000001\": expected");
BAD_LISTENER(maxconn_hex, "max-connections = 0x10", "max-connections = \"0x10\": expected");
BAD_LISTENER(maxconn_junk, "max-connections = 10k", "max-connections = \"10k\": expected");
BAD_LISTENER(empty_cert, "cert =", "cert = \"\": expected a certificate file");
BAD_LISTENER(empty_crl, "crl = ,", "crl = \",\": expected CRL files");
BAD_LISTENER(empty_uri, "allow-uri =", "allow-uri = \"\": expected a URI glob");
BAD_LISTENER(unknown_key, "lisen = 127.0.0.1:8443",
	     "lisen = \"127.0.0.1:8443\": unknown key; accepted keys are listen, backend");
BAD_LISTENER(v4_short, "listen = 1.2.3:8443", "listen = \"1.2.3:8443\": expected an address");
BAD_LISTENER(v4_octet, "listen = 256.0.0.1:8443", "listen = \"256.0.0.1:8443\": expected");
BAD_LISTENER(v4_noport, "listen = 127.0.0.1", "listen = \"127.0.0.1\": expected");
BAD_LISTENER(port_0, "listen = 127.0.0.1:0", "listen = \"127.0.0.1:0\": expected");
BAD_LISTENER(port_65536, "backend = 127.0.0.1:65536", "backend = \"127.0.0.1:65536\": expected");
BAD_LISTENER(port_junk, "backend = 127.0.0.1:80x", "backend = \"127.0.0.1:80x\": expected");
BAD_LISTENER(v6_bare, "listen = ::1:8443", "listen = \"::1:8443\": expected");
BAD_LISTENER(v6_bad, "listen = [::g]:8443", "listen = \"[::g]:8443\": expected");
BAD_LISTENER(v6_port_0, "backend = [::1]:0", "backend = \"[::1]:0\": expected");
BAD_LISTENER(hostname, "backend = localhost:8080", "backend = \"localhost:8080\": expected");
BAD_LISTENER(unix_relative, "backend = unix:run/app.sock",
	     "backend = \"unix:run/app.sock\": expected an address such as 127.0.0.1:8080, [::1]:8080 or unix:/absolute/path");
BAD_LISTENER(unix_listen_relative, "listen = unix:run/x.sock", "listen = \"unix:run/x.sock\": expected");
BAD(set_twice, "[listener web]\nktls = off\ncert = /x\nktls = auto\n",
    "kmtlsd.conf:4: [listener web] ktls is set twice (first on line 2)");

BAD(workers, "[kmtlsd]\nworkers = -1\n",
    "kmtlsd.conf:2: [kmtlsd] workers = \"-1\": expected a whole number");
BAD(log_level, "[kmtlsd]\n\nlog_level = verbose\n",
    "kmtlsd.conf:3: [kmtlsd] log_level = \"verbose\": expected error, warning, info or debug");
BAD(global_unknown, "[kmtlsd]\nlisten = 127.0.0.1:1\n",
    "kmtlsd.conf:2: [kmtlsd] listen = \"127.0.0.1:1\": unknown key; accepted keys are workers, log-level");
BAD(unknown_section, "[kmtlsd]\n[listeners web]\nlisten = 1.2.3.4:5\n",
    "kmtlsd.conf:2: unknown section [listeners web]: expected [kmtlsd], [listener NAME], [kernel NAME] or [ratelimit]");
BAD(kernel_ktls, KERNEL("default") "ktls = auto\n",
    "kmtlsd.conf:5: [kernel default] ktls = \"auto\": a kernel profile always requires kTLS");
BAD(kernel_listen, "[kernel default]\nlisten = 127.0.0.1:1\n",
    "kmtlsd.conf:2: [kernel default] listen = \"127.0.0.1:1\": unknown key; accepted keys are server-name, cert, key, ca, crl, allow-uri, allow-dns, allow-cn, tls-min, ciphers, groups, allow-insecure-key-perms, allow-uid");
BAD(kernel_uid, "[kernel default]\nallow-uid = 0, no-such-user-kmtls\n",
    "kmtlsd.conf:2: [kernel default] allow-uid = \"0, no-such-user-kmtls\": expected uids or user names");
BAD(kernel_uid_big, "[kernel default]\nallow-uid = 4294967295\n",
    "kmtlsd.conf:2: [kernel default] allow-uid = \"4294967295\": expected");
BAD(kernel_uid_empty, "[kernel default]\nallow-uid = ,\n",
    "kmtlsd.conf:2: [kernel default] allow-uid = \",\": expected");
BAD(kernel_tls_min, "[kernel default]\ntls-min = 1.1\n",
    "kmtlsd.conf:2: [kernel default] tls-min = \"1.1\": expected 1.2 or 1.3");
BAD(kernel_twice, KERNEL("default") KERNEL("default"),
    "kmtlsd.conf:5: [kernel default] appears twice: kernel profile names must be unique");
BAD(kernel_nameless, "[kernel]\n",
    "kmtlsd.conf:1: [kernel]: a kernel profile needs a name; [kernel default] serves requests that name no profile");
BAD(kernel_name_long, "[kernel a123456789012345678901234567890123456789012345678901234567890123]\n",
    "a kernel profile needs a name of at most 63 letters");
BAD(kernel_set_twice, "[kernel default]\ncert = /a\ncert = /b\n",
    "kmtlsd.conf:3: [kernel default] cert is set twice (first on line 2)");
BAD(empty_unknown_section, LISTENER("web") "[tls]\n",
    "kmtlsd.conf:7: unknown section [tls]");
BAD(duplicate_listener, LISTENER("web") "; again\n" LISTENER("web"),
    "kmtlsd.conf:8: [listener web] appears twice: listener names must be unique");
BAD(duplicate_empty_listener, "[listener a]\n[listener a]\n",
    "kmtlsd.conf:2: [listener a] appears twice");
BAD(duplicate_global, "[kmtlsd]\nworkers = 1\n[kmtlsd]\n",
    "kmtlsd.conf:3: [kmtlsd] appears twice");
BAD(ratelimit_mode, "[ratelimit]\nmode = block\n",
    "kmtlsd.conf:2: [ratelimit] mode = \"block\": expected enforce or monitor");
BAD(ratelimit_xdp_mode, "[ratelimit]\nxdp-mode = offload\n",
    "kmtlsd.conf:2: [ratelimit] xdp-mode = \"offload\": expected auto, native or skb");
BAD(ratelimit_burst_zero, "[ratelimit]\nburst = 0\n",
    "kmtlsd.conf:2: [ratelimit] burst = \"0\": expected a whole number from 1 to 10000000");
BAD(ratelimit_rate_big, "[ratelimit]\nrate = 10000001\n",
    "kmtlsd.conf:2: [ratelimit] rate = \"10000001\": expected ClientHellos per second");
BAD(ratelimit_prefix4, "[ratelimit]\nprefix4 = 33\n",
    "kmtlsd.conf:2: [ratelimit] prefix4 = \"33\": expected an IPv4 prefix length from 1 to 32");
BAD(ratelimit_unknown_key, "[ratelimit]\ninterface = eth0\n",
    "kmtlsd.conf:2: [ratelimit] interface = \"eth0\": unknown key; accepted keys are interfaces, xdp-mode, ports, mode, rate");
BAD(ratelimit_empty_allow, "[ratelimit]\nallow = ,\n",
    "kmtlsd.conf:2: [ratelimit] allow = \",\": expected prefixes such as 192.0.2.0/24");
BAD(ratelimit_set_twice, "[ratelimit]\nrate = 1\nrate = 2\n",
    "kmtlsd.conf:3: [ratelimit] rate is set twice (first on line 2)");
BAD(ratelimit_twice, "[ratelimit]\nrate = 1\n[ratelimit]\n",
    "kmtlsd.conf:3: [ratelimit] appears twice: merge the two sections");
BAD(nameless_listener, "[listener]\n", "kmtlsd.conf:1: [listener ]: a listener needs a name");
BAD(after_section, "[listener web] listen = 127.0.0.1:1\n",
    "kmtlsd.conf:1: [listener web] is followed by \"listen = 127.0.0.1:1\": a section header stands alone on its line");
BAD(bad_name, "[listener a/b]\n", "kmtlsd.conf:1: [listener a/b]: a listener needs a name");
BAD(outside_section, "workers = 2\n[kmtlsd]\n",
    "kmtlsd.conf:1: workers = \"2\" is outside any section");
BAD(syntax, LISTENER("web") "ktls auto\n",
    "kmtlsd.conf:7: syntax error");
BAD(unclosed_section, "[kmtlsd\n", "kmtlsd.conf:1: syntax error");
/* inih keeps " # ..." in the value: an allow-list entry matching nobody. */
BAD_LISTENER(hash_comment, "allow-uri = spiffe://example.org/* # prod",
	     "allow-uri = \"spiffe://example.org/* # prod\": a comment after a value starts with ';'");
BAD_LISTENER(hash_comment_enum, "ktls = off # for now",
	     "ktls = \"off # for now\": a comment after a value starts with ';'");
BAD(first_error_wins, "[listener web]\nktls = maybe\ntls-min = 1.0\n",
    "kmtlsd.conf:2: [listener web] ktls");

TEST_F(bad, refused)
{
	EXPECT_EQ(-1, load(&self->s, variant->text));
	EXPECT_TRUE(has(self->s.err, variant->expect))
		TH_LOG("want \"%s\"\n      in \"%s\"", variant->expect, self->s.err);
	/* file:line comes first, with the path as given. */
	EXPECT_EQ(0, strncmp(self->s.err, self->s.path, strlen(self->s.path)));
	/* A failed load leaves nothing behind (ASan checks the frees). */
	EXPECT_EQ(0, self->s.cfg.n_listeners);
	EXPECT_EQ(NULL, self->s.cfg.listeners);
	EXPECT_EQ(0, self->s.cfg.n_kernels);
	EXPECT_EQ(NULL, self->s.cfg.kernels);
}

TEST_HARNESS_MAIN
