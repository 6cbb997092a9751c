/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_PROXY_V2_H
#define KMTLS_PROXY_V2_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * PROXY protocol version 2 header for the backend connection
 * (haproxy's doc/proxy-protocol.txt, section 2.2).
 */

#define PP2_SIG_LEN		12
#define PP2_HDR_LEN		16	/* signature, ver/cmd, family, length */
#define PP2_VERSION		0x20
#define PP2_CMD_LOCAL		0x00
#define PP2_CMD_PROXY		0x01
#define PP2_FAM_UNSPEC		0x00
#define PP2_FAM_TCP4		0x11
#define PP2_FAM_TCP6		0x21
#define PP2_ADDR_LEN_INET	12	/* 2 * 4 + 2 * 2 */
#define PP2_ADDR_LEN_INET6	36	/* 2 * 16 + 2 * 2 */
#define PP2_ADDR_LEN_UNIX	216	/* 2 * 108 */
#define PP2_TLV_HDR_LEN		3	/* type, length (16 bits, big endian) */
#define PP2_SSL_HDR_LEN		5	/* client flags, verify (32 bits) */
#define PP2_MAX_LEN		(PP2_HDR_LEN + 0xffff)

#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_NOOP		0x04
#define PP2_TYPE_UNIQUE_ID	0x05
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_SUBTYPE_SSL_SIG_ALG	0x24
#define PP2_SUBTYPE_SSL_KEY_ALG	0x25
#define PP2_SUBTYPE_SSL_GROUP	0x26
#define PP2_SUBTYPE_SSL_SIG_SCHEME 0x27
#define PP2_SUBTYPE_SSL_CLIENT_CERT 0x28	/* full DER certificate */
#define PP2_TYPE_NETNS		0x30

#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/*
 * Longest string sub-TLV the encoder accepts. A CN is at most 64 characters
 * (X.520 ub-common-name), 256 bytes in UTF-8; versions and cipher names are
 * far shorter. The bound keeps kmtls_proxy_v2_max_len() meaningful.
 */
#define KMTLS_PROXY_STR_MAX	256

extern const unsigned char kmtls_pp2_sig[PP2_SIG_LEN];

/* What the backend learns about the client's TLS session. */
struct kmtls_proxy_tls {
	const char *version;		/* "TLSv1.3": PP2_SUBTYPE_SSL_VERSION, required */
	const char *cn;			/* subject CN: PP2_SUBTYPE_SSL_CN, may be NULL */
	const char *cipher;		/* PP2_SUBTYPE_SSL_CIPHER, may be NULL */
	const unsigned char *cert_der;	/* PP2_SUBTYPE_SSL_CLIENT_CERT (v2-cert), or NULL */
	int cert_len;
	int verified;			/* client certificate presented and verified */
	int resumed;			/* a resumed session: no certificate on this connection */
};

/*
 * kmtls_proxy_v2_encode() - build a PROXY v2 header for a relayed connection
 * @buf: output
 * @cap: size of @buf
 * @src: the client's address (getpeername() of the accepted socket)
 * @dst: the address the client connected to (getsockname())
 * @tls: TLS facts for the PP2_TYPE_SSL TLV, or NULL to send no TLV
 *
 * Families: two IPv4 addresses (AF_INET, or IPv4-mapped AF_INET6 as a
 * dual-stack listener reports them) give TCP4; otherwise two IP addresses
 * give TCP6, an IPv4 one written IPv4-mapped. Anything else (AF_UNIX, NULL,
 * a family mix involving a non-IP address) gives command PROXY with family
 * UNSPEC and no address block, which the spec prescribes for unsupported
 * families; the TLVs still follow.
 *
 * Client flags: PP2_CLIENT_SSL always; when the certificate was verified
 * or its DER is sent, CERT_SESS, and CERT_CONN too unless @tls->resumed
 * (the spec's CERT_CONN: "the client provided a certificate over the
 * current connection", which a resumption does not). Verify field: 0
 * when verified, 1 otherwise.
 *
 * Return: the header length, or -1 when it does not fit in @cap, when a TLV
 * or the header would exceed its 16-bit length, when a string is longer than
 * KMTLS_PROXY_STR_MAX, or when the input is invalid (NULL @buf or
 * @tls->version, negative @cert_len, NULL @cert_der with a length).
 */
int kmtls_proxy_v2_encode(unsigned char *buf, size_t cap,
			  const struct sockaddr *src, const struct sockaddr *dst,
			  const struct kmtls_proxy_tls *tls);

/*
 * Upper bound of the encoded size for a certificate of @cert_len bytes
 * (0 or negative: none), never above PP2_MAX_LEN. A buffer this large only
 * fails to encode when the certificate itself cannot be carried.
 */
size_t kmtls_proxy_v2_max_len(int cert_len);

#endif
