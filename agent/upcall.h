/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_UPCALL_H
#define KMTLS_UPCALL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uapi/linux/kmtls.h>

/*
 * kmtlsd's side of the generic netlink family "kmtls" (kmod/README.md,
 * "Agent protocol"): one netlink socket, opened before the sandbox and
 * read by one thread, which resolves the family, joins group "agents" and
 * takes requests with ACCEPT. DONE may be sent by any thread: the kernel
 * handles it inside sendmsg(), so the fd it names may be closed right
 * after, and it asks for no acknowledgement; a refused DONE comes back as
 * an error message that the reading thread logs.
 *
 * The socket also listens to nlctrl's "notify" group, so that kmtls.ko
 * loaded (or unloaded) after kmtlsd started is noticed at once.
 */
struct kmtls_upcall {
	struct nl_sock *sk;	/* libnl: connect, membership, buffer size */
	int fd;
	atomic_int family;	/* generic netlink id of "kmtls", 0 when absent */
	uint32_t group;		/* multicast id of "agents" */
	int joined;		/* member of "agents" */
	int ready;		/* READY or ENOBUFS seen: drain with ACCEPT */
	int appeared;		/* nlctrl announced the family: resolve again */
	int vanished;		/* ... or its removal */
	atomic_uint seq;
	char *rbuf;		/* receive buffer of the reading thread */
};

/* What an ACCEPT reply said: one request, its socket now ours (@fd). */
struct kmtls_accept {
	int fd;
	uint32_t role, timeout_ms, pid, uid, gid;
	uint64_t id, cookie;
	char peer_name[KMTLS_PEER_NAME_MAX];
	char profile[KMTLS_PROFILE_MAX];
};

/* What a DONE reports. */
struct kmtls_done {
	int status;		/* 0 or a positive errno */
	uint16_t version;	/* success: 0x0303, 0x0304 */
	uint16_t cipher;	/* success: IANA number */
	int resumed;
	const char *subject;	/* NULL: none */
	char *const *uris;
	int n_uris;
	char *const *dns;
	int n_dns;
	const unsigned char *fingerprint;	/* KMTLS_FINGERPRINT_LEN, or NULL */
};

/*
 * Open and bind the socket (a large receive buffer, nlctrl notifications,
 * non-blocking). Does not need kmtls.ko. 0, or -1 with a sentence in err.
 */
int kmtls_upcall_open(struct kmtls_upcall *u, char *err, size_t errlen);
void kmtls_upcall_close(struct kmtls_upcall *u);

/*
 * Resolve the family and join "agents". 0 (also when joined already),
 * -ENOENT when kmtls.ko is not loaded, another -errno otherwise (-EPERM:
 * no CAP_NET_ADMIN).
 */
int kmtls_upcall_attach(struct kmtls_upcall *u);

/* Leave "agents" (draining: queued requests wait for another agent). */
void kmtls_upcall_detach(struct kmtls_upcall *u);

/*
 * Read everything pending: READY sets u->ready, nlctrl news set
 * u->appeared / u->vanished, refused DONEs are logged.
 */
void kmtls_upcall_read(struct kmtls_upcall *u);

/*
 * ACCEPT one request. 1 with @a filled (a->fd is ours to close, a->role
 * client or server), 0 when none is queued, -errno otherwise (-ENOBUFS:
 * the reply was lost; drain again later; -EPROTO: a reply that could not
 * be taken, its fd closed and, when it named its request, the request
 * failed with a DONE of EPROTO).
 */
int kmtls_upcall_accept(struct kmtls_upcall *u, struct kmtls_accept *a);

/*
 * DONE for request @id on @fd; any thread. 0, or -errno when it could not
 * be sent (-EMSGSIZE: the identity does not fit, report a failure).
 */
int kmtls_upcall_done(struct kmtls_upcall *u, int fd, uint64_t id,
		      const struct kmtls_done *d);

#endif
