// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The certificate verify callback: wolfSSL verifies, we watch and may only
 * say no.
 *
 * wolfSSL (built with WOLFSSL_ALWAYS_VERIFY_CB and WOLFSSL_VERIFY_CB_ALL_CERTS)
 * calls us once per certificate the peer sent, CAs first and the leaf last,
 * with its verdict in @preverify and its error code in store->error. We keep
 * the first failure with the failing certificate's names and dates, so the
 * log line can say what an operator must fix, and we decode the leaf for the
 * identity. The policy runs on a leaf wolfSSL accepted; refusing it here,
 * inside the handshake, means the client gets an alert and the backend never
 * sees the connection.
 *
 * The callback never returns 1 where wolfSSL said 0: a failure stays one.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "verify.h"

/* The DER of the certificate the callback is looking at. */
static const unsigned char *store_der(WOLFSSL_X509_STORE_CTX *store, int *len)
{
	const unsigned char *der = NULL;
	int d = store->error_depth;

	*len = 0;
	if (store->current_cert)
		der = wolfSSL_X509_get_der(store->current_cert, len);
	if (der && *len > 0)
		return der;
	/*
	 * At depth 0 current_cert is the session's peer X509, which wolfSSL
	 * fills only when the leaf passed its fatal checks: read the raw buffer.
	 */
	if (store->certs && d >= 0 && d < store->totalCerts) {
		*len = (int)store->certs[d].length;
		return store->certs[d].buffer;
	}
	return NULL;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

static void record_bad(struct kmtls_verify *v, const struct kmtls_identity *id)
{
	copy_str(v->bad_subject, sizeof(v->bad_subject), id->subject);
	copy_str(v->bad_issuer, sizeof(v->bad_issuer), id->issuer);
	copy_str(v->bad_serial, sizeof(v->bad_serial), id->serial);
	copy_str(v->bad_not_before, sizeof(v->bad_not_before), id->not_before);
	copy_str(v->bad_not_after, sizeof(v->bad_not_after), id->not_after);
}

/* Keep the first failure only: later ones are usually its consequences. */
static void record_failure(struct kmtls_verify *v, int err, int depth,
			   const struct kmtls_identity *id)
{
	if (v->err)
		return;
	v->err = err;
	v->depth = depth;
	if (id)
		record_bad(v, id);
}

int kmtls_verify_keep_der(struct kmtls_verify *v, const unsigned char *der,
			  int len)
{
	unsigned char *copy = len > 0 ? malloc(len) : NULL;

	if (!copy)
		return -1;
	memcpy(copy, der, len);
	free(v->leaf_der);
	v->leaf_der = copy;
	v->leaf_der_len = len;
	return 0;
}

static void take_leaf(struct kmtls_verify *v, const unsigned char *der, int len)
{
	if (v->have_leaf)	/* a second Certificate message: keep the newest */
		kmtls_identity_free(&v->leaf);
	v->have_leaf = !kmtls_identity_from_der(der, len, &v->leaf);
	/* For the session ticket: without it the ticket resumes nothing. */
	if (kmtls_verify_keep_der(v, der, len)) {
		free(v->leaf_der);
		v->leaf_der = NULL;
		v->leaf_der_len = 0;
	}
}

/* A CA certificate of the peer's chain that wolfSSL accepted. */
static void take_ca(struct kmtls_verify *v, const unsigned char *der, int len)
{
	char na[sizeof(v->chain_not_after)];

	kmtls_cert_not_after(der, len, na, sizeof(na));
	if (!v->chain_not_after[0] || na[0] == '?' ||
	    (v->chain_not_after[0] != '?' && strcmp(na, v->chain_not_after) < 0))
		memcpy(v->chain_not_after, na, sizeof(na));
}

/* wolfSSL said no: note which certificate and why, and agree. */
static int cert_failed(struct kmtls_verify *v, WOLFSSL_X509_STORE_CTX *store,
		       const unsigned char *der, int len)
{
	struct kmtls_identity id, *idp = NULL;
	int depth = store->error_depth, ret;

	if (depth == 0 && (v->have_leaf || v->leaf.names_bad)) {
		idp = &v->leaf;
	} else if (der) {
		/* Names or not, the subject and dates are there for the message. */
		ret = kmtls_identity_from_der(der, len, &id);
		if (!ret || ret == KMTLS_IDENTITY_BAD_NAMES)
			idp = &id;
	}
	record_failure(v, store->error ? store->error : VERIFY_CERT_ERROR,
		       depth, idp);
	if (idp == &id)
		kmtls_identity_free(&id);
	return 0;
}

/* wolfSSL accepted the leaf: the policy has the last word. */
static int leaf_ok(struct kmtls_verify *v)
{
	const struct kmtls_identity *id = v->have_leaf ? &v->leaf : NULL;

	if (v->err)		/* an earlier certificate failed: stay failed */
		return 0;
	if (!kmtls_policy_allows(v->policy, id)) {
		record_failure(v, KMTLS_VERIFY_POLICY, 0,
			       v->leaf.names_bad ? &v->leaf : id);
		return 0;
	}
	return 1;
}

static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct kmtls_verify *v = store->userCtx;
	const unsigned char *der;
	int len;

	if (!v)			/* not bound: wolfSSL's verdict, no policy */
		return preverify;
	v->chain_len = store->totalCerts;
	/*
	 * TLS 1.2 asks us about an empty Certificate message with preverify
	 * set; wolfSSL refuses it later (FAIL_IF_NO_PEER_CERT), but say so now
	 * rather than blame the policy for a certificate that is not there.
	 */
	if (store->totalCerts <= 0) {
		record_failure(v, NO_PEER_CERT, 0, NULL);
		return 0;
	}
	der = store_der(store, &len);
	if (store->error_depth == 0 && der)
		take_leaf(v, der, len);
	if (!preverify)
		return cert_failed(v, store, der, len);
	if (store->error_depth > 0 && der)
		take_ca(v, der, len);
	return store->error_depth == 0 ? leaf_ok(v) : 1;
}

void kmtls_verify_setup(WOLFSSL_CTX *ctx, int server)
{
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER |
			       (server ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			       verify_cb);
}

/* The session-ticket callback finds the record through ex_data. */
static int verify_idx = -1;
static pthread_once_t verify_idx_once = PTHREAD_ONCE_INIT;

static void verify_idx_init(void)
{
	verify_idx = wolfSSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

void kmtls_verify_bind(WOLFSSL *ssl, struct kmtls_verify *v)
{
	wolfSSL_SetCertCbCtx(ssl, v);
	pthread_once(&verify_idx_once, verify_idx_init);
	if (verify_idx >= 0)
		wolfSSL_set_ex_data(ssl, verify_idx, v);
}

struct kmtls_verify *kmtls_verify_of(WOLFSSL *ssl)
{
	return verify_idx >= 0 ? wolfSSL_get_ex_data(ssl, verify_idx) : NULL;
}

void kmtls_verify_reset(struct kmtls_verify *v)
{
	const struct kmtls_policy *policy = v->policy;

	if (v->have_leaf)
		kmtls_identity_free(&v->leaf);
	free(v->leaf_der);
	memset(v, 0, sizeof(*v));
	v->policy = policy;
}

/* ---- Operator-facing reasons ---------------------------------------- */

/* The names and dates of the certificate a reason talks about. */
struct bad_cert {
	const char *subject, *issuer, *serial, *not_before, *not_after;
	int depth, chain_len;
	const struct kmtls_identity *leaf;	/* for SANs, may be NULL */
	int names_bad;		/* the leaf's names could not be read */
};

static void bad_cert_from(struct bad_cert *b, const struct kmtls_verify *v,
			  int recorded)
{
	static const char none[] = "";
	const struct kmtls_identity *known;

	memset(b, 0, sizeof(*b));
	b->subject = b->issuer = b->serial = none;
	b->not_before = b->not_after = none;
	if (!v)
		return;
	b->chain_len = v->chain_len;
	b->leaf = v->have_leaf ? &v->leaf : NULL;
	b->names_bad = v->leaf.names_bad;
	/* Without names the subject and dates are there all the same. */
	known = v->have_leaf || v->leaf.names_bad ? &v->leaf : NULL;
	if (recorded) {
		b->subject = v->bad_subject;
		b->issuer = v->bad_issuer;
		b->serial = v->bad_serial;
		b->not_before = v->bad_not_before;
		b->not_after = v->bad_not_after;
		b->depth = v->depth;
	} else if (known) {	/* wolfSSL failed the leaf without telling us */
		b->subject = known->subject;
		b->issuer = known->issuer;
		b->serial = known->serial;
		b->not_before = known->not_before;
		b->not_after = known->not_after;
	}
}

/* "..." quoted and escaped, or "?" when unknown. */
static const char *q(const char *s, char *buf, size_t len)
{
	char esc[300];

	if (!s[0])
		return "?";
	kmtls_identity_escape(s, esc, sizeof(esc));
	snprintf(buf, len, "\"%s\"", esc);
	return buf;
}

static void say_unknown_ca(char *buf, size_t len, const struct bad_cert *b,
			   int err, const char *peer)
{
	char n[320];
	int o;

	if (err == ASN_SELF_SIGNED_E ||
	    (b->subject[0] && !strcmp(b->subject, b->issuer))) {
		snprintf(buf, len, "unknown CA: certificate %s is self-signed and not in the CA bundle",
			 q(b->subject, n, sizeof(n)));
		return;
	}
	o = snprintf(buf, len, "unknown CA: issuer %s is not in the CA bundle",
		     q(b->issuer, n, sizeof(n)));
	/*
	 * A lone leaf whose issuer we lack is, more often than not, a peer
	 * that forgot its chain; a foreign root looks the same from here.
	 */
	if (b->depth == 0 && b->chain_len == 1 && o > 0 && (size_t)o < len)
		snprintf(buf + o, len - o, " (if it is an intermediate CA: did the %s send its intermediate certificate?)",
			 peer);
}

static void utc_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

static void bad_dates(char *buf, size_t len, const struct bad_cert *b,
		      const char *what)
{
	char now[32], n[320], who[340] = "";

	utc_now(now, sizeof(now));
	if (b->depth > 0)	/* a CA in the chain, not the peer's own */
		snprintf(who, sizeof(who), " (CA certificate %s)",
			 q(b->subject, n, sizeof(n)));
	snprintf(buf, len, "certificate %s%s: valid %s to %s, local clock %s (check NTP)",
		 what, who, b->not_before[0] ? b->not_before : "?",
		 b->not_after[0] ? b->not_after : "?", now);
}

static void policy_denied(char *buf, size_t len, const struct bad_cert *b)
{
	char n[320], sans[512] = "none";

	if (b->names_bad) {
		snprintf(buf, len, "not allowed by policy: certificate %s has a name that cannot be matched "
			 "(a NUL byte inside its CN or a SAN, or a CN of 128 bytes or more)",
			 q(b->subject, n, sizeof(n)));
		return;
	}
	if (b->leaf)
		kmtls_identity_sans(b->leaf, sans, sizeof(sans));
	snprintf(buf, len, "not allowed by policy: subject %s, SANs %s",
		 q(b->subject, n, sizeof(n)), sans);
}

/* Certificate verdicts; 0 when @err is not one. */
static int cert_reason(char *buf, size_t len, int err, const struct bad_cert *b,
		       int server)
{
	const char *peer = server ? "client" : "server";
	char n[320], n2[320];

	switch (err) {
	case NO_PEER_CERT:
		snprintf(buf, len, "%s sent no certificate", peer);
		break;
	case ASN_NO_SIGNER_E:
	case ASN_SELF_SIGNED_E:
		say_unknown_ca(buf, len, b, err, peer);
		break;
	case ASN_AFTER_DATE_E:
		bad_dates(buf, len, b, "expired");
		break;
	case ASN_BEFORE_DATE_E:
		bad_dates(buf, len, b, "not yet valid");
		break;
	case CRL_CERT_REVOKED:
	case OCSP_CERT_REVOKED:
		snprintf(buf, len, "revoked: serial %s by issuer %s",
			 b->serial[0] ? b->serial : "?", q(b->issuer, n, sizeof(n)));
		break;
	case CRL_MISSING:
		/* wolfSSL says this also for a CRL past its nextUpdate or badly signed. */
		snprintf(buf, len, "no usable CRL for issuer %s: none loaded, or past its nextUpdate, or its signature does not verify (CRL checking is on: load a fresh CRL signed by that CA)",
			 q(b->issuer, n, sizeof(n)));
		break;
	case CRL_CERT_DATE_ERR:
		snprintf(buf, len, "the CRL of issuer %s is past its nextUpdate: fetch a fresh CRL",
			 q(b->issuer, n, sizeof(n)));
		break;
	case EXTKEYUSE_AUTH_E:
		snprintf(buf, len, "wrong key usage: certificate is not for %s authentication (extendedKeyUsage lacks %sAuth)",
			 peer, peer);
		break;
	case KEYUSE_SIGNATURE_E:
		snprintf(buf, len, "wrong key usage: keyUsage lacks digitalSignature");
		break;
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:
		if (b->leaf)
			kmtls_identity_sans(b->leaf, n2, sizeof(n2));
		snprintf(buf, len, "server name mismatch: certificate %s (SANs %s) is not for the configured server-name",
			 q(b->subject, n, sizeof(n)), b->leaf ? n2 : "unknown");
		break;
	case ASN_SIG_CONFIRM_E:
		snprintf(buf, len, "bad signature: certificate %s does not verify against issuer %s (corrupted or forged)",
			 q(b->subject, n, sizeof(n)), q(b->issuer, n2, sizeof(n2)));
		break;
	case KMTLS_VERIFY_POLICY:
		policy_denied(buf, len, b);
		break;
	default:
		return 0;
	}
	return 1;
}

/* Other certificate trouble wolfSSL may report through the callback. */
static void cert_other(char *buf, size_t len, int err, const struct bad_cert *b)
{
	char n[320];

	snprintf(buf, len, "certificate %s rejected: %s (%d)",
		 q(b->subject, n, sizeof(n)),
		 wolfSSL_ERR_reason_error_string((unsigned long)err), err);
}

static const struct {
	int code;
	const char *hint;
} alert_hints[] = {
	{ unknown_ca, " (the peer does not trust our CA: check its CA bundle)" },
	{ bad_certificate, " (the peer rejected our certificate)" },
	{ certificate_expired, " (our certificate is outside its validity dates for the peer: check both clocks)" },
	{ certificate_revoked, " (the peer finds our certificate revoked)" },
	{ handshake_failure, " (no shared protocol version, cipher suite or group?)" },
	{ protocol_version, " (no shared protocol version)" },
};

static void peer_alert(WOLFSSL *ssl, char *buf, size_t len)
{
	WOLFSSL_ALERT_HISTORY h;
	const char *hint = "";
	size_t i;

	memset(&h, 0, sizeof(h));
	if (!ssl || wolfSSL_get_alert_history(ssl, &h) != WOLFSSL_SUCCESS ||
	    !h.last_rx.level) {
		snprintf(buf, len, "peer sent a fatal alert");
		return;
	}
	for (i = 0; i < sizeof(alert_hints) / sizeof(alert_hints[0]); i++)
		if (alert_hints[i].code == h.last_rx.code)
			hint = alert_hints[i].hint;
	snprintf(buf, len, "peer sent alert: %s%s",
		 wolfSSL_alert_desc_string_long(h.last_rx.code), hint);
}

/*
 * wolfSSL says SOCKET_ERROR_E for an EOF, a reset and any other socket
 * error alike. Port scanners and load-balancer health checks close or reset
 * mid-handshake all day; tell those apart from real network trouble. The
 * kernel still knows: a FIN leaves the socket in CLOSE_WAIT, an RST in CLOSE.
 */
static void socket_reason(WOLFSSL *ssl, char *buf, size_t len)
{
	int fd = ssl ? wolfSSL_get_fd(ssl) : -1;
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);

	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) ||
	    (ti.tcpi_state != TCP_CLOSE_WAIT && ti.tcpi_state != TCP_CLOSE))
		snprintf(buf, len, "socket error during the handshake");
	else if (ti.tcpi_state == TCP_CLOSE)
		snprintf(buf, len, "peer reset the connection during the handshake");
	else
		snprintf(buf, len, "peer closed the connection during the handshake");
}

/* Failures of the conversation itself rather than of a certificate. */
static void wire_reason(WOLFSSL *ssl, int err, int server, char *buf,
			size_t len)
{
	switch (err) {
	case MATCH_SUITE_ERROR:
	case UNSUPPORTED_SUITE:
	case VERSION_ERROR:
	case UNSUPPORTED_PROTO_VERSION:
	case ECC_CURVE_ERROR:
	case KEY_SHARE_ERROR:
	case BAD_KEY_SHARE_DATA:
		snprintf(buf, len, "handshake failure: no shared protocol version, cipher suite or group");
		break;
	case UNKNOWN_RECORD_TYPE:
	case PARSE_ERROR:
	case BUFFER_ERROR:
	case LENGTH_ERROR:
	case BAD_HELLO:
	case UNKNOWN_HANDSHAKE_TYPE:
	case HANDSHAKE_SIZE_ERROR:
	case INCOMPLETE_DATA:
		snprintf(buf, len, server ? "not a TLS ClientHello (garbage from client)" :
			 "not a TLS ServerHello (garbage from server)");
		break;
	case SOCKET_PEER_CLOSED_E:
	case ZERO_RETURN:
	case WOLFSSL_ERROR_ZERO_RETURN:
		snprintf(buf, len, "peer closed the connection during the handshake");
		break;
	case SOCKET_ERROR_E:
		socket_reason(ssl, buf, len);
		break;
	case FATAL_ERROR:
		peer_alert(ssl, buf, len);
		break;
	default:
		snprintf(buf, len, "handshake failed: %s (%d)",
			 wolfSSL_ERR_reason_error_string((unsigned long)err), err);
	}
}

/* wolfCrypt's certificate and ASN.1 errors live in -140 .. -299. */
static int is_cert_error(int err)
{
	return (err <= -140 && err >= -299) || err == VERIFY_CERT_ERROR ||
	       err == MAX_CHAIN_ERROR || err == NOT_CA_ERROR ||
	       err == DOMAIN_NAME_MISMATCH || err == IPADDR_MISMATCH ||
	       err == KEYUSE_ENCIPHER_E;
}

const char *kmtls_verify_reason(WOLFSSL *ssl, int wolf_err,
				const struct kmtls_verify *v, char *buf,
				size_t len)
{
	int server = ssl ? wolfSSL_is_server(ssl) : 1;
	int recorded = v && v->err;
	int err = recorded ? v->err : wolf_err;
	struct bad_cert b;

	if (!buf || !len)
		return "";
	bad_cert_from(&b, v, recorded);
	if (cert_reason(buf, len, err, &b, server))
		return buf;
	if (recorded || is_cert_error(err))
		cert_other(buf, len, err, &b);
	else
		wire_reason(ssl, err, server, buf, len);
	return buf;
}

/*
 * The errno a kernel-service request fails with (kmod/README.md, "Agent
 * protocol"): certificate verdicts first, as the callback recorded them,
 * then the conversation's own failures.
 */
int kmtls_verify_errno(int wolf_err, const struct kmtls_verify *v)
{
	int recorded = v && v->err;
	int err = recorded ? v->err : wolf_err;

	switch (err) {
	case KMTLS_VERIFY_POLICY:
		return EACCES;
	case ASN_AFTER_DATE_E:
	case ASN_BEFORE_DATE_E:
		return EKEYEXPIRED;
	case CRL_CERT_REVOKED:
	case OCSP_CERT_REVOKED:
		return EKEYREVOKED;
	case NO_PEER_CERT:
		return EKEYREJECTED;
	case SOCKET_ERROR_E:
	case SOCKET_PEER_CLOSED_E:
	case ZERO_RETURN:
	case WOLFSSL_ERROR_ZERO_RETURN:
		return ECONNRESET;
	case MEMORY_E:
	case MEMORY_ERROR:
		return ENOMEM;
	}
	if (recorded || is_cert_error(err))
		return EKEYREJECTED;
	return EPROTO;
}
