/* SPDX-License-Identifier: GPL-2.0-or-later WITH Linux-syscall-note */
/*
 * kmtls user API: the names shared by kmtls.ko, kmtlsd, the tools and the
 * tests.
 *
 * Two interfaces meet in kmtls.ko:
 *
 *  - /dev/kmtls, for applications: KMTLS_IOC_SUBMIT hands a connected TCP
 *    socket to the kernel for an mTLS handshake; the result, a struct
 *    kmtls_completion, comes back through KMTLS_IOC_WAIT (blocking, one
 *    request) or read(2) (any completed request; poll(2) says when).
 *
 *  - Generic netlink family "kmtls", for the agent (kmtlsd): READY is
 *    multicast to group "agents" when a request is queued; ACCEPT takes the
 *    oldest queued request and installs its socket as a new fd in the
 *    caller; DONE reports the outcome. kmod/kmtls.yaml specifies the family.
 *
 * Errno values are the Linux ones. A completion's status is 0 or a negative
 * errno; DONE's status attribute is 0 or a positive errno.
 */
#ifndef _UAPI_LINUX_KMTLS_H
#define _UAPI_LINUX_KMTLS_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KMTLS_DEV_NAME		"kmtls"		/* /dev/kmtls */

/* Sizes of the strings below, each including its terminating NUL */
#define KMTLS_PEER_NAME_MAX	256	/* submit: name the client verifies */
#define KMTLS_PROFILE_MAX	64	/* submit: agent's profile name */
#define KMTLS_SUBJECT_MAX	512	/* completion: peer certificate subject */
#define KMTLS_SAN_LIST_MAX	1024	/* completion: all SAN URIs, or all DNS names */
#define KMTLS_FINGERPRINT_LEN	32	/* SHA-256 of the peer certificate (DER) */

/* The highest errno an agent may report; 512 (ERESTARTSYS) on are the kernel's */
#define KMTLS_STATUS_MAX	511

/**
 * enum kmtls_role - the side of the handshake the agent plays for the socket
 * @KMTLS_ROLE_CLIENT: the application connected; the agent sends the
 *	ClientHello, verifies the server against the peer name
 * @KMTLS_ROLE_SERVER: the application accepted; the agent answers the
 *	ClientHello and requires a client certificate
 */
enum kmtls_role {
	KMTLS_ROLE_CLIENT = 1,
	KMTLS_ROLE_SERVER,
};

/* ------------------------------------------------------------------------
 * /dev/kmtls ioctls
 *
 * Each argument struct starts with its own size: userspace sets it to
 * sizeof() of the struct it was built with. The kernel accepts any size from
 * the first version's (KMTLS_*_SIZE_VER0) up to a page; bytes beyond the
 * struct it knows must be zero (E2BIG otherwise), so a newer program runs on
 * an older kernel as long as it does not use what is new. The commands are
 * matched by type and number; the size bits of the command are not used.
 * Reserved fields and unknown flags must be zero (EINVAL).
 */

#define KMTLS_IOC_MAGIC		0xE6

/**
 * struct kmtls_submit - KMTLS_IOC_SUBMIT argument
 * @size: in, sizeof(struct kmtls_submit)
 * @flags: in, 0 (no flag is defined yet)
 * @sockfd: in, a connected TCP socket (IPv4 or IPv6) of the caller, without
 *	an upper-layer protocol (no TCP_ULP set). The caller must not read,
 *	write or shut it down until the request completes.
 * @role: in, enum kmtls_role
 * @timeout_ms: in, deadline in milliseconds from now; 0 or anything above
 *	net.kmtls.handshake_timeout_ms means that sysctl
 * @reserved: in, 0
 * @user_data: in, any value; returned in the completion
 * @id: out, the request's id: non-zero, unique while the module is loaded
 * @peer_name: in, NUL-terminated. Client role: the server name to send
 *	(SNI) and verify. Server role: passed to the agent as is. Empty: none,
 *	the agent's profile decides.
 * @profile: in, NUL-terminated name of the agent profile (certificates,
 *	CAs, policy); empty: the agent's default
 */
struct kmtls_submit {
	__u32		size;
	__u32		flags;
	__s32		sockfd;
	__u32		role;
	__u32		timeout_ms;
	__u32		reserved;
	__aligned_u64	user_data;
	__aligned_u64	id;
	char		peer_name[KMTLS_PEER_NAME_MAX];
	char		profile[KMTLS_PROFILE_MAX];
};

#define KMTLS_SUBMIT_SIZE_VER0	360

/**
 * struct kmtls_wait - KMTLS_IOC_WAIT argument
 * @size: in, sizeof(struct kmtls_wait)
 * @flags: in, 0 (no flag is defined yet)
 * @id: in, the request to wait for, as returned by KMTLS_IOC_SUBMIT on this
 *	file; 0: the oldest completed request of this file
 * @completion: in, user address of a struct kmtls_completion to fill
 * @completion_size: in, its size, at least KMTLS_COMPLETION_SIZE_VER0; the
 *	kernel writes at most this many bytes
 * @reserved: in, 0
 */
struct kmtls_wait {
	__u32		size;
	__u32		flags;
	__aligned_u64	id;
	__aligned_u64	completion;
	__u32		completion_size;
	__u32		reserved;
};

#define KMTLS_WAIT_SIZE_VER0	32

/* struct kmtls_completion.flags */
#define KMTLS_COMPLETION_F_RESUMED	(1U << 0) /* session resumed */
#define KMTLS_COMPLETION_F_PEER_CERT	(1U << 1) /* @fingerprint is valid */
#define KMTLS_COMPLETION_F_SHUTDOWN	(1U << 2) /* socket shut down */

/**
 * struct kmtls_completion - the outcome of one request
 * @size: sizeof(struct kmtls_completion) as filled by the kernel
 * @status: 0: the handshake succeeded, the peer was verified and kTLS is
 *	installed for sending and receiving on the socket. Otherwise a
 *	negative errno:
 *	-ETIMEDOUT: the deadline passed;
 *	-ESRCH: no agent listened for net.kmtls.agent_wait_ms;
 *	-ECONNABORTED: the agent that took the request went away;
 *	-ECANCELED: never seen by userspace (the file was closed);
 *	anything else: the agent's verdict, e.g. -EKEYREJECTED (peer
 *	certificate not trusted), -EACCES (refused by policy), -ECONNRESET
 *	(peer went away), -EPROTO (TLS protocol error), -EOPNOTSUPP (kTLS
 *	cannot take the negotiated cipher), -ENOENT (unknown profile).
 * @id: the request's id (struct kmtls_submit.id)
 * @user_data: struct kmtls_submit.user_data
 * @sock_cookie: the socket's cookie, as getsockopt(SO_COOKIE) returns it
 * @elapsed_ns: nanoseconds from submission to completion
 * @flags: KMTLS_COMPLETION_F_*. F_SHUTDOWN: the request failed after an agent
 *	had taken the socket, whose TLS state is unknown, so the kernel shut it
 *	down (SHUT_RDWR). A failure without F_SHUTDOWN left the socket as it
 *	was: no byte was sent or received on it.
 * @tls_version: success: the TLS version as on the wire, 0x0303 (TLS 1.2)
 *	or 0x0304 (TLS 1.3); 0 otherwise
 * @cipher: success: the IANA number of the cipher suite, e.g. 0x1301
 * @san_uri_count: number of strings in @san_uri
 * @san_dns_count: number of strings in @san_dns
 * @reserved: 0
 * @fingerprint: SHA-256 of the peer certificate (DER), if F_PEER_CERT
 * @subject: peer certificate subject, one line as the agent printed it
 *	(e.g. "CN=client,O=example"), NUL-terminated; may be empty
 * @san_uri: @san_uri_count NUL-terminated URIs from the peer certificate's
 *	subjectAltName, back to back
 * @san_dns: @san_dns_count NUL-terminated DNS names, the same way
 *
 * The peer identity fields are filled only on success; everything after
 * @elapsed_ns is zero on failure, except @flags.
 */
struct kmtls_completion {
	__u32		size;
	__s32		status;
	__aligned_u64	id;
	__aligned_u64	user_data;
	__aligned_u64	sock_cookie;
	__aligned_u64	elapsed_ns;
	__u32		flags;
	__u16		tls_version;
	__u16		cipher;
	__u16		san_uri_count;
	__u16		san_dns_count;
	__u32		reserved;
	__u8		fingerprint[KMTLS_FINGERPRINT_LEN];
	char		subject[KMTLS_SUBJECT_MAX];
	char		san_uri[KMTLS_SAN_LIST_MAX];
	char		san_dns[KMTLS_SAN_LIST_MAX];
};

#define KMTLS_COMPLETION_SIZE_VER0	2648

/*
 * KMTLS_IOC_SUBMIT: queue a handshake for struct kmtls_submit.sockfd. On
 * success the request has an id and exactly one completion will follow.
 * Errors (nothing was queued, nothing is completed):
 *   EFAULT      bad address
 *   EINVAL      bad size (below VER0), flags, reserved, role, or a string
 *               without its NUL
 *   E2BIG       size above a page, or non-zero bytes past the known struct
 *   EBADF       sockfd is not an open file
 *   ENOTSOCK    sockfd is not a socket
 *   EOPNOTSUPP  not a TCP socket over IPv4 or IPv6 (UDP, Unix, MPTCP, ...)
 *   ENOTCONN    not in the ESTABLISHED state (unconnected, listening,
 *               closing)
 *   EEXIST      the socket already has an upper-layer protocol (TCP_ULP,
 *               e.g. kTLS), as setsockopt(TCP_ULP) says for a second one
 *   EBUSY       a request for this socket is already outstanding
 *   ESRCH       no agent listens and net.kmtls.agent_wait_ms is 0
 *   EAGAIN      net.kmtls.max_pending requests are already queued
 *   ENOMEM      out of memory
 *
 * KMTLS_IOC_WAIT: wait for a request of this file and consume its
 * completion. Errors:
 *   ENOENT      no such request on this file (never submitted, or its
 *               completion was already consumed, e.g. by read(2))
 *   EAGAIN      O_NONBLOCK and the request is not complete yet
 *   EINTR       a signal arrived (the request stays outstanding)
 *   EINVAL, E2BIG, EFAULT as above
 *
 * read(2) returns as many whole completions (KMTLS_COMPLETION_SIZE_VER0 bytes
 * each) as are ready and fit (EINVAL if not even one fits), blocking unless
 * O_NONBLOCK (EAGAIN); poll(2) reports EPOLLIN while one is ready. Closing
 * the last reference to the file cancels every outstanding request.
 *
 * Other commands fail with ENOTTY.
 */
#define KMTLS_IOC_SUBMIT	_IOWR(KMTLS_IOC_MAGIC, 0x01, struct kmtls_submit)
#define KMTLS_IOC_WAIT		_IOW(KMTLS_IOC_MAGIC, 0x02, struct kmtls_wait)

/* ------------------------------------------------------------------------
 * Generic netlink family "kmtls" (kmod/kmtls.yaml)
 */

#define KMTLS_FAMILY_NAME	"kmtls"
#define KMTLS_FAMILY_VERSION	1
#define KMTLS_MCGRP_AGENTS	"agents"

/* Earlier names of the above, kept for existing users */
#define KMTLS_GENL_NAME		KMTLS_FAMILY_NAME
#define KMTLS_GENL_VERSION	KMTLS_FAMILY_VERSION
#define KMTLS_GENL_MCGRP_AGENTS	KMTLS_MCGRP_AGENTS

/*
 * Attributes of ACCEPT's reply. ACCEPT's request carries none. Every reply
 * carries all of them, strings possibly empty.
 */
enum {
	KMTLS_A_ACCEPT_UNSPEC,
	KMTLS_A_ACCEPT_PAD,		/* padding for the u64 attributes */
	KMTLS_A_ACCEPT_SOCKFD,		/* s32: the socket, new fd in the caller (O_CLOEXEC) */
	KMTLS_A_ACCEPT_ROLE,		/* u32: enum kmtls_role */
	KMTLS_A_ACCEPT_TIMEOUT_MS,	/* u32: milliseconds left until the deadline */
	KMTLS_A_ACCEPT_PEER_NAME,	/* string: struct kmtls_submit.peer_name */
	KMTLS_A_ACCEPT_PROFILE,		/* string: struct kmtls_submit.profile */
	KMTLS_A_ACCEPT_ID,		/* u64: the request id (for logs) */
	KMTLS_A_ACCEPT_SOCK_COOKIE,	/* u64: the socket's SO_COOKIE */
	KMTLS_A_ACCEPT_PID,		/* u32: submitter's process (tgid) in the caller's pid namespace, 0 if not visible */
	KMTLS_A_ACCEPT_UID,		/* u32: submitter's effective uid in the caller's user namespace */
	KMTLS_A_ACCEPT_GID,		/* u32: submitter's effective gid, likewise */

	__KMTLS_A_ACCEPT_MAX,
	KMTLS_A_ACCEPT_MAX = (__KMTLS_A_ACCEPT_MAX - 1)
};

/*
 * Attributes of DONE. STATUS and SOCKFD are required; on success (STATUS 0)
 * TLS_VERSION and CIPHER too, and kTLS must be installed for TX and RX on
 * the socket. The identity attributes are ignored on failure.
 */
enum {
	KMTLS_A_DONE_UNSPEC,
	KMTLS_A_DONE_STATUS,		/* u32: 0 or a positive errno (max KMTLS_STATUS_MAX) */
	KMTLS_A_DONE_SOCKFD,		/* s32: the fd ACCEPT installed */
	KMTLS_A_DONE_TLS_VERSION,	/* u16: 0x0303 or 0x0304 */
	KMTLS_A_DONE_CIPHER,		/* u16: IANA cipher suite */
	KMTLS_A_DONE_RESUMED,		/* flag: the session was resumed */
	KMTLS_A_DONE_PEER_SUBJECT,	/* string, < KMTLS_SUBJECT_MAX bytes */
	KMTLS_A_DONE_PEER_SAN_URI,	/* string, multi: one per URI */
	KMTLS_A_DONE_PEER_SAN_DNS,	/* string, multi: one per DNS name */
	KMTLS_A_DONE_PEER_FINGERPRINT,	/* binary, KMTLS_FINGERPRINT_LEN bytes */

	__KMTLS_A_DONE_MAX,
	KMTLS_A_DONE_MAX = (__KMTLS_A_DONE_MAX - 1)
};

enum {
	KMTLS_CMD_UNSPEC,
	KMTLS_CMD_READY,	/* kernel -> group "agents": a request is queued */
	KMTLS_CMD_ACCEPT,	/* agent -> kernel: take the oldest queued request */
	KMTLS_CMD_DONE,		/* agent -> kernel: the outcome of one request */

	__KMTLS_CMD_MAX,
	KMTLS_CMD_MAX = (__KMTLS_CMD_MAX - 1)
};

#endif /* _UAPI_LINUX_KMTLS_H */
