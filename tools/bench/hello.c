// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Which key exchange did the server pick? A resumed TLS 1.3 handshake is
 * psk_dhe_ke when the ServerHello carries a key_share next to its
 * pre_shared_key, psk_ke when it carries none. wolfSSL offers both modes in
 * every ClientHello (it has no switch to offer psk_dhe_ke alone) and does
 * not say afterwards which one was used, so the bench reads the answer off
 * the wire: the first bytes the server sends are fed through here, in the
 * clear, until its ServerHello (after a HelloRetryRequest, the second one)
 * has been seen. Records are TLS plaintext records; a CCS record may sit
 * between HRR and ServerHello (middlebox compatibility).
 */
#include <string.h>

#include "bench.h"

#define REC_CCS		20
#define REC_HANDSHAKE	22
#define HS_SERVER_HELLO	2
#define EXT_PSK		0x0029
#define EXT_KEY_SHARE	0x0033

/* SHA-256("HelloRetryRequest"), the random of an HRR (RFC 8446 4.1.3). */
static const unsigned char hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02,
	0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e,
	0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static unsigned int be16(const unsigned char *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

void hello_reset(struct bench_hello *h)
{
	h->len = 0;
	h->done = h->key_share = h->psk = 0;
	h->group = 0;
}

/* The extensions of one ServerHello; -1 when malformed. */
static int parse_exts(struct bench_hello *h, const unsigned char *p,
		      const unsigned char *end)
{
	unsigned int type, len;

	while (end - p >= 4) {
		type = be16(p);
		len = be16(p + 2);
		p += 4;
		if (len > (size_t)(end - p))
			return -1;
		if (type == EXT_KEY_SHARE && len >= 2) {
			h->key_share = 1;
			h->group = be16(p);
		} else if (type == EXT_PSK) {
			h->psk = 1;
		}
		p += len;
	}
	return p == end ? 0 : -1;
}

/*
 * One handshake message (a whole record's body). Returns 1 when it was the
 * ServerHello, 0 for an HRR (keep going), -1 for anything else.
 */
static int parse_server_hello(struct bench_hello *h, const unsigned char *p,
			      size_t len)
{
	size_t body, off;
	int hrr;

	if (len < 4 || p[0] != HS_SERVER_HELLO)
		return -1;
	body = (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	if (body > len - 4 || body < 2 + 32 + 1)
		return -1;
	p += 4;
	hrr = !memcmp(p + 2, hrr_random, sizeof(hrr_random));
	off = 2 + 32;				/* legacy_version, random */
	off += 1 + p[off];			/* legacy_session_id_echo */
	off += 2 + 1;				/* cipher_suite, compression */
	if (off > body)
		return -1;
	if (off == body)			/* TLS 1.2 without extensions */
		return hrr ? -1 : 1;
	if (body - off < 2 || be16(p + off) != body - off - 2)
		return -1;
	h->key_share = h->psk = 0;
	if (parse_exts(h, p + off + 2, p + body))
		return -1;
	return hrr ? 0 : 1;
}

static void parse(struct bench_hello *h)
{
	size_t off = 0, rlen;
	int r;

	while (h->len - off >= 5) {
		rlen = be16(h->buf + off + 3);
		if (off + 5 + rlen > h->len) {
			if (h->len == HELLO_CAP)
				h->done = 1;	/* bigger than any ServerHello */
			return;
		}
		if (h->buf[off] == REC_HANDSHAKE) {
			r = parse_server_hello(h, h->buf + off + 5, rlen);
			if (r) {
				h->done = 1;	/* the ServerHello, or not one */
				return;
			}
		} else if (h->buf[off] != REC_CCS) {
			h->done = 1;		/* an alert, or not TLS */
			return;
		}
		off += 5 + rlen;
	}
}

void hello_feed(struct bench_hello *h, const void *data, size_t len)
{
	if (h->done)
		return;
	if (len > (size_t)(HELLO_CAP - h->len))
		len = HELLO_CAP - h->len;
	memcpy(h->buf + h->len, data, len);
	h->len += len;
	parse(h);
}

const char *hello_group_name(unsigned short group)
{
	switch (group) {
	case 0x0017:
		return "P-256";
	case 0x0018:
		return "P-384";
	case 0x0019:
		return "P-521";
	case 0x001d:
		return "X25519";
	case 0x001e:
		return "X448";
	default:
		return NULL;
	}
}
