/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_CONFIG_H
#define KMTLS_CONFIG_H

#include <stddef.h>

enum kmtls_ktls_mode {
	KMTLS_KTLS_AUTO,	/* kTLS when the kernel can, else wolfSSL */
	KMTLS_KTLS_REQUIRE,	/* refuse connections that cannot get kTLS */
	KMTLS_KTLS_OFF,		/* always wolfSSL's record layer */
};

enum kmtls_mode {
	KMTLS_MODE_TERMINATE,	/* mTLS clients in, plaintext to the backend */
	KMTLS_MODE_ORIGINATE,	/* plaintext clients in, mTLS to the backend */
};

enum kmtls_proxy_mode {
	KMTLS_PROXY_NONE,
	KMTLS_PROXY_V2,		/* address + SSL TLVs (version, CN) */
	KMTLS_PROXY_V2_CERT,	/* ... + client certificate DER (0x28) */
};

struct kmtls_strlist {
	char **v;
	int n;
};

/* 1 when @s is one of @l's strings (exactly). */
int kmtls_strlist_has(const struct kmtls_strlist *l, const char *s);

/* One [listener NAME] section, or the listener built from flags. */
struct kmtls_listener_conf {
	char *name;
	enum kmtls_mode mode;
	char *listen;		/* "0.0.0.0:8443", "[::1]:8443"; originate: also unix: */
	char *backend;		/* "127.0.0.1:8080", "[::1]:80", "unix:/path";
				 * originate: the mTLS server */
	char *server_name;	/* originate: SNI and the name to verify */
	char *ticket_keys;	/* terminate: shared session-ticket key file */
	char *cert;		/* leaf + intermediates */
	char *key;
	char *ca;		/* file or directory */
	struct kmtls_strlist crl;	/* PEM or DER files */
	struct kmtls_strlist allow_uri;	/* globs on SAN URI */
	struct kmtls_strlist allow_dns;	/* exact SAN DNS names */
	struct kmtls_strlist allow_cn;	/* exact subject CN */
	enum kmtls_ktls_mode ktls;
	enum kmtls_proxy_mode proxy_protocol;
	int tls_min;		/* 0x0303 or 0x0304 */
	char *ciphers;		/* NULL: defaults */
	char *groups;
	unsigned int handshake_timeout_ms;	/* default 10000 */
	unsigned int idle_timeout_ms;		/* default 300000, 0 = none */
	unsigned int connect_timeout_ms;	/* default 5000 */
	unsigned int max_connections;		/* per listener, default 10000 */
	unsigned int tcp_fastopen;		/* TFO queue length, 0 = off */
	int allow_insecure_key_perms;
	int no_resumption;	/* no tickets or session cache (set in code) */
};

/* Uids from allow-uid. */
struct kmtls_uidlist {
	unsigned int *v;
	int n;
};

/*
 * One [kernel NAME] section: certificates and policy for the handshakes
 * kmtls.ko hands to kmtlsd (/dev/kmtls) with profile NAME; "default"
 * serves requests that name no profile. kTLS is always required.
 */
struct kmtls_kernel_conf {
	/*
	 * First member: the listener keys that mean the same here (cert, key,
	 * ca, crl, allow-*, tls-min, ciphers, groups, server-name,
	 * allow-insecure-key-perms) are set through the listener key table.
	 * tls.name is the profile name.
	 */
	struct kmtls_listener_conf tls;
	struct kmtls_uidlist allow_uid;	/* empty: any uid may use the profile */
};

/* Keys of [ratelimit] that were not given: the pinned value stays. */
#define KMTLS_RL_KEEP	(~0u)

enum kmtls_xdp_mode {
	KMTLS_XDP_AUTO,		/* native when the driver has it, else generic */
	KMTLS_XDP_NATIVE,
	KMTLS_XDP_SKB,
};

/*
 * [ratelimit]: the XDP ClientHello limiter (bpf/hello_limit), applied by
 * agent/ratelimit.c at start and on SIGHUP. Numbers are KMTLS_RL_KEEP, and
 * mode and ports -1 / NULL, when their key is absent.
 */
struct kmtls_ratelimit_conf {
	int present;		/* the file has the section */
	struct kmtls_strlist interfaces;
	int xdp_mode;		/* enum kmtls_xdp_mode */
	char *ports;		/* "443,8443" */
	int mode;		/* enum hl_mode, or -1 */
	unsigned int rate, burst, global_rate, global_burst, prefix4, prefix6;
	struct kmtls_strlist allow;	/* CIDR prefixes */
	int force;		/* replace a foreign XDP program */
};

enum kmtls_sandbox_mode {
	KMTLS_SANDBOX_ON,	/* default: Landlock and seccomp where the kernel has them */
	KMTLS_SANDBOX_OFF,
};

/* The [kmtlsd] section plus all listeners and kernel profiles. */
struct kmtls_config {
	int workers;		/* 0: one per online CPU */
	int log_level;		/* syslog level, default LOG_INFO */
	char *user;		/* switch to this user after binding; NULL: stay */
	enum kmtls_sandbox_mode sandbox;
	char *path;		/* the file it was loaded from; NULL for flags */
	char *status_listen;	/* opt-in metrics/status endpoint, local only */
	unsigned int drain_timeout_ms;	/* SIGTERM: relays may finish for this long */
	int watch_files;	/* reload when a TLS file changes (inotify) */
	struct kmtls_listener_conf *listeners;
	int n_listeners;
	struct kmtls_kernel_conf *kernels;	/* [kernel NAME] profiles */
	int n_kernels;
	struct kmtls_ratelimit_conf ratelimit;
	/* [kmtlsd] keys the command line set; a reload leaves them alone. */
	struct kmtls_strlist cmdline;
};

/* Defaults for a fresh listener (name is copied). */
int kmtls_listener_init(struct kmtls_listener_conf *l, const char *name);

/*
 * Set one listener key. Keys are the long flag names; '-' and '_' are
 * interchangeable ("allow-uri" == "allow_uri"). List keys (crl, allow-*)
 * append. Returns 0, or -1 with a sentence in err.
 */
int kmtls_listener_set(struct kmtls_listener_conf *l, const char *key,
		       const char *value, char *err, size_t errlen);

/* 1 when listener key @key may be given more than once (its values append). */
int kmtls_listener_key_repeats(const char *key);

/* The same for a [kmtlsd] key (kmtlsd's --workers, --log-level, ...). */
int kmtls_config_set_global(struct kmtls_config *cfg, const char *key, const char *value,
			    char *err, size_t errlen);

/* Parse an INI file (libinih) into cfg; errors name the file and line. */
int kmtls_config_load(struct kmtls_config *cfg, const char *path, char *err,
		      size_t errlen);

/* The [kernel NAME] profile called @name, or NULL. */
const struct kmtls_kernel_conf *kmtls_config_kernel(const struct kmtls_config *cfg,
						    const char *name);

/* Add an empty listener with defaults; returns it or NULL. */
struct kmtls_listener_conf *kmtls_config_add_listener(struct kmtls_config *cfg,
						      const char *name);

/*
 * Check what can be checked without binding: required keys, address syntax,
 * files readable, private key not readable by group/others (unless
 * allowed). The TLS material itself is loaded by the listener setup
 * (kmtlsd --check-config does both). Returns 0 or -1 with err.
 */
int kmtls_config_validate(const struct kmtls_config *cfg, char *err,
			  size_t errlen);

void kmtls_config_free(struct kmtls_config *cfg);

/*
 * How allow-uid turns a user name into a uid: getpwnam_r() unless @fn is
 * set (kmtlsd's sandboxed reload asks a process outside the sandbox). @fn
 * returns 0 with @uid, or -1 with errno 0 for "no such user", else errno.
 */
void kmtls_config_set_user_lookup(int (*fn)(const char *name, unsigned int *uid));

/* Reload (reconfig.c): the key tables, applied to the struct they describe. */
enum kmtls_conf_table {
	KMTLS_CONF_GLOBAL,	/* [kmtlsd]: struct kmtls_config */
	KMTLS_CONF_LISTENER,	/* [listener NAME]: struct kmtls_listener_conf */
	KMTLS_CONF_KERNEL,	/* [kernel NAME]: struct kmtls_kernel_conf */
};

/*
 * Call @fn for each key of table @t whose value differs between @a and @b,
 * with both values as text ("" when unset, lists comma-separated).
 */
void kmtls_config_diff(enum kmtls_conf_table t, const void *a, const void *b,
		       void (*fn)(void *arg, const char *key, const char *was,
				  const char *now),
		       void *arg);

/*
 * @dst's @key takes @src's value as it is (strings and lists are then
 * shared, not copied); swap exchanges the two values. -1: no such key.
 */
int kmtls_config_copy_key(enum kmtls_conf_table t, void *dst, const void *src,
			  const char *key);
int kmtls_config_swap_key(enum kmtls_conf_table t, void *a, void *b,
			  const char *key);

#endif
