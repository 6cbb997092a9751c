/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_PROXY_PARSE_H
#define KMTLS_SELFTEST_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A strict PROXY protocol v2 parser, written from the spec apart from the
 * agent's encoder (it shares no header with it) so the tests check one
 * against the other. It rejects what a careful receiver must and a little
 * more that kmtlsd never sends: SSL sub-types outside the SSL TLV, unknown
 * or repeated sub-types, strings with NUL bytes, unknown client flags.
 */

#define PROXY_STR_MAX	256	/* longest version / CN / cipher kept */
#define PROXY_ADDR_MAX	110	/* "@" + 108 bytes of sun_path + NUL */

struct proxy_info {
	size_t hdr_len;		/* whole header: the payload starts here */
	int command;		/* 0 LOCAL, 1 PROXY */
	int family;		/* AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX */
	int socktype;		/* 0 (unspecified), SOCK_STREAM, SOCK_DGRAM */
	char src[PROXY_ADDR_MAX], dst[PROXY_ADDR_MAX];	/* "" when unspecified */
	unsigned int src_port, dst_port;

	int ssl;		/* a PP2_TYPE_SSL TLV was present */
	unsigned int client;	/* its PP2_CLIENT_* flags */
	uint32_t verify;	/* 0: client certificate verified */
	int has_version, has_cn, has_cipher;
	char version[PROXY_STR_MAX + 1];
	char cn[PROXY_STR_MAX + 1];
	char cipher[PROXY_STR_MAX + 1];
	const unsigned char *cert;	/* DER inside the parsed buffer, or NULL */
	size_t cert_len;
};

/*
 * How long the header starting at @buf is, from the first @len bytes read so
 * far. Returns 0 when fewer than 16 bytes are in and they agree with the
 * signature so far (read more), the total header length once 16 are in, or
 * -1 as soon as the bytes cannot start a version 2 header.
 */
long proxy_hdr_len(const unsigned char *buf, size_t len);

/*
 * Parse the header at the start of @buf (@len bytes; payload may follow).
 * Returns the header length, or -1 with a reason in @err (may be NULL) when
 * the header is malformed or not entirely within @len. @out->cert points
 * into @buf.
 */
long proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *out,
		 char *err, size_t errlen);

/* "TCP4", "TCP6", "UDP4", "UDP6", "UNIX", "UNIX_DGRAM" or "UNSPEC". */
const char *proxy_family_name(const struct proxy_info *pi);

#endif
