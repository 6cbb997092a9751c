/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_PROBES_H
#define KMTLS_PROBES_H

/*
 * USDT probes (provider "kmtls"), for hosts where kTLS is not there to mark
 * the end of a handshake for the BPF latency programs, and for bpftrace:
 *
 *   kmtls:handshake_start(int fd)
 *   kmtls:handshake_done(int fd, int status, u64 duration_ns,
 *                        int tls_version, const char *cipher, int resumed)
 *       status 0 = verified and accepted, < 0 the wolfSSL error code,
 *       ETIMEDOUT (110) for the handshake timeout;
 *       tls_version 0x0303 / 0x0304 (0 when the handshake failed)
 *   kmtls:ktls_installed(int fd, const char *cipher)
 *
 * A disabled probe is one nop: no cost on the handshake path.
 */
#include <sys/sdt.h>

#define KMTLS_PROBE_HANDSHAKE_START(fd) \
	DTRACE_PROBE1(kmtls, handshake_start, fd)
#define KMTLS_PROBE_HANDSHAKE_DONE(fd, status, ns, version, cipher, resumed) \
	DTRACE_PROBE6(kmtls, handshake_done, fd, status, ns, version, cipher, resumed)
#define KMTLS_PROBE_KTLS_INSTALLED(fd, cipher) \
	DTRACE_PROBE2(kmtls, ktls_installed, fd, cipher)

#endif
