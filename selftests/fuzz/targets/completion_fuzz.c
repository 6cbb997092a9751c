// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for the client library's completion parsing
 * (tools/lib/kmtls): the input is a struct kmtls_completion as read(2) or
 * KMTLS_IOC_WAIT would fill it (zero-padded when shorter), given to
 * kmtls_parse_completion(); then kmtls_peer_copy(), kmtls_strerror() and
 * the name lookups run on what came out.
 *
 * Both structs live in exactly-sized heap blocks, so ASan sees any read or
 * write past them. The result is compared with a reference written here
 * from the UAPI comment: a failed request yields its status and nothing of
 * the identity; a successful one turns into status -EBADMSG, with nothing
 * of the identity, exactly when it says no peer certificate (F_PEER_CERT)
 * or the subject or one of the SAN lists is not what the counts say
 * (strings terminated inside their field, at most KMTLS_PEER_SAN_MAX of
 * them), and otherwise gives back the same strings, pointing into the
 * peer's own buffers, and the fingerprint in lower-case hex.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../tools/lib/kmtls/kmtls.h"

/* How many strings @count asks for, if all are terminated inside @len. */
static int list_ok(const char *s, size_t len, unsigned int count)
{
	size_t off = 0;
	unsigned int i;

	if (count > KMTLS_PEER_SAN_MAX)
		return 0;
	for (i = 0; i < count; i++) {
		const char *nul = off < len ? memchr(s + off, '\0', len - off) : NULL;

		if (!nul)
			return 0;
		off = (size_t)(nul - s) + 1;
	}
	return 1;
}

static void check_list(const char *src, const char *buf, size_t len,
		       const char *const *v, unsigned int n, unsigned int count)
{
	size_t off = 0;
	unsigned int i;

	if (n != count)
		abort();
	for (i = 0; i < n; i++) {
		if (v[i] != buf + off || !memchr(v[i], '\0', len - off) ||
		    strcmp(v[i], src + off))
			abort();
		off += strlen(v[i]) + 1;
	}
}

static void check_names(const struct kmtls_peer *p)
{
	if (!p->version_name || !p->cipher_name || !kmtls_strerror(p->status))
		abort();
}

static void check_copy(const struct kmtls_peer *p)
{
	struct kmtls_peer *q = malloc(sizeof(*q));
	unsigned int i;

	if (!q)
		abort();
	kmtls_peer_copy(q, p);
	for (i = 0; i < p->n_san_uri; i++)
		if (q->san_uri[i] != q->uri_buf + (p->san_uri[i] - p->uri_buf) ||
		    strcmp(q->san_uri[i], p->san_uri[i]))
			abort();
	for (i = 0; i < p->n_san_dns; i++)
		if (q->san_dns[i] != q->dns_buf + (p->san_dns[i] - p->dns_buf) ||
		    strcmp(q->san_dns[i], p->san_dns[i]))
			abort();
	free(q);
}

static void check_fingerprint(const struct kmtls_completion *c,
			      const struct kmtls_peer *p)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	if (!p->has_cert) {
		if (p->fingerprint_hex[0])
			abort();
		return;
	}
	if (strlen(p->fingerprint_hex) != 2 * KMTLS_FINGERPRINT_LEN)
		abort();
	for (i = 0; i < KMTLS_FINGERPRINT_LEN; i++)
		if (p->fingerprint_hex[2 * i] != hex[c->fingerprint[i] >> 4] ||
		    p->fingerprint_hex[2 * i + 1] != hex[c->fingerprint[i] & 15])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmtls_completion *c = calloc(1, sizeof(*c));
	struct kmtls_peer *p = malloc(sizeof(*p));
	int ret, valid;

	if (!c || !p)
		abort();
	memcpy(c, data, size < sizeof(*c) ? size : sizeof(*c));
	memset(p, 0x55, sizeof(*p));
	ret = kmtls_parse_completion(c, p);
	check_names(p);
	if (ret || p->id != c->id || p->user_data != c->user_data ||
	    p->shut_down != !!(c->flags & KMTLS_COMPLETION_F_SHUTDOWN))
		abort();
	valid = c->status || ((c->flags & KMTLS_COMPLETION_F_PEER_CERT) &&
			      memchr(c->subject, '\0', sizeof(c->subject)) &&
			      list_ok(c->san_uri, sizeof(c->san_uri), c->san_uri_count) &&
			      list_ok(c->san_dns, sizeof(c->san_dns), c->san_dns_count));
	if (p->status != (valid ? c->status : -EBADMSG))
		abort();
	if (p->status) {
		/* A failure reports nothing about a peer. */
		if (p->has_cert || p->n_san_uri || p->n_san_dns ||
		    p->subject[0] || p->tls_version || p->fingerprint_hex[0])
			abort();
		goto out;
	}
	if (strcmp(p->subject, c->subject) || p->tls_version != c->tls_version ||
	    p->cipher != c->cipher ||
	    p->resumed != !!(c->flags & KMTLS_COMPLETION_F_RESUMED) ||
	    p->has_cert != !!(c->flags & KMTLS_COMPLETION_F_PEER_CERT))
		abort();
	check_list(c->san_uri, p->uri_buf, sizeof(p->uri_buf), p->san_uri,
		   p->n_san_uri, c->san_uri_count);
	check_list(c->san_dns, p->dns_buf, sizeof(p->dns_buf), p->san_dns,
		   p->n_san_dns, c->san_dns_count);
	check_fingerprint(c, p);
	check_copy(p);
out:
	free(c);
	free(p);
	return 0;
}
