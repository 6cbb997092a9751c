// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include "addr.h"
#include "listener.h"
#include "log.h"
#include "resume_cache.h"
#include "sigcache.h"
#include "tickets.h"
#include "tls_ctx.h"
#include "verify.h"

static WOLFSSL_CTX *build_ctx(const struct kmtls_listener_conf *c,
			      struct kmtls_ticket_keys *tickets, char *err,
			      size_t errlen)
{
	struct kmtls_tls_conf tc = {
		.server = c->mode == KMTLS_MODE_TERMINATE,
		.cert = c->cert,
		.key = c->key,
		.ca = c->ca,
		.tls_min = c->tls_min,
		.ciphers = c->ciphers,
		.groups = c->groups,
		.crl = c->crl.v,
		.n_crl = c->crl.n,
	};
	WOLFSSL_CTX *ctx = kmtls_tls_ctx_new(&tc, err, errlen);

	if (ctx) {
		kmtls_verify_setup(ctx, tc.server);
		/*
		 * One send() per flight instead of one per record: ServerHello
		 * to Finished is six records, each a syscall and a trip through
		 * the TCP stack otherwise.
		 */
		wolfSSL_CTX_set_group_messages(ctx);
		kmtls_sigcache_install(ctx);
		/*
		 * Resumption only through our tickets, which re-check the
		 * client (resume.h): no server-side session cache, whose
		 * session-ID resumption would skip that.
		 */
		if (tc.server)
			wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
		if (tickets)
			kmtls_ticket_keys_install(ctx, tickets);
		if (c->no_resumption) {
			wolfSSL_CTX_NoTicketTLSv12(ctx);
			wolfSSL_CTX_no_ticket_TLSv13(ctx);
			wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
		}
	}
	return ctx;
}

/* A server that resumes seals its tickets itself: keys from the file or random. */
static int needs_tickets(const struct kmtls_listener_conf *conf)
{
	return conf->mode == KMTLS_MODE_TERMINATE && !conf->no_resumption;
}

static int setup_tickets(struct kmtls_listener *l, char *err, size_t errlen)
{
	l->tickets = calloc(1, sizeof(*l->tickets));
	if (!l->tickets) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_rwlock_init(&l->tickets->lock, NULL);
	if (!l->conf->ticket_keys)
		return kmtls_ticket_keys_random(l->tickets, err, errlen);
	return kmtls_ticket_keys_read(l->conf->ticket_keys, l->conf->allow_insecure_key_perms,
				      l->tickets, err, errlen);
}

int kmtls_listener_setup(struct kmtls_listener *l,
			const struct kmtls_listener_conf *conf, char *err,
			size_t errlen)
{
	char why[160];

	memset(l, 0, sizeof(*l));
	l->unix_fd = -1;
	l->conf = conf;
	if (kmtls_addr_parse(conf->listen, conf->mode == KMTLS_MODE_ORIGINATE,
			     &l->listen_addr, &l->listen_len,
			     why, sizeof(why)) ||
	    kmtls_addr_parse(conf->backend, 1, &l->backend_addr, &l->backend_len,
			     why, sizeof(why))) {
		snprintf(err, errlen, "listener %s: %s", conf->name, why);
		return -1;
	}
	return kmtls_listener_setup_tls(l, conf, NULL, err, errlen);
}

int kmtls_listener_setup_tls(struct kmtls_listener *l,
			    const struct kmtls_listener_conf *conf,
			    const struct kmtls_uidlist *uids, char *err,
			    size_t errlen)
{
	char why[160];

	l->unix_fd = -1;
	l->conf = conf;
	l->policy = kmtls_policy_new(conf, uids);
	kmtls_resume_cache_bump();	/* passes under the old policy */
	if (!l->policy) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	if (needs_tickets(conf) && setup_tickets(l, why, sizeof(why)))
		goto fail;
	l->ctx = build_ctx(conf, l->tickets, why, sizeof(why));
	if (!l->ctx)
		goto fail;
	pthread_rwlock_init(&l->ctx_lock, NULL);
	return 0;
fail:
	/* Callers tear down only what set up: nothing of this one is kept. */
	kmtls_listener_teardown(l);
	snprintf(err, errlen, "listener %s: %s", conf->name, why);
	return -1;
}

void kmtls_listener_close_shared(struct kmtls_listener *l)
{
	const char *path = ((struct sockaddr_un *)&l->listen_addr)->sun_path;
	int fd = atomic_exchange(&l->unix_fd, -1);
	struct stat st;

	if (fd < 0)
		return;
	/* The file first: from then on a connect fails, whatever dups remain. */
	if (!stat(path, &st) && st.st_dev == l->unix_dev && st.st_ino == l->unix_ino)
		unlink(path);
	close(fd);
}

void kmtls_listener_teardown(struct kmtls_listener *l)
{
	if (l->tickets) {
		pthread_rwlock_destroy(&l->tickets->lock);
		explicit_bzero(l->tickets, sizeof(*l->tickets));
		free(l->tickets);
		l->tickets = NULL;
	}
	kmtls_listener_close_shared(l);
	if (l->ctx) {
		wolfSSL_CTX_free(l->ctx);
		pthread_rwlock_destroy(&l->ctx_lock);
	}
	l->ctx = NULL;
	kmtls_policy_put(l->policy);
	l->policy = NULL;
}

int kmtls_listener_prepare(struct kmtls_listener *l,
			   const struct kmtls_listener_conf *conf,
			   const struct kmtls_uidlist *uids,
			   struct kmtls_listener_next *next, char *err,
			   size_t errlen)
{
	char why[200];

	/* Everything is read before anything is swapped. */
	memset(next, 0, sizeof(*next));
	if (l->tickets && conf->ticket_keys &&
	    kmtls_ticket_keys_read(conf->ticket_keys, conf->allow_insecure_key_perms,
				   &next->keys, why, sizeof(why)))
		goto fail;
	next->policy = kmtls_policy_new(conf, uids);
	kmtls_resume_cache_bump();	/* passes under the old policy */
	if (!next->policy) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	next->ctx = build_ctx(conf, l->tickets, why, sizeof(why));
	if (!next->ctx)
		goto fail;
	return 0;
fail:
	kmtls_listener_abort(next);
	snprintf(err, errlen, "listener %s: %s", l->conf->name, why);
	return -1;
}

void kmtls_listener_abort(struct kmtls_listener_next *next)
{
	if (next->ctx)
		wolfSSL_CTX_free(next->ctx);
	kmtls_policy_put(next->policy);
	explicit_bzero(next, sizeof(*next));
}

void kmtls_listener_rotate_own_key(struct kmtls_listener *l)
{
	if (l->tickets && !l->conf->ticket_keys)
		kmtls_ticket_keys_rotate(l->tickets);
}

void kmtls_listener_commit(struct kmtls_listener *l,
			   struct kmtls_listener_next *next)
{
	struct kmtls_policy *old_policy;
	WOLFSSL_CTX *old;

	if (l->tickets && l->conf->ticket_keys)
		kmtls_ticket_keys_update(l->tickets, &next->keys);
	else
		kmtls_listener_rotate_own_key(l);
	pthread_rwlock_wrlock(&l->ctx_lock);
	old = l->ctx;
	old_policy = l->policy;
	l->ctx = next->ctx;
	l->policy = next->policy;
	pthread_rwlock_unlock(&l->ctx_lock);
	/*
	 * Live WOLFSSL objects hold their own reference to the old context,
	 * and connections theirs to the old policy: handshakes in flight end
	 * with what they began with.
	 */
	wolfSSL_CTX_free(old);
	kmtls_policy_put(old_policy);
	explicit_bzero(next, sizeof(*next));
}

WOLFSSL *kmtls_listener_new_ssl(struct kmtls_listener *l,
				struct kmtls_policy **policy)
{
	WOLFSSL *ssl;

	pthread_rwlock_rdlock(&l->ctx_lock);
	ssl = wolfSSL_new(l->ctx);
	*policy = ssl ? kmtls_policy_get(l->policy) : NULL;
	pthread_rwlock_unlock(&l->ctx_lock);
	return ssl;
}

int kmtls_listener_uid_allowed(struct kmtls_listener *l, unsigned int uid)
{
	int ok;

	pthread_rwlock_rdlock(&l->ctx_lock);
	ok = kmtls_policy_uid_allowed(l->policy, uid);
	pthread_rwlock_unlock(&l->ctx_lock);
	return ok;
}

/* A unix socket cannot be bound once per worker: bind it once, share it. */
static int unix_socket(struct kmtls_listener *l)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&l->listen_addr;
	struct stat st;
	int fd;

	if (l->unix_fd >= 0)
		return fcntl(l->unix_fd, F_DUPFD_CLOEXEC, 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(sun->sun_path);	/* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)sun, l->listen_len) || listen(fd, 4096) ||
	    stat(sun->sun_path, &st)) {
		close(fd);
		return -1;
	}
	l->unix_dev = st.st_dev;
	l->unix_ino = st.st_ino;
	l->unix_fd = fd;
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* The server flag (2) of net.ipv4.tcp_fastopen; -1 when unknown. */
static int tfo_server_enabled(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v < 0 ? -1 : !!(v & 2);
}

/*
 * Opt-in TCP Fast Open: the ClientHello may ride on the SYN, a round trip
 * less for clients that have a cookie. Failing to set it is not fatal (the
 * listener works without), but it is said once, with what to do.
 */
static void set_fastopen(struct kmtls_listener *l, int fd)
{
	int qlen = (int)l->conf->tcp_fastopen, first = !l->tfo_said;

	if (!qlen)
		return;
	l->tfo_said = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen))) {
		if (first)
			log_warn("listener %s: tcp-fastopen = %d: setsockopt(TCP_FASTOPEN) failed: %s; serving without TCP Fast Open",
				 l->conf->name, qlen, strerror(errno));
		return;
	}
	if (!first)
		return;
	if (tfo_server_enabled() == 0)
		log_warn("listener %s: tcp-fastopen = %d is set, but net.ipv4.tcp_fastopen lacks the server flag (2): set it to 3, or clients do a plain TCP handshake",
			 l->conf->name, qlen);
	else
		log_info("listener %s: TCP Fast Open on, queue %d", l->conf->name, qlen);
}

int kmtls_listener_socket(struct kmtls_listener *l, char *err, size_t errlen)
{
	struct sockaddr *sa = (struct sockaddr *)&l->listen_addr;
	char addr[KMTLS_ADDRSTRLEN];
	int fd, one = 1;

	if (sa->sa_family == AF_UNIX) {
		fd = unix_socket(l);
		if (fd >= 0)
			return fd;
		goto fail;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/*
	 * Handshake flights and relayed records go out at once. Accepted
	 * sockets inherit it: one setsockopt per listener, not per connection.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		goto fail;
	if (bind(fd, sa, l->listen_len))
		goto fail;
	set_fastopen(l, fd);
	if (listen(fd, 4096))
		goto fail;
	/* Port 0: later workers must join the port the first one got. */
	if (getsockname(fd, sa, &l->listen_len))
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listener %s: cannot listen on %s: %s", l->conf->name,
		 kmtls_addr_str(sa, l->listen_len, addr, sizeof(addr)), strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}
