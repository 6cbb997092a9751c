// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for kmtlsd's side of the generic netlink family "kmtls"
 * (agent/upcall.c): the receive loop, its dispatch of READY multicasts,
 * nlctrl family notifications and DONE refusals, and the ACCEPT reply
 * parser, all through the public entry points.
 *
 * The agent reads its netlink socket with recv(2). Here that socket is one
 * end of an AF_UNIX datagram pair: the input, taken as one datagram of
 * netlink messages as the kernel would queue them, is sent from the other
 * end, then the agent reads it exactly as it would read the kernel:
 *
 *   byte 0, bit 0: kmtls_upcall_accept() (which first sends its ACCEPT
 *                  request to the other end, then reads) or
 *                  kmtls_upcall_read();
 *   byte 0, bit 1: give every message the ACCEPT request's sequence
 *                  number, so replies and acknowledgements are taken as
 *                  answers rather than dispatched;
 *   the rest:      the datagram.
 *
 * The family id of "kmtls" is KMTLS_FUZZ_FAMILY (as if resolved already).
 * The agent copies the datagram into its own 32 KiB buffer, so a read past
 * a message that stays inside that buffer is not an ASan report here.
 * Checked: no memory error or undefined behaviour (ASan, UBSan), the
 * documented results (accept: 1, 0 or -errno; a filled request has its
 * strings terminated), and the flags read() sets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "../../../agent/log.h"
#include "../../../agent/upcall.h"

#define KMTLS_FUZZ_FAMILY	0x1c
#define SEQ_ACCEPT		0x80000000u	/* first request with u->seq == 0 */

static int pair[2] = { -1, -1 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	/* Quiet: a line per refused DONE would drown libFuzzer's output. */
	kmtls_log_init("netlink_fuzz", 1, -1);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair)) {
		perror("netlink_fuzz: socketpair");
		exit(1);
	}
	return 0;
}

static void drain(int fd)
{
	char b[64];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
}

/* Every message the agent would walk gets the sequence number @seq. */
static void patch_seq(uint8_t *p, size_t n, uint32_t seq)
{
	struct nlmsghdr *h;
	size_t off = 0;

	while (n - off >= sizeof(*h)) {
		h = (struct nlmsghdr *)(p + off);
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > n - off)
			return;
		h->nlmsg_seq = seq;
		off += NLMSG_ALIGN(h->nlmsg_len);
		if (off > n)
			return;
	}
}

static void check_accept(int ret, const struct kmtls_accept *a)
{
	if (ret > 1 || ret < -4095) {
		fprintf(stderr, "netlink_fuzz: kmtls_upcall_accept() returned %d, not 1, 0 or -errno\n",
			ret);
		abort();
	}
	if (ret != 1)
		return;
	if (!memchr(a->peer_name, '\0', sizeof(a->peer_name)) ||
	    !memchr(a->profile, '\0', sizeof(a->profile)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kmtls_upcall u;
	struct kmtls_accept a;
	uint8_t *msg, mode;
	int ret;

	if (size < 1 || size > 32768 + 1)
		return 0;	/* the agent reads at most 32 KiB at once */
	mode = data[0];
	msg = malloc(size - 1 ? size - 1 : 1);
	if (!msg)
		abort();
	memcpy(msg, data + 1, size - 1);
	if (mode & 2)
		patch_seq(msg, size - 1, SEQ_ACCEPT);

	memset(&u, 0, sizeof(u));
	u.fd = pair[0];
	atomic_store(&u.family, KMTLS_FUZZ_FAMILY);
	atomic_store(&u.seq, 0);
	u.joined = 1;
	drain(pair[0]);
	drain(pair[1]);
	if (send(pair[1], msg, size - 1, 0) < 0) {
		perror("netlink_fuzz: send");
		abort();
	}
	if (mode & 1) {
		ret = kmtls_upcall_accept(&u, &a);
		check_accept(ret, &a);
	} else {
		kmtls_upcall_read(&u);
		if (u.vanished && (atomic_load(&u.family) || u.joined || u.ready))
			abort();	/* still looks attached to a gone family */
	}
	free(msg);
	return 0;
}
