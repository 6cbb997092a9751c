// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * allow-uid names on reload, looked up outside the sandbox.
 *
 * getpwnam(3) goes through NSS, whose modules (systemd, sss, ldap) are
 * shared objects loaded on first use that then talk to their daemons.
 * Sandboxed, kmtlsd may read none of that (Landlock) and must neither map
 * code nor make the calls those modules make (seccomp: SIGSYS, kmtlsd
 * gone; libnss_systemd, for one, calls readlinkat and prctl). A name that
 * resolved at start would then fail on SIGHUP, or take kmtlsd down. So a
 * process forked at start, before any key is loaded and before the
 * sandbox, answers the sandboxed reload's lookups over a socketpair with
 * the getpwnam_r() start-up used. It keeps kmtlsd's privileges (only
 * no_new_privs is added) and exits when kmtlsd's end closes.
 *
 * Ask: sequence number (u32) then the name, unterminated. Answer: the
 * sequence number, an errno (0 found, ENOENT no such user) and the uid.
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "uidlookup.h"

#define NAME_MAX_LEN	255	/* longer names exist in no user database */
#define LOOKUP_WAIT_MS	5000	/* a directory server that hangs */

struct answer {
	uint32_t seq;
	int32_t err;
	uint32_t uid;
};

static int lookup_fd = -1;
static uint32_t lookup_seq;
static uint32_t unanswered;	/* seq of a lookup that gave up waiting; 0: none */

static struct answer resolve(const char *name, uint32_t seq)
{
	struct answer a = { .seq = seq };
	struct passwd pw, *res = NULL;
	char buf[16384];
	int ret;

	ret = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	/* getpwnam_r(3): these also just mean "not found". */
	if (!ret && res)
		a.uid = res->pw_uid;
	else if (!ret || ret == ENOENT || ret == ESRCH || ret == EBADF || ret == EPERM)
		a.err = ENOENT;
	else
		a.err = ret;
	return a;
}

static void __attribute__((noreturn)) helper(int fd)
{
	char ask[sizeof(uint32_t) + NAME_MAX_LEN + 1];
	struct answer a;
	uint32_t seq;
	ssize_t n;

	prctl(PR_SET_NAME, "kmtlsd-uid", 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (;;) {
		n = recv(fd, ask, sizeof(ask) - 1, 0);
		if (n == 0)
			_exit(0);	/* kmtlsd is gone */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		if ((size_t)n <= sizeof(seq))
			continue;
		memcpy(&seq, ask, sizeof(seq));
		ask[n] = '\0';
		a = resolve(ask + sizeof(seq), seq);
		if (send(fd, &a, sizeof(a), MSG_NOSIGNAL) != sizeof(a))
			_exit(1);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * An answer that came after its lookup gave up: read, so that the next
 * lookup's answer is the next one read. Clears @unanswered when it is it.
 */
static void drain(void)
{
	struct answer a;

	while (recv(lookup_fd, &a, sizeof(a), MSG_DONTWAIT) == sizeof(a))
		if (a.seq == unanswered)
			unanswered = 0;
}

/*
 * kmtls_config_set_user_lookup()'s contract: 0, or -1 with errno (0: no
 * such user). Only the main thread reloads: it waits through
 * kmtls_notify_poll(), which keeps systemd's watchdog fed. The helper
 * answers in order, so while an earlier lookup is still unanswered (a
 * user directory that hangs) a new one could only wait behind it: it
 * fails at once, and a reload waits for LOOKUP_WAIT_MS once, not once
 * per name.
 */
static int lookup(const char *name, unsigned int *uid)
{
	char ask[sizeof(uint32_t) + NAME_MAX_LEN];
	struct pollfd p = { .fd = lookup_fd, .events = POLLIN };
	size_t len = strlen(name);
	int64_t deadline = now_ms() + LOOKUP_WAIT_MS, left;
	struct answer a;
	uint32_t seq;

	if (len > NAME_MAX_LEN) {
		errno = 0;
		return -1;
	}
	drain();
	if (unanswered) {
		errno = ETIMEDOUT;
		return -1;
	}
	seq = ++lookup_seq ? lookup_seq : ++lookup_seq;	/* 0: none unanswered */
	memcpy(ask, &seq, sizeof(seq));
	memcpy(ask + sizeof(seq), name, len);
	if (send(lookup_fd, ask, sizeof(seq) + len, MSG_NOSIGNAL) != (ssize_t)(sizeof(seq) + len))
		goto gone;
	while ((left = deadline - now_ms()) > 0) {
		if (kmtls_notify_poll(&p, 1, (int)left) < 0 && errno != EINTR)
			goto gone;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (recv(lookup_fd, &a, sizeof(a), 0) != sizeof(a))
			goto gone;
		if (a.seq != seq)
			continue;
		if (a.err) {
			errno = a.err == ENOENT ? 0 : a.err;
			return -1;
		}
		*uid = a.uid;
		return 0;
	}
	unanswered = seq;
	log_warn("allow-uid: the lookup of user \"%s\" got no answer within %d s (a user directory that hangs?); until it comes, user names in allow-uid fail to reload",
		 name, LOOKUP_WAIT_MS / 1000);
	errno = ETIMEDOUT;
	return -1;
gone:
	kmtls_log_once("uidlookup-gone", LOG_ERR,
		       "the process that looks up allow-uid user names is gone: use uids in allow-uid, or restart kmtlsd");
	errno = EPIPE;
	return -1;
}

int kmtls_uidlookup_start(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	int sv[2];
	pid_t pid;

	if (!cfg->path || !cfg->n_kernels || cfg->sandbox == KMTLS_SANDBOX_OFF)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		snprintf(err, errlen, "allow-uid lookups: socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "allow-uid lookups: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		helper(sv[1]);
	}
	close(sv[1]);
	lookup_fd = sv[0];
	kmtls_config_set_user_lookup(lookup);
	log_info("process %d looks up allow-uid user names for reloads, outside the sandbox",
		 (int)pid);
	return 0;
}
