// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Kernel service: mTLS handshakes on sockets that applications handed to
 * kmtls.ko through /dev/kmtls (kmod/README.md, "Agent protocol").
 *
 * Threading. One netlink socket (upcall.c), opened before the sandbox,
 * lives in worker 0's epoll set: worker 0 alone reads it, resolves the
 * family, and ACCEPTs until EAGAIN at start, on every READY and after an
 * overrun. Each accepted request goes to the worker with the fewest kernel
 * requests in flight (worker 0 itself on a tie, so a lone request never
 * changes threads) through that worker's inbox: a locked list and an
 * eventfd in its epoll set. That worker runs the handshake in its own
 * loop, with conn.c's machinery like any terminated connection, installs
 * kTLS and sends DONE itself: the kernel handles DONE inside sendmsg() on
 * the shared socket, so no answer has to travel back, and the fd can be
 * closed right after. Spreading matters because a full handshake is
 * about a millisecond of CPU: one thread would cap the service at one
 * core; the hop costs one eventfd wakeup, and only under concurrency.
 *
 * A request ends in exactly one DONE: success after kTLS TX and RX are in
 * and no plaintext was left behind, else the errno the application gets.
 * kmtlsd's fd is then closed; the application keeps the socket (never shut
 * down here: on a failure the kernel does that).
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addr.h"
#include "conn.h"
#include "kservice.h"
#include "ktls.h"
#include "log.h"
#include "probes.h"
#include "reconfig.h"
#include "tls_ctx.h"
#include "worker.h"

#define ATTACH_RETRY_MS	30000	/* look for kmtls.ko without news from nlctrl */
#define ACCEPT_RETRY_MS	100	/* after an ACCEPT that failed (EMFILE...) */
#define REFUSED_FIRST_MS 1000	/* after a refused ACCEPT, doubling to ATTACH_RETRY_MS */
#define KSERVICE_DEADLINE_SLACK_MS 100	/* the worker's tick */

static const char *const role_name[] = { "server role", "client role" };

/* What a [kernel NAME] may be called (config.c checks the same). */
#define PROFILE_CHARS	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

/* ---- profiles ----------------------------------------------------------- */

/* @tls for the side @role plays: the same keys, a context per side. */
static void conf_for_role(struct kmtls_listener_conf *out,
		      const struct kmtls_listener_conf *tls, int role)
{
	static const enum kmtls_mode mode[KMTLS_KROLES] = {
		[KMTLS_KROLE_SERVER] = KMTLS_MODE_TERMINATE,
		[KMTLS_KROLE_CLIENT] = KMTLS_MODE_ORIGINATE,
	};

	*out = *tls;
	out->mode = mode[role];
	out->ktls = KMTLS_KTLS_REQUIRE;
	/*
	 * Every handshake full: a TLS 1.3 ticket carries no certificate,
	 * and the application must always get the peer identity.
	 */
	out->no_resumption = 1;
}

/* "listener NAME: why" from the listener code: the why alone. */
static const char *why_of(const char *err)
{
	return strchr(err, ':') ? strchr(err, ':') + 2 : err;
}

static int profile_setup(struct kmtls_kprofile *p, const struct kmtls_kernel_conf *k,
			 char *err, size_t errlen)
{
	char why[400];
	int i;

	p->conf = k;
	for (i = 0; i < KMTLS_KROLES; i++) {
		conf_for_role(&p->role_conf[i], &k->tls, i);
		if (kmtls_listener_setup_tls(&p->role[i], &p->role_conf[i], &k->allow_uid,
					     why, sizeof(why))) {
			snprintf(err, errlen, "[kernel %s] %s: %s", k->tls.name, role_name[i],
				 why_of(why));
			return -1;
		}
		p->ready[i] = 1;
	}
	return 0;
}

static void profile_teardown(struct kmtls_kprofile *p)
{
	int i;

	for (i = 0; i < KMTLS_KROLES; i++)
		if (p->ready[i])
			kmtls_listener_teardown(&p->role[i]);
}

static void profiles_free(struct kmtls_kservice *ks)
{
	while (ks->n)
		profile_teardown(&ks->profiles[--ks->n]);
	free(ks->profiles);
	ks->profiles = NULL;
}

int kmtls_kservice_setup(struct kmtls_kservice *ks, const struct kmtls_config *cfg,
			 char *err, size_t errlen)
{
	int i;

	memset(ks, 0, sizeof(*ks));
	ks->up.fd = -1;
	if (!cfg->n_kernels)
		return 0;
	ks->profiles = calloc(cfg->n_kernels, sizeof(*ks->profiles));
	if (!ks->profiles) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < cfg->n_kernels; i++) {
		ks->n = i + 1;	/* teardown covers the one half set up */
		if (profile_setup(&ks->profiles[i], &cfg->kernels[i], err, errlen)) {
			profiles_free(ks);
			return -1;
		}
	}
	return 0;
}

static struct kmtls_kprofile *profile_find(const struct kmtls_kservice *ks,
					   const char *name)
{
	int i;

	for (i = 0; i < ks->n; i++)
		if (!strcmp(ks->profiles[i].conf->tls.name, name))
			return &ks->profiles[i];
	return NULL;
}

/*
 * Both roles' next contexts and policy from @cur with @file's reloadable
 * keys (file NULL: the files on disk alone), into @next. 0, or -1 with
 * err and nothing kept.
 */
static int profile_prepare(struct kmtls_kprofile *p, const struct kmtls_kernel_conf *cur,
			   const struct kmtls_kernel_conf *file,
			   struct kmtls_listener_next next[KMTLS_KROLES], char *err, size_t errlen)
{
	struct kmtls_listener_conf rc;
	struct kmtls_kernel_conf eff;
	char why[400];
	int r, i;

	kmtls_reconfig_effective_kernel(&eff, cur, file);
	for (r = 0; r < KMTLS_KROLES; r++) {
		conf_for_role(&rc, &eff.tls, r);
		if (kmtls_listener_prepare(&p->role[r], &rc, &eff.allow_uid, &next[r],
					   why, sizeof(why))) {
			snprintf(err, errlen, "[kernel %s] %s: %s", p->conf->tls.name,
				 role_name[r], why_of(why));
			for (i = 0; i < r; i++)
				kmtls_listener_abort(&next[i]);
			return -1;
		}
	}
	return 0;
}

/* Both roles swapped in together; then @cur takes @file's values. */
static void profile_commit(struct kmtls_kprofile *p, struct kmtls_kernel_conf *cur,
			   struct kmtls_kernel_conf *file,
			   struct kmtls_listener_next next[KMTLS_KROLES])
{
	int r;

	for (r = 0; r < KMTLS_KROLES; r++)
		kmtls_listener_commit(&p->role[r], &next[r]);
	if (file) {
		kmtls_reconfig_adopt_kernel(cur, file);
		for (r = 0; r < KMTLS_KROLES; r++)
			kmtls_reconfig_share_live(&p->role_conf[r], &cur->tls);
	}
}

/* @kn empty again, its contexts committed or aborted. */
static void next_free(struct kmtls_kservice_next *kn)
{
	free(kn->role);
	kn->role = NULL;
	kn->n = 0;
}

int kmtls_kservice_prepare(struct kmtls_kservice *ks, struct kmtls_config *cfg,
			   struct kmtls_config *file, struct kmtls_kservice_next *kn,
			   char *err, size_t errlen)
{
	struct kmtls_kprofile *p;
	int i;

	kn->n = 0;
	kn->role = ks->n ? calloc(ks->n, sizeof(*kn->role)) : NULL;
	if (ks->n && !kn->role) {
		snprintf(err, errlen, "kernel profiles: out of memory");
		return -1;
	}
	for (i = 0; i < ks->n; i++) {
		p = &ks->profiles[i];
		/* kmtls_kservice_setup() made profile i of cfg->kernels[i]. */
		if (profile_prepare(p, &cfg->kernels[i],
				    kmtls_reconfig_kernel(file, p->conf->tls.name),
				    kn->role[i], err, errlen)) {
			kmtls_kservice_abort(kn);
			return -1;
		}
		kn->n++;
	}
	return 0;
}

void kmtls_kservice_commit(struct kmtls_kservice *ks, struct kmtls_config *cfg,
			   struct kmtls_config *file, struct kmtls_kservice_next *kn)
{
	int i;

	for (i = 0; i < kn->n; i++)
		profile_commit(&ks->profiles[i], &cfg->kernels[i],
			       kmtls_reconfig_kernel(file, ks->profiles[i].conf->tls.name),
			       kn->role[i]);
	if (kn->n)
		log_info("reloaded certificates, keys, CAs and CRLs of %d kernel profile(s)", kn->n);
	next_free(kn);
}

void kmtls_kservice_abort(struct kmtls_kservice_next *kn)
{
	int i, r;

	for (i = 0; i < kn->n; i++)
		for (r = 0; r < KMTLS_KROLES; r++)
			kmtls_listener_abort(&kn->role[i][r]);
	next_free(kn);
}

void kmtls_kservice_rescan(struct kmtls_kservice *ks)
{
	atomic_store(&ks->retry, 1);
}

/* ---- requests: DONE and the end -------------------------------------- */

/* Room for a request's string escaped: kmtls_identity_escape() takes 4 a byte. */
#define ESC_MAX(n)	(4 * (n))
#define LABEL_MAX	(ESC_MAX(KMTLS_PEER_NAME_MAX) + ESC_MAX(KMTLS_PROFILE_MAX) + 96)

/*
 * "kernel default: request 7 (server role, uid 1000, pid 4242)". The
 * profile and peer names are any local user's bytes (/dev/kmtls is
 * 0666; kmtls.ko only checks that they end): escaped, so that they can
 * neither forge nor split log lines.
 */
static void label(const struct kmtls_kreq *r, char *buf, size_t len)
{
	char role[ESC_MAX(KMTLS_PEER_NAME_MAX) + 32] = "server role";
	char prof[ESC_MAX(KMTLS_PROFILE_MAX)], peer[ESC_MAX(KMTLS_PEER_NAME_MAX)];

	kmtls_identity_escape(r->profile[0] ? r->profile : "default", prof, sizeof(prof));
	if (r->role == KMTLS_ROLE_CLIENT) {
		kmtls_identity_escape(r->peer_name, peer, sizeof(peer));
		snprintf(role, sizeof(role), "client role for %s",
			 r->peer_name[0] ? peer : "the profile's server-name");
	}
	snprintf(buf, len, "kernel %s: request %llu (%s, uid %u, pid %u)",
		 prof, (unsigned long long)r->id, role, r->uid, r->pid);
}

/*
 * Warnings about a request are held to log.h's limit: any local user can
 * make requests fail at will, as often as they like.
 */
void kmtls_kservice_log(const struct conn *c, int level, const char *msg)
{
	char who[LABEL_MAX];

	label(c->kreq, who, sizeof(who));
	if (level <= LOG_WARNING)
		kmtls_log_limited("kernel request failed", level, "%s: peer %s: %s",
				  who, c->peer_str, msg);
	else
		kmtls_log(level, "%s: peer %s: %s", who, c->peer_str, msg);
}

/* Send DONE for @r (once); the fd must still be open. */
static void send_done(struct kmtls_kreq *r, const struct kmtls_done *d)
{
	int ret;

	if (r->done)
		return;
	r->done = 1;
	ret = kmtls_upcall_done(&r->ks->up, r->fd, r->id, d);
	if (ret == -EMSGSIZE && !d->status) {
		/* Too many SAN names for the completion: a failure, not a cut list. */
		struct kmtls_done fail = { .status = EMSGSIZE };

		log_warn("kernel: request %llu: the peer's SAN names exceed %d bytes: failed with EMSGSIZE",
			 (unsigned long long)r->id, KMTLS_SAN_LIST_MAX);
		ret = kmtls_upcall_done(&r->ks->up, r->fd, r->id, &fail);
	}
	if (ret)
		log_debug("kernel: request %llu: DONE not sent: %s",
			  (unsigned long long)r->id, strerror(-ret));
}

static void send_status(struct kmtls_kreq *r, int status)
{
	struct kmtls_done d = { .status = status };

	send_done(r, &d);
}

/* The request is over: its worker runs one fewer. */
static void uncount(struct kmtls_kreq *r)
{
	if (r->worker >= 0)
		atomic_fetch_sub(&r->ks->inbox[r->worker].inflight, 1);
	r->worker = -1;
}

void kmtls_kservice_free_req(struct kmtls_kreq *r)
{
	free(r);
}

/* A refusal's kind, for the log limit (the summary names it). */
static const char *refusal_kind(int status)
{
	switch (status) {
	case ENOENT:
		return "kernel request for no profile of ours";
	case EACCES:
		return "kernel request from a uid not in allow-uid";
	default:
		return "kernel request refused";
	}
}

/* Fail a request that never became a connection: DONE, close, free. */
__attribute__((format(printf, 3, 4)))
static void finish(struct kmtls_kreq *r, int status, const char *fmt, ...)
{
	char who[LABEL_MAX], msg[512];
	va_list ap;

	label(r, who, sizeof(who));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kmtls_log_limited(refusal_kind(status), LOG_WARNING, "%s: %s (%s)", who, msg,
			  strerror(status));
	send_status(r, status);
	close(r->fd);
	uncount(r);
	kmtls_kservice_free_req(r);
}

void kmtls_kservice_closing(struct conn *c)
{
	struct kmtls_kreq *r = c->kreq;

	send_status(r, r->status ? r->status : EIO);
	uncount(r);
}

/* ---- after the handshake ------------------------------------------------ */

/* The TCP connection is gone (a half-close or reset during the handshake). */
static int tcp_gone(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	return !getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) &&
	       ti.tcpi_state != TCP_ESTABLISHED;
}

__attribute__((format(printf, 3, 4)))
static void fail(struct conn *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->kreq->status = status;
	kmtls_kservice_log(c, LOG_WARNING, msg);
	kmtls_conn_close(c);
}

/* kTLS TX and RX, nothing left in wolfSSL. 0, or -1 with @c closed. */
static int install(struct conn *c)
{
	struct kmtls_pending pend = { 0 };
	const char *why = "";
	enum kmtls_ktls_status st;
	size_t left;

	st = kmtls_ktls_install(c->ssl, c->kreq->fd, &pend, &why);
	left = pend.len;
	kmtls_pending_free(&pend);
	if (st != KMTLS_KTLS_ON) {
		STAT_ADD(&c->w->stats, ktls_refused, 1);
		if (tcp_gone(c->kreq->fd))
			fail(c, ECONNRESET, "peer closed the connection right after the handshake (%s)", why);
		else
			fail(c, st == KMTLS_KTLS_FALLBACK ? EOPNOTSUPP : EIO,
			     "no kTLS for this connection, which a kernel profile requires: %s", why);
		return -1;
	}
	c->ktls = 1;
	STAT_ADD(&c->w->stats, ktls_on, 1);
	KMTLS_PROBE_KTLS_INSTALLED(c->kreq->fd, kmtls_ktls_cipher_name(c->ssl));
	if (left) {
		fail(c, EPROTO, "the peer sent %zu bytes of application data that wolfSSL had read before kTLS took over; they cannot reach the application",
		     left);
		return -1;
	}
	return 0;
}

/*
 * Why a handshake failed, if kmtls.ko ended the request under it: its
 * deadline (our clock reads it a little late: a tick of slack), or a
 * cancellation, after which the kernel shut the socket down, which made
 * our side send a FIN that neither the application nor we would send.
 */
int kmtls_kservice_ended(const struct conn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (kmtls_now_ms() + KSERVICE_DEADLINE_SLACK_MS >= c->kreq->deadline_ms)
		return ETIMEDOUT;
	if (getsockopt(c->kreq->fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return 0;
	switch (ti.tcpi_state) {
	case TCP_FIN_WAIT1:
	case TCP_FIN_WAIT2:
	case TCP_CLOSING:
	case TCP_TIME_WAIT:
		return ECANCELED;
	}
	return 0;
}

static void put_back_nodelay(const struct kmtls_kreq *r)
{
	int v = r->nodelay;

	if (!v)	/* we set it for the handshake's flights */
		setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
}

void kmtls_kservice_established(struct conn *c)
{
	struct kmtls_kreq *r = c->kreq;
	const struct kmtls_identity *id = &c->verify.leaf;
	struct kmtls_done d = { .status = 0 };
	char fp[2 * KMTLS_FINGERPRINT_LEN + 1], sans[512] = "none", msg[2048];
	char subject[ESC_MAX(sizeof(id->subject))];

	if (!c->verify.have_leaf) {
		fail(c, EKEYREJECTED, "the peer certificate has names that cannot be passed on (a NUL inside, or too long)");
		return;
	}
	d.version = wolfSSL_version(c->ssl) == TLS1_3_VERSION ? 0x0304 : 0x0303;
	d.cipher = (uint16_t)wolfSSL_get_current_cipher_suite(c->ssl);
	d.resumed = wolfSSL_session_reused(c->ssl);
	snprintf(msg, sizeof(msg), "%s %s", kmtls_tls_version_name(c->ssl),
		 wolfSSL_get_cipher_name(c->ssl));
	if (install(c))
		return;
	/* The kernel holds the keys now; drop wolfSSL's copy. */
	wolfSSL_free(c->ssl);
	c->ssl = NULL;
	put_back_nodelay(r);
	d.subject = id->subject;
	d.uris = id->uris.v;
	d.n_uris = id->uris.n;
	d.dns = id->dns.v;
	d.n_dns = id->dns.n;
	d.fingerprint = id->sha256;
	send_done(r, &d);
	kmtls_identity_fingerprint_hex(id, fp, sizeof(fp));
	kmtls_identity_sans(id, sans, sizeof(sans));	/* escaped */
	kmtls_identity_escape(id->subject, subject, sizeof(subject));
	snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
		 ", kTLS, subject \"%s\", SANs %s, sha256 %s%s", subject, sans, fp,
		 d.resumed ? ", resumed" : "");
	kmtls_kservice_log(c, LOG_DEBUG, msg);
	kmtls_conn_close(c);	/* our fd only: the application keeps the socket */
}

/* ---- the socket's I/O ---------------------------------------------------- */

/*
 * Our fd shares the open file with the application's, O_NONBLOCK included,
 * and the application's socket is usually blocking: every call says
 * MSG_DONTWAIT instead of changing its flags.
 */
static int io_error(int err)
{
	switch (err) {
	case EAGAIN:
		return WOLFSSL_CBIO_ERR_WANT_READ;	/* the same value as WANT_WRITE */
	case EINTR:
		return WOLFSSL_CBIO_ERR_ISR;
	case ECONNRESET:
		return WOLFSSL_CBIO_ERR_CONN_RST;
	case EPIPE:
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	default:
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	ssize_t n = recv(wolfSSL_get_fd(ssl), buf, (size_t)sz, MSG_DONTWAIT);

	(void)ctx;
	if (n > 0)
		return (int)n;
	return n == 0 ? WOLFSSL_CBIO_ERR_CONN_CLOSE : io_error(errno);
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	ssize_t n = send(wolfSSL_get_fd(ssl), buf, (size_t)sz, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)ctx;
	return n >= 0 ? (int)n : io_error(errno);
}

void kmtls_kservice_io(WOLFSSL *ssl)
{
	wolfSSL_SSLSetIORecv(ssl, io_recv);
	wolfSSL_SSLSetIOSend(ssl, io_send);
}

/* ---- starting a request on its worker ----------------------------------- */

static void start(struct kmtls_kservice *ks, struct kmtls_worker *w, struct kmtls_kreq *r)
{
	const char *name = r->profile[0] ? r->profile : "default";
	struct kmtls_kprofile *p = profile_find(ks, name);
	int role = r->role == KMTLS_ROLE_CLIENT ? KMTLS_KROLE_CLIENT : KMTLS_KROLE_SERVER;
	const char *server_name = r->peer_name;
	socklen_t len = sizeof(r->nodelay);

	if (strspn(name, PROFILE_CHARS) != strlen(name)) {
		char esc[ESC_MAX(KMTLS_PROFILE_MAX)];

		kmtls_identity_escape(name, esc, sizeof(esc));
		finish(r, ENOENT, "profile \"%s\" cannot be one of ours: [kernel NAME] names are letters, digits, '.', '_' and '-'",
		       esc);
		return;
	}
	if (!p) {
		finish(r, ENOENT, "no [kernel %s] profile in kmtlsd's configuration", name);
		return;
	}
	if (!kmtls_listener_uid_allowed(&p->role[role], r->uid)) {
		finish(r, EACCES, "uid %u is not in allow-uid of [kernel %s]", r->uid, name);
		return;
	}
	if (role == KMTLS_KROLE_CLIENT && !server_name[0])
		server_name = p->conf->tls.server_name;
	if (role == KMTLS_KROLE_CLIENT && (!server_name || !server_name[0])) {
		finish(r, EINVAL, "no server name to verify: pass one, or set server-name in [kernel %s]",
		       name);
		return;
	}
	if (kmtls_now_ms() >= r->deadline_ms) {
		finish(r, ETIMEDOUT, "deadline passed before the handshake began");
		return;
	}
	r->peer_len = sizeof(r->peer);
	if (getpeername(r->fd, (struct sockaddr *)&r->peer, &r->peer_len)) {
		finish(r, ECONNRESET, "socket no longer connected");
		return;
	}
	if (getsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &r->nodelay, &len))
		r->nodelay = 1;	/* unknown: leave it as the handshake sets it */
	if (kmtls_conn_start_kernel(w, &p->role[role], r, server_name))
		finish(r, ENOMEM, "out of memory");
}

/* Worker 0: a request it ACCEPTed, to the least busy worker. */
static void dispatch(struct kmtls_kservice *ks, struct kmtls_worker *w0,
		     const struct kmtls_accept *a)
{
	struct kmtls_kreq *r = calloc(1, sizeof(*r));
	struct kmtls_kinbox *in;
	uint64_t one = 1;
	int i, best = w0->id;

	if (!r) {
		struct kmtls_kreq stack = { .ks = ks, .fd = a->fd, .id = a->id, .worker = -1 };

		send_status(&stack, ENOMEM);
		close(a->fd);
		return;
	}
	r->ks = ks;
	r->fd = a->fd;
	r->role = a->role;
	r->uid = a->uid;
	r->pid = a->pid;
	r->id = a->id;
	r->timeout_ms = a->timeout_ms;
	r->deadline_ms = kmtls_now_ms() + a->timeout_ms;
	memcpy(r->peer_name, a->peer_name, sizeof(r->peer_name));
	memcpy(r->profile, a->profile, sizeof(r->profile));
	for (i = 0; i < ks->nw; i++)
		if (atomic_load(&ks->inbox[i].inflight) < atomic_load(&ks->inbox[best].inflight))
			best = i;
	r->worker = best;
	atomic_fetch_add(&ks->inbox[best].inflight, 1);
	log_debug("kernel: request %llu accepted (%u ms left), worker %d runs it",
		  (unsigned long long)r->id, r->timeout_ms, best);
	if (best == w0->id) {
		start(ks, w0, r);
		return;
	}
	in = &ks->inbox[best];
	pthread_mutex_lock(&in->lock);
	if (in->tail)
		in->tail->next = r;
	else
		in->head = r;
	in->tail = r;
	pthread_mutex_unlock(&in->lock);
	if (write(in->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("kernel service: eventfd: %s", strerror(errno));
}

static void inbox_run(struct kmtls_kservice *ks, struct kmtls_worker *w)
{
	struct kmtls_kinbox *in = &ks->inbox[w->id];
	struct kmtls_kreq *r, *next;
	uint64_t n;

	if (read(in->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_err("kernel service: eventfd: %s", strerror(errno));
	pthread_mutex_lock(&in->lock);
	r = in->head;
	in->head = in->tail = NULL;
	pthread_mutex_unlock(&in->lock);
	for (; r; r = next) {
		next = r->next;
		r->next = NULL;
		start(ks, w, r);
	}
}

/* ---- worker 0: the netlink socket ---------------------------------------- */

static void log_serving(struct kmtls_kservice *ks)
{
	char names[256] = "";
	int i;

	for (i = 0; i < ks->n; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			 i ? ", " : "", ks->profiles[i].conf->tls.name);
	log_info("kernel service: serving kmtls.ko's requests (profiles %s)", names);
}

static void attach(struct kmtls_kservice *ks)
{
	int ret = kmtls_upcall_attach(&ks->up);
	int was = ks->state;

	ks->next_attach_ms = kmtls_now_ms() + ATTACH_RETRY_MS;
	/* Joined after a refused ACCEPT: serving once an ACCEPT goes through. */
	if (!ret && ks->refusals)
		return;
	ks->state = ret ? ret : 1;
	if (ks->state == was)
		return;		/* said so already */
	if (!ret) {
		log_serving(ks);
	} else if (ret == -ENOENT) {
		log_warn("kernel service: kmtls.ko not loaded: modprobe kmtls (kmtlsd keeps serving its listeners and starts the kernel service once the module is there)");
	} else if (ret == -EPERM) {
		log_err("kernel service: joining kmtls.ko's agents group was refused: kmtlsd needs CAP_NET_ADMIN for the kernel service");
	} else {
		log_err("kernel service: cannot reach kmtls.ko: %s; trying again later", strerror(-ret));
	}
}

/*
 * kmtls.ko refuses our ACCEPT although joining its group worked: EPERM
 * when kmtlsd has CAP_NET_ADMIN only in the user namespace that owns its
 * network namespace (the group needs it there, ACCEPT in the initial
 * one), ENOENT or EOPNOTSUPP again right after a fresh look. Say so once;
 * stay out of the group (left by the caller), so that kmtls.ko sees no
 * agent and fails requests by net.kmtls.agent_wait_ms instead of each
 * waiting to its deadline; look again later, less and less often (a
 * SIGHUP looks at once). Requests queued while we were in the group still
 * wait to their deadline: failing them would take a DONE, which kmtls.ko
 * refuses the same way.
 */
static void accept_refused(struct kmtls_kservice *ks, int err)
{
	unsigned int wait = ks->refused_ms ? 2 * ks->refused_ms : REFUSED_FIRST_MS;

	ks->refusals++;
	ks->refused_ms = wait < ATTACH_RETRY_MS ? wait : ATTACH_RETRY_MS;
	ks->next_attach_ms = kmtls_now_ms() + ks->refused_ms;
	if (ks->state == err) {	/* said so already */
		log_debug("kernel service: ACCEPT refused again (%s); next look in %u ms",
			  strerror(-err), ks->refused_ms);
		return;
	}
	ks->state = err;
	log_err("kernel service: kmtls.ko refuses this kmtlsd's ACCEPT: %s%s; not serving kernel requests (without an agent they fail after net.kmtls.agent_wait_ms); trying again in %u s, then less often",
		strerror(-err), err == -EPERM ?
		" (kmtlsd needs CAP_NET_ADMIN in the initial user namespace: joining kmtls.ko's group in a network namespace owned by another user namespace is not enough)" :
		" (is the loaded kmtls.ko the one this kmtlsd was built for?)",
		ks->refused_ms / 1000);
}

static void accept_all(struct kmtls_kservice *ks, struct kmtls_worker *w)
{
	struct kmtls_accept a;
	int ret;

	while (ks->up.ready && !ks->draining) {
		/*
		 * Cleared before, not after: a READY read while this ACCEPT
		 * waits for its answer sets it again. Clearing it on EAGAIN
		 * lost that request until its deadline.
		 */
		ks->up.ready = 0;
		ret = kmtls_upcall_accept(&ks->up, &a);
		if (ret >= 0 && ks->refusals) {
			ks->refusals = 0;
			ks->refused_ms = 0;
			if (ks->state != 1) {
				ks->state = 1;
				log_serving(ks);
			}
		}
		if (ret > 0) {
			ks->up.ready = 1;	/* more may be queued */
			dispatch(ks, w, &a);
			continue;
		}
		if (ret == 0)
			return;		/* the queue is empty */
		if (ret == -ENOENT || ret == -EOPNOTSUPP || ret == -EPERM) {
			kmtls_upcall_detach(&ks->up);
			atomic_store(&ks->up.family, 0);
			/* The family gone or replaced: look again now, but once. */
			if (ret != -EPERM && !ks->refusals++)
				attach(ks);
			else
				accept_refused(ks, ret);
			return;
		}
		kmtls_log_once("kservice-accept", LOG_ERR,
			       "kernel service: ACCEPT failed: %s; retrying (requests wait in kmtls.ko meanwhile)",
			       strerror(-ret));
		ks->up.ready = 1;
		ks->next_accept_ms = kmtls_now_ms() + ACCEPT_RETRY_MS;
		return;
	}
}

void kmtls_kservice_poll(struct kmtls_worker *w)
{
	struct kmtls_kservice *ks = w->ks;
	uint64_t now;

	if (!ks || w->id || ks->draining)
		return;
	now = kmtls_now_ms();
	if (ks->up.vanished) {
		ks->up.vanished = 0;
		if (ks->state == 1)
			log_warn("kernel service: kmtls.ko was unloaded; waiting for it to come back");
		ks->state = -ENOENT;
	}
	if (ks->up.appeared || atomic_exchange(&ks->retry, 0) ||
	    (!ks->up.joined && now >= ks->next_attach_ms)) {
		ks->up.appeared = 0;
		attach(ks);
	}
	if (ks->up.ready && now >= ks->next_accept_ms)
		accept_all(ks, w);
}

void kmtls_kservice_event(struct kmtls_worker *w, uint64_t tag)
{
	struct kmtls_kservice *ks = w->ks;

	if (!ks)
		return;
	if (tag == KMTLS_KSERVICE_TAG_NL) {
		kmtls_upcall_read(&ks->up);
		kmtls_kservice_poll(w);
	} else {
		inbox_run(ks, w);
	}
}

void kmtls_kservice_drain(struct kmtls_worker *w)
{
	struct kmtls_kservice *ks = w->ks;

	if (!ks || w->id || ks->draining)
		return;
	ks->draining = 1;
	kmtls_upcall_detach(&ks->up);
	log_info("kernel service: taking no more requests; queued ones wait in kmtls.ko for the next agent");
}

/* ---- life ---------------------------------------------------------------- */

static int watch(struct kmtls_worker *w, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int kmtls_kservice_open(struct kmtls_kservice *ks, struct kmtls_worker *ws,
			int nw, char *err, size_t errlen)
{
	int i;

	if (!ks->n)
		return 0;
	ks->inbox = calloc(nw, sizeof(*ks->inbox));
	if (!ks->inbox) {
		snprintf(err, errlen, "kernel service: out of memory");
		return -1;
	}
	ks->ws = ws;
	ks->nw = nw;
	for (i = 0; i < nw; i++)
		ks->inbox[i].efd = -1;
	for (i = 0; i < nw; i++) {
		pthread_mutex_init(&ks->inbox[i].lock, NULL);
		ks->inbox[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ks->inbox[i].efd < 0 || watch(&ws[i], ks->inbox[i].efd, KMTLS_KSERVICE_TAG_INBOX)) {
			snprintf(err, errlen, "kernel service: worker %d: %s", i, strerror(errno));
			return -1;
		}
		ws[i].ks = ks;
	}
	if (kmtls_upcall_open(&ks->up, err, errlen))
		return -1;
	if (watch(&ws[0], ks->up.fd, KMTLS_KSERVICE_TAG_NL)) {
		snprintf(err, errlen, "kernel service: epoll: %s", strerror(errno));
		return -1;
	}
	attach(ks);
	return 0;
}

void kmtls_kservice_teardown(struct kmtls_kservice *ks)
{
	struct kmtls_kreq *r, *next;
	int i;

	for (i = 0; ks->inbox && i < ks->nw; i++) {
		for (r = ks->inbox[i].head; r; r = next) {
			next = r->next;
			send_status(r, ECONNABORTED);
			close(r->fd);
			free(r);
		}
		if (ks->inbox[i].efd >= 0)
			close(ks->inbox[i].efd);
		pthread_mutex_destroy(&ks->inbox[i].lock);
	}
	free(ks->inbox);
	ks->inbox = NULL;
	kmtls_upcall_close(&ks->up);
	profiles_free(ks);
}
