// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A resumed session is re-checked against the identity its ticket carries:
 * a client revoked after it got its ticket (CRL replaced, SIGHUP) does not
 * resume, even when an earlier resumption passed (and was cached), and is
 * refused like on a full handshake ("revoked", counted as a
 * failed handshake), with nothing reaching the backend; a ticket from
 * another kmtlsd whose policy does not admit the client is refused the
 * same way ("not allowed by policy"), and so is one whose ticket predates
 * a SIGHUP that narrowed the policy in the config file; a client still
 * allowed resumes, is counted as resumed and the backend's PROXY header
 * still names it. That reload leaves established connections running.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "../../agent/resume.h"
#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/status_http.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

FIXTURE(rr) {
	struct backend be;
	struct kmtlsd a, b;
	int sport;
	char crl[300], keys[300];
	WOLFSSL_CTX *good, *revoked, *intruder;
	char conf[300];
	char ca[300];		/* write_conf()'s CA bundle; "" for ca.pem */
};

static int copy_file(const char *from, const char *to)
{
	char tmp[320], buf[4096];
	int in, out, ok = 1;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.new", to);
	in = open(from, O_RDONLY);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0)
		ok = 0;
	while (ok && (n = read(in, buf, sizeof(buf))) > 0)
		ok = write(out, buf, n) == n;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	/* Replaced by rename, as operators (and their tools) do. */
	return ok ? rename(tmp, to) : -1;
}

static WOLFSSL_CTX *client_ctx(const char *cert, const char *key)
{
	struct kmtls_tls_conf conf = {
		.cert = cert, .key = key, .ca = pki("ca.pem"), .tls_min = 0x0304,
	};
	char err[256];

	return kmtls_tls_ctx_new(&conf, err, sizeof(err));
}

FIXTURE_SETUP(rr)
{
	const char *be_args[] = { "--mode", "echo", "--proxy", NULL };
	unsigned char key[80];
	FILE *r = fopen("/dev/urandom", "r");
	int fd;

	signal(SIGPIPE, SIG_IGN);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(1, (int)fread(key, sizeof(key), 1, r));
	fclose(r);
	snprintf(self->keys, sizeof(self->keys), "%s/ticket.keys", test_tmpdir());
	fd = open(self->keys, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(80, write(fd, key, 80));
	close(fd);
	/* Nothing revoked yet: bad/revoked is a client like any other. */
	snprintf(self->crl, sizeof(self->crl), "%s/clients.crl", test_tmpdir());
	ASSERT_EQ(0, copy_file(pki("crl-empty.pem"), self->crl));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	ASSERT_EQ(0, kmtls_tls_global_init());
	self->good = client_ctx(pki("client.pem"), pki("client.key"));
	self->revoked = client_ctx(pki("bad/revoked.pem"), pki("bad/revoked.key"));
	/* A valid client with other names: only a policy can keep it out. */
	self->intruder = client_ctx(pki("bad/policy.pem"), pki("bad/policy.key"));
	ASSERT_NE(NULL, self->good);
	ASSERT_NE(NULL, self->revoked);
	ASSERT_NE(NULL, self->intruder);
}

FIXTURE_TEARDOWN(rr)
{
	if (!__test_passed(_metadata)) {
		kmtlsd_dump_log(&self->a);
		kmtlsd_dump_log(&self->b);
	}
	EXPECT_EQ(0, kmtlsd_stop(&self->a));
	EXPECT_EQ(0, kmtlsd_stop(&self->b));
	backend_stop(&self->be);
	wolfSSL_CTX_free(self->good);
	wolfSSL_CTX_free(self->revoked);
	wolfSSL_CTX_free(self->intruder);
}

/* kmtlsd with the test CRL file, PROXY v2 with the certificate, a status port. */
static int start(FIXTURE_DATA(rr) *self, struct kmtlsd *d, const char *allow_uri)
{
	char status[64];
	const char *args[] = {
		"--crl", self->crl, "--proxy-protocol", "v2-cert", "--ticket-keys", self->keys,
		"--status-listen", status, "--allow-uri", allow_uri, NULL,
	};

	self->sport = free_port();
	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	return kmtlsd_start(d, self->be.port, args);
}

/*
 * The same as start(), from a config file (what a reload re-reads), with
 * @allow_uri the listener's allow-uri lines.
 */
static int write_conf(FIXTURE_DATA(rr) *self, int port, const char *allow_uri)
{
	FILE *f = fopen(self->conf, "w");

	if (!f)
		return -1;
	fprintf(f, "[listener rr]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
		"cert = %s\nkey = %s\nca = %s\ncrl = %s\nproxy-protocol = v2-cert\n"
		"ticket-keys = %s\n%s", port, self->be.port, pki("server.pem"),
		pki("server.key"), self->ca[0] ? self->ca : pki("ca.pem"), self->crl, self->keys,
		allow_uri);
	return fclose(f);
}

static int start_conf(FIXTURE_DATA(rr) *self, struct kmtlsd *d, const char *allow_uri)
{
	char status[64];
	const char *args[] = { "-c", self->conf, "--status-listen", status, NULL };
	int port = free_port();

	self->sport = free_port();
	snprintf(status, sizeof(status), "127.0.0.1:%d", self->sport);
	snprintf(self->conf, sizeof(self->conf), "%s/rr.conf", test_tmpdir());
	if (write_conf(self, port, allow_uri))
		return -1;
	return kmtlsd_run(d, port, args);
}

#define BOTH_ALLOWED	"allow-uri = spiffe://example.org/*\nallow-uri = spiffe://other.org/*\n"
#define ONE_ALLOWED	"allow-uri = spiffe://example.org/*\n"
#define NARROWED	"reload: [listener rr] allow-uri = \"spiffe://example.org/*\" (was \"spiffe://example.org/*, spiffe://other.org/*\")"

/* The config file says @allow_uri now; SIGHUP; wait for the reload to end. */
static int narrow(FIXTURE_DATA(rr) *self, struct kmtlsd *d, const char *allow_uri)
{
	if (write_conf(self, d->port, allow_uri) || proc_signal(&d->proc, SIGHUP))
		return -1;
	return kmtlsd_wait_log(d, "reloaded certificates", 5000);
}

/* Connections the backend saw, and what the last one's PROXY header said. */
static int backend_seen(struct backend *be, int n, const char **cn, long *cert_len)
{
	static char cn_buf[64];
	json_object *o;

	if (backend_wait_conns(be, n, 3000))
		return -1;
	o = backend_report_line(be, n - 1);
	if (!o)
		return -1;
	snprintf(cn_buf, sizeof(cn_buf), "%s", jstr(o, "ssl_cn") ? jstr(o, "ssl_cn") : "");
	*cn = cn_buf;
	*cert_len = jint(o, "cert_len");
	json_object_put(o);
	return backend_report_line(be, n) ? -2 : 0;	/* and not one more */
}

/*
 * The PP2_CLIENT_* flags of the backend's connection @i (from 0), or -1:
 * SSL | CERT_CONN | CERT_SESS (7) after a full handshake, SSL | CERT_SESS
 * (5) after a resumption, whose connection carried no certificate.
 */
static long backend_client_flags(struct backend *be, int i)
{
	json_object *o = backend_report_line(be, i);
	long v = o ? jint(o, "ssl_client") : -1;

	json_object_put(o);
	return v;
}

/* How many of the first @n connections the backend saw were from @cn. */
static int backend_cn_count(struct backend *be, int n, const char *cn)
{
	json_object *o;
	int i, count = 0;

	for (i = 0; i < n; i++) {
		o = backend_report_line(be, i);
		count += o && jstr(o, "ssl_cn") && !strcmp(jstr(o, "ssl_cn"), cn);
		json_object_put(o);
	}
	return count;
}

TEST_F(rr, revoked_after_ticket_is_refused)
{
	WOLFSSL_SESSION *rs = NULL, *gs = NULL;
	const char *cn;
	long cert_len;

	/* bad/revoked has the good client's SANs, only its CN differs. */
	ASSERT_EQ(0, start(self, &self->a, "spiffe://example.org/*"));
	ASSERT_EQ(0, client_visit(self->good, self->a.port, NULL, &gs));
	ASSERT_NE(NULL, gs);
	ASSERT_EQ(0, client_visit(self->revoked, self->a.port, NULL, &rs));
	ASSERT_NE(NULL, rs);
	/* Not revoked yet: it resumes, and its re-check pass is cached. */
	ASSERT_EQ(1, client_visit(self->revoked, self->a.port, rs, NULL));
	ASSERT_EQ(0, backend_seen(&self->be, 3, &cn, &cert_len));

	/* The operator revokes it: a new CRL in place, SIGHUP. */
	ASSERT_EQ(0, copy_file(pki("crl.pem"), self->crl));
	ASSERT_EQ(0, kmtlsd_reload(&self->a, 1));
	/*
	 * The reloaded context learns the intermediate CA (which signs the
	 * CRL) from a full handshake; until then a ticket is declined
	 * because its CRL cannot be checked yet, not because it is revoked.
	 */
	ASSERT_EQ(0, client_visit(self->good, self->a.port, NULL, NULL));
	EXPECT_EQ(-1, client_visit(self->revoked, self->a.port, rs, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "session ticket declined (full handshake): subject \"/CN=revoked-client/O=kmtls test\": revoked: serial", 2000));
	/* The full handshake it fell back to refuses it as usual. */
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "revoked: serial 1004 by issuer", 2000));
	EXPECT_EQ(1, status_int(self->sport, "handshakes.failed"));
	EXPECT_EQ(1, status_int(self->sport, "handshakes.resumed"));

	/* Still allowed: resumes, counted, and the backend learns who it is. */
	EXPECT_EQ(1, client_visit(self->good, self->a.port, gs, NULL));
	EXPECT_EQ(2, status_int(self->sport, "handshakes.resumed"));
	EXPECT_EQ(1, status_int(self->sport, "handshakes.failed"));
	EXPECT_EQ(5, status_int(self->sport, "handshakes.ok"));
	/* The refused one never reached the backend. */
	ASSERT_EQ(0, backend_seen(&self->be, 5, &cn, &cert_len));
	EXPECT_STREQ("client", cn);
	EXPECT_LT(0, cert_len);
	/* Full, full, resumed, full, resumed. */
	EXPECT_EQ(7, backend_client_flags(&self->be, 0));
	EXPECT_EQ(7, backend_client_flags(&self->be, 1));
	EXPECT_EQ(5, backend_client_flags(&self->be, 2));
	EXPECT_EQ(7, backend_client_flags(&self->be, 3));
	EXPECT_EQ(5, backend_client_flags(&self->be, 4));
	wolfSSL_SESSION_free(rs);
	wolfSSL_SESSION_free(gs);
}

/*
 * Two kmtlsd share ticket keys (one load balancer in front) but not their
 * policy: a ticket from A must not let B's policy be skipped.
 */
TEST_F(rr, ticket_from_other_policy_is_refused)
{
	WOLFSSL_SESSION *s = NULL;
	int bport;

	ASSERT_EQ(0, start(self, &self->a, "spiffe://example.org/*"));
	ASSERT_EQ(0, start(self, &self->b, "spiffe://example.org/payments"));
	bport = self->sport;
	ASSERT_EQ(0, client_visit(self->good, self->a.port, NULL, &s));
	ASSERT_NE(NULL, s);
	EXPECT_EQ(-1, client_visit(self->good, self->b.port, s, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->b, "not allowed by policy", 2000));
	EXPECT_EQ(1, status_int(bport, "handshakes.failed"));
	EXPECT_EQ(0, status_int(bport, "handshakes.ok"));
	/* Where the policy admits it, the same ticket resumes. */
	EXPECT_EQ(1, client_visit(self->good, self->a.port, s, NULL));
	wolfSSL_SESSION_free(s);
}

/*
 * Two kmtlsd share ticket keys and policy but not their CA bundle (B's has
 * the intermediate too: it trusts the client as well). A ticket carries
 * its leaf, not the chain: it resumes only under the bundle it was issued
 * under, and at B the client gets a full handshake instead.
 */
TEST_F(rr, ticket_from_other_ca_bundle_is_not_resumed)
{
	WOLFSSL_SESSION *s = NULL;
	char buf[8192];
	FILE *in, *out;
	size_t n;
	int i;

	snprintf(self->ca, sizeof(self->ca), "%s/bundle.pem", test_tmpdir());
	out = fopen(self->ca, "w");
	ASSERT_NE(NULL, out);
	for (i = 0; i < 2; i++) {
		in = fopen(pki(i ? "intermediate.pem" : "ca.pem"), "r");
		ASSERT_NE(NULL, in);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			ASSERT_EQ(n, fwrite(buf, 1, n, out));
		fclose(in);
	}
	ASSERT_EQ(0, fclose(out));
	ASSERT_EQ(0, start(self, &self->a, "spiffe://example.org/*"));
	ASSERT_EQ(0, start_conf(self, &self->b, ONE_ALLOWED));
	ASSERT_EQ(0, client_visit(self->good, self->a.port, NULL, &s));
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, client_visit(self->good, self->b.port, s, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->b, "issued under another CA bundle", 2000));
	/* Under the bundle it was issued under, the same ticket resumes. */
	EXPECT_EQ(1, client_visit(self->good, self->a.port, s, NULL));
	wolfSSL_SESSION_free(s);
}

/*
 * The config file narrows the policy, SIGHUP: a client no longer allowed
 * is refused from its next handshake on, with nothing at the backend; one
 * still allowed is served; a connection that was already open keeps
 * relaying.
 */
TEST_F(rr, reload_narrows_policy)
{
	WOLFSSL_SESSION *none = NULL;
	WOLFSSL *open_ssl;
	const char *cn;
	long cert_len;
	char buf[4];
	int fd;

	ASSERT_EQ(0, start_conf(self, &self->a, BOTH_ALLOWED));
	ASSERT_EQ(0, client_visit(self->intruder, self->a.port, NULL, NULL));
	ASSERT_EQ(0, backend_seen(&self->be, 1, &cn, &cert_len));
	EXPECT_STREQ("intruder", cn);
	/* Established before the reload, used after it. */
	ASSERT_EQ(0, tcp_connect_port(self->a.port, &fd));
	open_ssl = wolfSSL_new(self->intruder);
	wolfSSL_set_fd(open_ssl, fd);
	ASSERT_EQ(WOLFSSL_SUCCESS, wolfSSL_connect(open_ssl));
	ASSERT_EQ(4, wolfSSL_write(open_ssl, "ping", 4));
	ASSERT_EQ(4, wolfSSL_read(open_ssl, buf, 4));

	ASSERT_EQ(0, narrow(self, &self->a, ONE_ALLOWED));
	EXPECT_EQ(1, proc_log_count(&self->a.proc, NARROWED));
	EXPECT_EQ(0, proc_log_count(&self->a.proc, "restart kmtlsd"));
	EXPECT_EQ(-1, client_visit(self->intruder, self->a.port, NULL, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "not allowed by policy: subject \"/CN=intruder/O=kmtls test\"", 2000));
	EXPECT_EQ(0, client_visit(self->good, self->a.port, NULL, &none));
	EXPECT_EQ(4, wolfSSL_write(open_ssl, "pong", 4));
	EXPECT_EQ(4, wolfSSL_read(open_ssl, buf, 4));
	EXPECT_EQ(0, memcmp(buf, "pong", 4));
	wolfSSL_shutdown(open_ssl);
	wolfSSL_free(open_ssl);
	close(fd);
	/*
	 * The backend reports a connection as it ends: the first intruder,
	 * the client, the one kept open; the refused one never reached it.
	 */
	ASSERT_EQ(0, backend_seen(&self->be, 3, &cn, &cert_len));
	EXPECT_STREQ("intruder", cn);
	EXPECT_EQ(1, backend_cn_count(&self->be, 3, "client"));
	EXPECT_EQ(1, status_int(self->sport, "handshakes.failed"));
	wolfSSL_SESSION_free(none);
}

/*
 * Tickets from before the narrowing: the client the policy no longer
 * admits cannot resume (nor get in by a full handshake), the one it still
 * admits resumes.
 */
TEST_F(rr, reload_narrowed_ticket_is_refused)
{
	WOLFSSL_SESSION *is = NULL, *gs = NULL;
	const char *cn;
	long cert_len;

	ASSERT_EQ(0, start_conf(self, &self->a, BOTH_ALLOWED));
	ASSERT_EQ(0, client_visit(self->intruder, self->a.port, NULL, &is));
	ASSERT_EQ(0, client_visit(self->good, self->a.port, NULL, &gs));
	ASSERT_NE(NULL, is);
	ASSERT_NE(NULL, gs);
	/* The tickets resume while the policy admits both. */
	EXPECT_EQ(1, client_visit(self->intruder, self->a.port, is, NULL));
	ASSERT_EQ(0, backend_seen(&self->be, 3, &cn, &cert_len));

	ASSERT_EQ(0, narrow(self, &self->a, ONE_ALLOWED));
	EXPECT_EQ(1, proc_log_count(&self->a.proc, NARROWED));
	EXPECT_EQ(-1, client_visit(self->intruder, self->a.port, is, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "session ticket declined (full handshake): subject \"/CN=intruder/O=kmtls test\": not allowed by policy", 2000));
	/* The ticket is declined first; the refusal that counts comes after. */
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "not allowed by policy: subject \"/CN=intruder/O=kmtls test\"", 2000));
	EXPECT_EQ(1, status_int(self->sport, "handshakes.failed"));
	EXPECT_EQ(1, client_visit(self->good, self->a.port, gs, NULL));
	EXPECT_EQ(2, status_int(self->sport, "handshakes.resumed"));
	ASSERT_EQ(0, backend_seen(&self->be, 4, &cn, &cert_len));
	EXPECT_STREQ("client", cn);
	EXPECT_LT(0, cert_len);
	wolfSSL_SESSION_free(is);
	wolfSSL_SESSION_free(gs);
}

/*
 * A certificate whose names cannot be matched (bad/nulsan: a NUL inside a
 * SAN) passes without an allow-list and resumes like any other, with no
 * CN passed on either way; once a policy has entries its ticket is
 * declined and the full handshake refused, saying why.
 */
TEST_F(rr, unmatchable_names_resume_only_without_policy)
{
	WOLFSSL_CTX *ns = client_ctx(pki("bad/nulsan.pem"), pki("bad/nulsan.key"));
	WOLFSSL_SESSION *s = NULL;
	json_object *o;
	int i;

	ASSERT_NE(NULL, ns);
	ASSERT_EQ(0, start_conf(self, &self->a, ""));
	ASSERT_EQ(0, client_visit(ns, self->a.port, NULL, &s));
	ASSERT_NE(NULL, s);
	EXPECT_EQ(1, client_visit(ns, self->a.port, s, NULL));
	EXPECT_EQ(1, client_visit(ns, self->a.port, s, NULL));	/* from the cache */
	ASSERT_EQ(0, backend_wait_conns(&self->be, 3, 3000));
	for (i = 0; i < 3; i++) {
		o = backend_report_line(&self->be, i);
		ASSERT_NE(NULL, o);
		EXPECT_EQ(NULL, jstr(o, "ssl_cn")) TH_LOG("connection %d", i + 1);
		EXPECT_LT(0, jint(o, "cert_len"));
		json_object_put(o);
	}

	ASSERT_EQ(0, narrow(self, &self->a, ONE_ALLOWED));
	EXPECT_EQ(-1, client_visit(ns, self->a.port, s, NULL));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "session ticket declined (full handshake): subject \"/CN=nulsan-client/O=kmtls test\": not allowed by policy: a name that cannot be matched", 2000));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->a, "not allowed by policy: certificate \"/CN=nulsan-client/O=kmtls test\" has a name that cannot be matched", 2000));
	wolfSSL_SESSION_free(s);
	wolfSSL_CTX_free(ns);
}

/* The sealed layout round-trips; anything else is "no certificate". */
TEST(leaf_trailer)
{
	struct kmtls_verify v = { .leaf_der_len = 5, .chain_not_after = "2031-02-03T04:05:06Z" };
	unsigned char buf[96], der[5] = { 1, 2, 3, 4, 5 };
	static const unsigned char zeros[KMTLS_CA_DIGEST_LEN];
	struct kmtls_resume_sealed s;
	int n, len;

	v.leaf_der = der;
	memset(buf, 0xaa, sizeof(buf));
	n = kmtls_resume_seal_leaf(&v, buf, 20, sizeof(buf));
	ASSERT_EQ(20 + 5 + KMTLS_RESUME_TRAILER, n);
	ASSERT_EQ(20, kmtls_resume_find_leaf(buf, n, &s));
	EXPECT_EQ(5, s.der_len);
	EXPECT_EQ(0, memcmp(der, s.der, 5));
	EXPECT_EQ(0, memcmp(zeros, s.ca, sizeof(zeros)));	/* no policy: no bundle */
	EXPECT_STREQ("2031-02-03T04:05:06Z", s.chain_not_after);
	/* No room: the ticket goes out without it. */
	EXPECT_EQ(80, kmtls_resume_seal_leaf(&v, buf, 80, sizeof(buf)));
	/* wolfSSL's bytes alone, a bad magic, a length past the start. */
	EXPECT_EQ(-1, kmtls_resume_find_leaf(buf, 20, &s));
	buf[n - 1] ^= 1;
	EXPECT_EQ(-1, kmtls_resume_find_leaf(buf, n, &s));
	buf[n - 1] ^= 1;
	len = n - 20;	/* the trailer claims 5 bytes; only itself and 5 are there */
	EXPECT_EQ(0, kmtls_resume_find_leaf(buf + 20, len, &s));
	EXPECT_EQ(-1, kmtls_resume_find_leaf(buf + 21, len - 1, &s));
	/* No CA sent: no date; a chain date that did not decode: no seal. */
	v.chain_not_after[0] = '\0';
	ASSERT_EQ(n, kmtls_resume_seal_leaf(&v, buf, 20, sizeof(buf)));
	ASSERT_EQ(20, kmtls_resume_find_leaf(buf, n, &s));
	EXPECT_STREQ("", s.chain_not_after);
	strcpy(v.chain_not_after, "?");
	EXPECT_EQ(20, kmtls_resume_seal_leaf(&v, buf, 20, sizeof(buf)));
}

/*
 * The dates are checked again on every resumption, the cached pass
 * included: each resumption issues the next ticket, so a client that keeps
 * reconnecting would otherwise resume past its notAfter.
 */
TEST(dates_are_rechecked)
{
	struct kmtls_tls_conf conf = {
		.cert = pki("server.pem"), .key = pki("server.key"), .ca = pki("ca.pem"),
	};
	static const struct {
		const char *pem, *want, *chain;
	} c[] = {
		{ "client.pem", NULL, NULL },
		{ "client.pem", NULL, NULL },	/* the cached pass */
		{ "bad/expired.pem", "certificate expired (not after ", NULL },
		{ "bad/notyet.pem", "certificate not yet valid (not before ", NULL },
		/* An intermediate that expired since the full handshake. */
		{ "client.pem", "a CA certificate of its chain expired (not after 2020-01-02T03:04:05Z",
		  "2020-01-02T03:04:05Z" },
		{ "client.pem", NULL, "2999-01-02T03:04:05Z" },
	};
	static const unsigned char no_ca[KMTLS_CA_DIGEST_LEN];	/* no policy */
	struct kmtls_resume_sealed s = { .ca = no_ca };
	unsigned char pem[16384], der[8192];
	char err[256], why[512];
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	size_t i;

	ctx = kmtls_tls_ctx_new(&conf, err, sizeof(err));
	ASSERT_NE(NULL, ctx) TH_LOG("%s", err);
	ssl = wolfSSL_new(ctx);
	ASSERT_NE(NULL, ssl);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct kmtls_verify v = { 0 };
		FILE *f = fopen(pki(c[i].pem), "r");
		int n, len, ret;

		ASSERT_NE(NULL, f);
		n = (int)fread(pem, 1, sizeof(pem), f);
		fclose(f);
		len = wc_CertPemToDer(pem, n, der, sizeof(der), CERT_TYPE);
		ASSERT_LT(0, len) TH_LOG("%s", c[i].pem);
		why[0] = 0;
		s.der = der;
		s.der_len = len;
		snprintf(s.chain_not_after, sizeof(s.chain_not_after), "%s",
			 c[i].chain ? c[i].chain : "");
		ret = kmtls_resume_check(ssl, &v, &s, why, sizeof(why));
		if (c[i].want) {
			EXPECT_EQ(-1, ret) TH_LOG("%s resumed", c[i].pem);
			EXPECT_NE(NULL, strstr(why, c[i].want)) TH_LOG("%s: %s", c[i].pem, why);
		} else {
			EXPECT_EQ(0, ret) TH_LOG("%s: %s", c[i].pem, why);
			/* Handed on to the ticket this resumption issues. */
			EXPECT_STREQ(s.chain_not_after, v.chain_not_after);
		}
		kmtls_verify_reset(&v);
	}
	wolfSSL_free(ssl);
	wolfSSL_CTX_free(ctx);
}

TEST_HARNESS_MAIN
