// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's sandbox. The main thread applies it once, after every listening
 * socket is bound and before any worker thread exists, so every thread
 * inherits all of it:
 *
 *  1. No core dumps (RLIMIT_CORE 0, not dumpable): a core holds private keys.
 *     Not dumpable is set again after the user switch, which resets it.
 *  2. The [kmtlsd] user: initgroups, setgid, setuid; no capability is kept
 *     (config.c refuses a user together with [kernel NAME] profiles, whose
 *     netlink commands need CAP_NET_ADMIN on every call).
 *  3. no_new_privs, then Landlock: files are only read, and only below the
 *     directories that hold the certificates, keys, CAs, CRLs and ticket
 *     keys of the listeners and [kernel] profiles, and the config file
 *     (directories rather than files, so a file replaced by rename or a
 *     symlink swap still reloads), plus the few files the C library and
 *     wolfSSL open (fixed_files[]). No write or create anywhere; files are
 *     removed only where a unix listening socket lives (when the drain
 *     starts, or at exit).
 *     With Landlock ABI 4: no bind, TCP connect only to the backends' ports.
 *     With ABI 6: no signals to processes outside the sandbox.
 *  4. seccomp: an allowlist of the system calls kmtlsd makes once it serves
 *     (the workers, SIGHUP reload, syslog, sd_notify, the exit path). It was
 *     derived by tracing kmtlsd with `strace -f` through the test suite on
 *     the host (wolfSSL record layer) and in the 6.12 guest (kTLS, splice),
 *     keeping the calls made after the first worker thread started, then
 *     adding the ones on paths the tests do not reach (see allow[]).
 *
 * A call outside the list raises SIGSYS (SECCOMP_RET_TRAP): the handler
 * writes the call's number to stderr (the journal under systemd) and
 * kmtlsd dies of SIGSYS, without a core. Failing closed rather than
 * returning EPERM, because kmtlsd holds private keys and parses input from
 * the network: a call outside the list is either a path we missed (a bug,
 * named at once in the log, and `sandbox = off` is the workaround) or an
 * exploit, and a process that keeps serving after either is worse than one
 * that systemd restarts. EPERM would also turn a missed path into a silent
 * misbehaviour (a reload that fails, a connection that hangs). TRAP rather
 * than KILL_PROCESS only so that our own log names the call; the handler
 * cannot be replaced (rt_sigaction is allowed for glibc's two internal
 * signals only).
 *
 * Under AddressSanitizer (make SANITIZE=1) the leak checker, at exit,
 * ptraces the process from a helper task and reads /proc: those calls and
 * /proc are allowed and the process stays dumpable (ptrace needs it);
 * everything else is the same as in the production build.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>

#include "addr.h"
#include "errmsg.h"
#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define KMTLS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KMTLS_ASAN 1
#endif
#endif
#ifndef KMTLS_ASAN
#define KMTLS_ASAN 0
#endif

/* ------------------------------------------------------------------ */
/* Core dumps and the user                                            */

static void no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	/* Also keeps other users' processes from ptrace and /proc/PID/mem. */
	if (!KMTLS_ASAN)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int kmtls_sandbox_check(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	int e;

	if (!cfg->user)
		return 0;
	errno = 0;
	if (getpwnam(cfg->user))
		return 0;
	/* getpwnam(3): these errors also just mean "not found". */
	e = errno == ENOENT || errno == ESRCH || errno == EBADF || errno == EPERM ? 0 : errno;
	return kmtls_fail(err, errlen, "[kmtlsd] user = \"%s\": no such user%s%s (create it, e.g. useradd --system --no-create-home %s, or remove the key)",
			  cfg->user, e ? ": " : "", e ? strerror(e) : "", cfg->user);
}

/* After the switch the files must still be readable, or SIGHUP fails. */
static void warn_unreadable(const char *user, const char *what, const char *path)
{
	if (!path || !access(path, R_OK))
		return;
	log_warn("user %s cannot read %s %s (%s): a reload (SIGHUP) would fail; make it readable by %s, e.g. chown %s %s",
		 user, what, path, strerror(errno), user, user, path);
}

static void check_readable(const struct kmtls_config *cfg, const char *user)
{
	const struct kmtls_listener_conf *l;
	int i, j;

	warn_unreadable(user, "config file", cfg->path);
	for (i = 0; i < cfg->n_listeners; i++) {
		l = &cfg->listeners[i];
		warn_unreadable(user, "certificate", l->cert);
		warn_unreadable(user, "key", l->key);
		warn_unreadable(user, "CA", l->ca);
		warn_unreadable(user, "ticket keys", l->ticket_keys);
		for (j = 0; j < l->crl.n; j++)
			warn_unreadable(user, "CRL", l->crl.v[j]);
	}
}

static int drop_privileges(const struct kmtls_config *cfg, char *err, size_t len)
{
	struct passwd *pw;
	uid_t uid, r, e, s;
	gid_t gid;

	if (kmtls_sandbox_check(cfg, err, len))
		return -1;
	pw = getpwnam(cfg->user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (getuid() == uid && geteuid() == uid && getgid() == gid)
		return 0;
	if (geteuid() != 0)
		return kmtls_fail(err, len, "[kmtlsd] user = \"%s\": kmtlsd runs as uid %u and cannot switch users (start it as root, or remove the key)",
				  cfg->user, (unsigned int)geteuid());
	if (initgroups(cfg->user, gid) || setgid(gid) || setuid(uid))
		return kmtls_fail(err, len, "cannot switch to user %s: %s", cfg->user, strerror(errno));
	/*
	 * At once: the uid change set "dumpable" to fs.suid_dumpable, and at
	 * 1 the user's other processes could ptrace kmtlsd or open its
	 * /proc/PID/mem, and read the private keys.
	 */
	no_core_dumps();
	if ((uid && setuid(0) == 0) || getresuid(&r, &e, &s) || r != uid || e != uid || s != uid)
		return kmtls_fail(err, len, "switched to user %s but could regain root: refusing to serve", cfg->user);
	log_info("running as user %s (uid %u, gid %u)", cfg->user, (unsigned int)uid,
		 (unsigned int)gid);
	check_readable(cfg, cfg->user);
	return 0;
}

/* Landlock and seccomp restrict one thread; all must inherit from this one. */
static int single_threaded(char *err, size_t len)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");
	int n = 1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	if (n == 1)
		return 0;
	return kmtls_fail(err, len, "sandbox: %d threads already run; it must be applied before any thread starts (agent/sandbox.c)", n);
}

/* ------------------------------------------------------------------ */
/* Landlock                                                           */

/* Newer than Debian 12's UAPI headers (6.1): our own names, the kernel's values. */
#define LL_FS_TRUNCATE		(1ULL << 14)	/* ABI 3 */
#define LL_FS_IOCTL_DEV		(1ULL << 15)	/* ABI 5 */
#define LL_RULE_NET_PORT	2		/* ABI 4 */
#define LL_NET_BIND_TCP		(1ULL << 0)
#define LL_NET_CONNECT_TCP	(1ULL << 1)
#define LL_SCOPE_SIGNAL		(1ULL << 1)	/* ABI 6 */

struct ll_ruleset_attr {
	__u64 handled_access_fs;
	__u64 handled_access_net;	/* ABI 4 */
	__u64 scoped;			/* ABI 6 */
};

struct ll_net_port_attr {
	__u64 allowed_access;
	__u64 port;
};

#define LL_READ		LANDLOCK_ACCESS_FS_READ_FILE
#define LL_READ_DIR	(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_REMOVE	LANDLOCK_ACCESS_FS_REMOVE_FILE

/*
 * Files opened after start-up by code that is not ours: wolfSSL seeds
 * every connection's RNG from /dev/urandom, glibc's malloc reads
 * overcommit_memory when it trims a heap; raise_nofile() reads nr_open
 * and a worker keeps /dev/null as its spare descriptor. Missing ones are
 * skipped.
 */
static const char *const fixed_files[] = {
	"/dev/urandom", "/dev/null", "/proc/sys/fs/nr_open",
	"/proc/sys/vm/overcommit_memory",
};

#define LL_MAX_PATHS 256

struct ll {
	int fd;				/* the ruleset */
	int abi;
	int n_paths;
	struct { dev_t dev; ino_t ino; __u64 access; } seen[LL_MAX_PATHS];
};

static int ll_seen(struct ll *ll, const struct stat *st, __u64 access)
{
	int i;

	for (i = 0; i < ll->n_paths; i++)
		if (ll->seen[i].dev == st->st_dev && ll->seen[i].ino == st->st_ino &&
		    ll->seen[i].access == access)
			return 1;
	if (ll->n_paths == LL_MAX_PATHS)
		return 1;	/* a rule less: at worst a reload is refused */
	ll->seen[ll->n_paths].dev = st->st_dev;
	ll->seen[ll->n_paths].ino = st->st_ino;
	ll->seen[ll->n_paths++].access = access;
	return 0;
}

/*
 * Allow @access below @path (a directory) or on it (a file). The O_PATH
 * descriptor stays open for the life of the process: on filesystems whose
 * inodes are not kept in cache (9p, some FUSE), an unpinned directory would
 * come back as a new inode that the rule does not know.
 */
static int ll_allow(struct ll *ll, const char *path, __u64 access, int optional,
		    char *err, size_t len)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		if (fd >= 0)
			close(fd);
		return optional ? 0 : kmtls_fail(err, len, "sandbox: %s: %s", path, strerror(errno));
	}
	if (ll_seen(ll, &st, access)) {
		close(fd);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		pb.allowed_access &= ~(__u64)LANDLOCK_ACCESS_FS_READ_DIR;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ll->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0)) {
		close(fd);
		return kmtls_fail(err, len, "sandbox: Landlock rule for %s: %s", path, strerror(errno));
	}
	log_debug("sandbox: may %s %s%s", access == LL_REMOVE ? "remove files in" : "read",
		  path, S_ISDIR(st.st_mode) ? "/" : "");
	return 0;
}

/* The directory of @path and, when it is a symlink, of its target. */
static int ll_allow_dir_of(struct ll *ll, const char *path, __u64 access,
			   char *err, size_t len)
{
	char dir[4096], *real, *slash;
	int ret = 0, pass;

	if (!path)
		return 0;
	real = realpath(path, NULL);

	for (pass = 0; pass < 2 && !ret; pass++) {
		const char *p = pass ? real : path;

		if (!p)
			continue;
		snprintf(dir, sizeof(dir), "%s", p);
		slash = strrchr(dir, '/');
		if (!slash)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		ret = ll_allow(ll, dir, access, 0, err, len);
	}
	free(real);
	return ret;
}

/* A CA can be a directory (opendir + every file in it) or a bundle. */
static int ll_allow_ca(struct ll *ll, const char *ca, char *err, size_t len)
{
	struct stat st;

	if (ca && !stat(ca, &st) && S_ISDIR(st.st_mode))
		return ll_allow(ll, ca, LL_READ_DIR, 0, err, len);
	return ll_allow_dir_of(ll, ca, LL_READ, err, len);
}

/* Every file a listener reloads on SIGHUP. New file keys belong here. */
static int ll_listener_files(struct ll *ll, const struct kmtls_listener_conf *l,
			     char *err, size_t len)
{
	int i;

	if (ll_allow_dir_of(ll, l->cert, LL_READ, err, len) ||
	    ll_allow_dir_of(ll, l->key, LL_READ, err, len) ||
	    ll_allow_ca(ll, l->ca, err, len))
		return -1;
	for (i = 0; i < l->crl.n; i++)
		if (ll_allow_dir_of(ll, l->crl.v[i], LL_READ, err, len))
			return -1;
	if (l->ticket_keys && ll_allow_dir_of(ll, l->ticket_keys, LL_READ, err, len))
		return -1;
	return 0;
}

/* A unix listening socket is removed when its listener goes away. */
static int ll_unix_listen(struct ll *ll, const struct kmtls_listener_conf *l,
			  char *err, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[160];

	if (kmtls_addr_parse(l->listen, 1, &ss, &sl, why, sizeof(why)) ||
	    ss.ss_family != AF_UNIX)
		return 0;
	return ll_allow_dir_of(ll, ((struct sockaddr_un *)&ss)->sun_path, LL_REMOVE,
			       err, len);
}

/* TCP connect to each backend port; unix backends are not Landlock's. */
static int ll_backend_port(struct ll *ll, const struct kmtls_listener_conf *l,
			   char *err, size_t len)
{
	struct ll_net_port_attr np = { .allowed_access = LL_NET_CONNECT_TCP };
	struct sockaddr_storage ss;
	socklen_t sl;
	char why[160];

	if (kmtls_addr_parse(l->backend, 1, &ss, &sl, why, sizeof(why)))
		return kmtls_fail(err, len, "sandbox: listener %s: %s", l->name, why);
	if (ss.ss_family == AF_INET)
		np.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		np.port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return 0;
	if (syscall(SYS_landlock_add_rule, ll->fd, LL_RULE_NET_PORT, &np, 0))
		return kmtls_fail(err, len, "sandbox: Landlock rule for port %llu: %s",
				  (unsigned long long)np.port, strerror(errno));
	return 0;
}

static int ll_rules(struct ll *ll, const struct kmtls_config *cfg, char *err,
		    size_t len)
{
	size_t i;
	int j;

	for (j = 0; j < cfg->n_listeners; j++)
		if (ll_listener_files(ll, &cfg->listeners[j], err, len) ||
		    ll_unix_listen(ll, &cfg->listeners[j], err, len) ||
		    (ll->abi >= 4 && ll_backend_port(ll, &cfg->listeners[j], err, len)))
			return -1;
	/* [kernel NAME] profiles reload their certificates on SIGHUP too. */
	for (j = 0; j < cfg->n_kernels; j++)
		if (ll_listener_files(ll, &cfg->kernels[j].tls, err, len))
			return -1;
	if (cfg->path && ll_allow_dir_of(ll, cfg->path, LL_READ, err, len))
		return -1;
	for (i = 0; i < sizeof(fixed_files) / sizeof(fixed_files[0]); i++)
		if (ll_allow(ll, fixed_files[i], LL_READ, 1, err, len))
			return -1;
	/* LeakSanitizer lists threads and mappings through /proc. */
	if (KMTLS_ASAN && ll_allow(ll, "/proc", LL_READ_DIR, 1, err, len))
		return -1;
	return 0;
}

static __u64 ll_handled_fs(int abi)
{
	__u64 fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;	/* ABI 1 */

	if (abi >= 2)
		fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		fs |= LL_FS_TRUNCATE;
	if (abi >= 5)
		fs |= LL_FS_IOCTL_DEV;
	return fs;
}

static int landlock_apply(const struct kmtls_config *cfg, char *err, size_t len)
{
	struct ll_ruleset_attr attr = { 0 };
	struct ll *ll;
	size_t size = offsetof(struct ll_ruleset_attr, handled_access_net);
	int abi, ret = -1;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		log_warn("sandbox: no Landlock in this kernel (%s): file access is not restricted%s",
			 strerror(errno), errno == EOPNOTSUPP ?
			 "; it is built but off: add landlock to the lsm= boot parameter" : "");
		return 0;
	}
	attr.handled_access_fs = ll_handled_fs(abi);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	ll = calloc(1, sizeof(*ll));
	if (!ll)
		return kmtls_fail(err, len, "sandbox: out of memory");
	ll->abi = abi;
	ll->fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (ll->fd < 0) {
		kmtls_fail(err, len, "sandbox: landlock_create_ruleset: %s", strerror(errno));
		goto out;
	}
	if (ll_rules(ll, cfg, err, len))
		goto out;
	if (syscall(SYS_landlock_restrict_self, ll->fd, 0)) {
		kmtls_fail(err, len, "sandbox: landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	log_info("sandbox: Landlock ABI %d: read-only access to %d path(s), no writes%s",
		 abi, ll->n_paths, abi >= 4 ? ", TCP connect to backend ports only" : "");
	ret = 0;
out:
	if (ll->fd >= 0)
		close(ll->fd);
	free(ll);
	return ret;
}

/* ------------------------------------------------------------------ */
/* seccomp                                                            */

#if defined(__x86_64__)
#define SC_ARCH		AUDIT_ARCH_X86_64
#define SC_X32_BIT	0x40000000u	/* x32 calls share the arch: refuse them */
#elif defined(__aarch64__)
#define SC_ARCH		AUDIT_ARCH_AARCH64
#endif

#ifdef SC_ARCH

/* Names some architectures lack (aarch64 has only epoll_pwait). */
#ifndef __NR_epoll_wait
#define __NR_epoll_wait -1
#endif
#ifndef __NR_fstat
#define __NR_fstat -1
#endif
#ifndef __NR_poll
#define __NR_poll -1
#endif
#ifndef __NR_unlink
#define __NR_unlink -1
#endif
/* The sanitizers' own system calls on x86_64 (not the *at() forms). */
#ifndef __NR_open
#define __NR_open -1
#endif
#ifndef __NR_stat
#define __NR_stat -1
#endif
#ifndef __NR_getdents
#define __NR_getdents -1
#endif
#ifndef __NR_readlink
#define __NR_readlink -1
#endif

/*
 * Seen under strace once serving (host and 6.12 guest): accept4 close
 * connect epoll_ctl epoll_wait exit exit_group fcntl futex getsockname
 * getsockopt lseek madvise memfd_create mmap mprotect munmap newfstatat
 * openat pipe2 read recvfrom recvmsg rseq rt_sigprocmask rt_sigtimedwait
 * sendmsg sendto set_robust_list setsockopt shutdown socket splice write,
 * and clone3 (answered ENOSYS so glibc uses clone, whose flags we can see).
 * Added for paths the tests do not reach or that depend on the machine:
 * the rest of each group below.
 */
static const int allow[] = {
	/* workers: events, connections, kTLS setsockopts, splice relay */
	__NR_epoll_wait, __NR_epoll_pwait, __NR_epoll_ctl, __NR_accept4,
	__NR_connect, __NR_setsockopt, __NR_getsockopt, __NR_getsockname,
	__NR_getpeername, __NR_shutdown, __NR_sendto, __NR_recvfrom,
	__NR_sendmsg, __NR_recvmsg, __NR_splice, __NR_pipe2, __NR_fcntl,
	__NR_read, __NR_write, __NR_writev, __NR_close,
	/* the status endpoint's thread (status-listen) */
	__NR_poll, __NR_ppoll,
	/* SIGHUP reload (files, a CA directory, DER CRLs via a memfd) */
	__NR_openat, __NR_newfstatat, __NR_fstat, __NR_lseek, __NR_getdents64,
	__NR_memfd_create,
	/* watch-files follows a directory or symlink replaced on the way */
	__NR_inotify_add_watch, __NR_inotify_rm_watch,
	/* a unix listener's socket file goes at drain or exit (Landlock: its directory) */
	__NR_unlink, __NR_unlinkat,
	/* malloc, thread stacks */
	__NR_brk, __NR_munmap, __NR_mremap, __NR_madvise,
	/* threads, signals, time, the exit path */
	__NR_futex, __NR_set_robust_list, __NR_rseq, __NR_exit,
	__NR_exit_group, __NR_rt_sigprocmask, __NR_rt_sigtimedwait,
	__NR_rt_sigreturn, __NR_restart_syscall, __NR_sched_yield,
	__NR_clock_gettime, __NR_gettimeofday, __NR_clock_nanosleep,
	__NR_getrandom,
	/* abort() and the SIGSYS handler raise a signal at themselves */
	__NR_getpid, __NR_gettid, __NR_tgkill,
	/*
	 * glibc asks the kernel, all read-only: malloc the CPU count when a
	 * ninth thread needs an arena (workers > 8); qsort() the memory size
	 * for more than 1 KiB of elements (scandir of a CA directory of more
	 * than 128 files, on reload); realpath() every link on the way (unix
	 * addresses compared on reload).
	 */
	__NR_sched_getaffinity, __NR_sysinfo, __NR_readlink, __NR_readlinkat,
};

/*
 * Only in ASan builds (found by running the tests under the filter and
 * reading the SIGSYS number, then, for the leak checker's helper task that
 * has every signal blocked, bpftrace on signal_generate): at exit
 * LeakSanitizer clones a helper task that ptraces every thread and lists
 * /proc/PID/task with the sanitizers' own, non-*at() system calls.
 */
static const int allow_asan[] = {
	__NR_clone, __NR_ptrace, __NR_prctl, __NR_wait4, __NR_sigaltstack,
	__NR_rt_sigaction, __NR_getppid, __NR_kill, __NR_open, __NR_stat,
	__NR_getdents,
	__NR_ioctl,	/* a sanitizer report asks isatty() first */
};

#define SC_MAX 256

struct sc_prog {
	struct sock_filter f[SC_MAX];
	unsigned short n;
};

static void sc_emit(struct sc_prog *p, struct sock_filter ins)
{
	if (p->n < SC_MAX)
		p->f[p->n] = ins;
	p->n++;		/* overflow is caught before install */
}

#define SC_STMT(code, k)	((struct sock_filter)BPF_STMT(code, k))
#define SC_JUMP(code, k, t, f)	((struct sock_filter)BPF_JUMP(code, k, t, f))
#define SC_RET(v)		SC_STMT(BPF_RET | BPF_K, v)
#define SC_LD(off)		SC_STMT(BPF_LD | BPF_W | BPF_ABS, off)
#define SC_DENY			SECCOMP_RET_TRAP

/* The low 32 bits of argument @i: what flags and ints live in. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SC_ARG(i)	(offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define SC_ARG(i)	(offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

/* if (nr == @nr) return @ret; 1 when emitted (@nr exists here). */
static int sc_nr_ret(struct sc_prog *p, int nr, __u32 ret)
{
	if (nr < 0)
		return 0;
	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
	sc_emit(p, SC_RET(ret));
	return 1;
}

/* if (nr == @nr) return (arg @i & @mask) ? @if_set : @if_clear; */
static void sc_nr_mask(struct sc_prog *p, int nr, int i, __u32 mask,
		       __u32 if_set, __u32 if_clear)
{
	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 4));
	sc_emit(p, SC_LD(SC_ARG(i)));
	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JSET | BPF_K, mask, 0, 1));
	sc_emit(p, SC_RET(if_set));
	sc_emit(p, SC_RET(if_clear));
}

/* if (nr == @nr) return arg @i in @vals ? ALLOW : DENY; */
static void sc_nr_oneof(struct sc_prog *p, int nr, int i, const __u32 *vals, int n)
{
	int k;

	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, n + 3));
	sc_emit(p, SC_LD(SC_ARG(i)));
	for (k = 0; k < n; k++)
		sc_emit(p, SC_JUMP(BPF_JMP | BPF_JEQ | BPF_K, vals[k], n - k, 0));
	sc_emit(p, SC_RET(SC_DENY));
	sc_emit(p, SC_RET(SECCOMP_RET_ALLOW));
}

static int sc_build(struct sc_prog *p)
{
	static const __u32 families[] = { AF_UNIX, AF_INET, AF_INET6 };
	static const __u32 glibc_signals[] = { 32, 33 };	/* __SIGRTMIN, +1 */
	static const __u32 ioctls[] = { SIOCOUTQ };
	size_t i;
	int calls = 0;

	sc_emit(p, SC_LD(offsetof(struct seccomp_data, arch)));
	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SC_ARCH, 1, 0));
	sc_emit(p, SC_RET(SECCOMP_RET_KILL_PROCESS));
	sc_emit(p, SC_LD(offsetof(struct seccomp_data, nr)));
#ifdef SC_X32_BIT
	sc_emit(p, SC_JUMP(BPF_JMP | BPF_JGE | BPF_K, SC_X32_BIT, 0, 1));
	sc_emit(p, SC_RET(SECCOMP_RET_KILL_PROCESS));
#endif
	for (i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		calls += sc_nr_ret(p, allow[i], SECCOMP_RET_ALLOW);
	for (i = 0; KMTLS_ASAN && i < sizeof(allow_asan) / sizeof(allow_asan[0]); i++)
		calls += sc_nr_ret(p, allow_asan[i], SECCOMP_RET_ALLOW);
	/* Sockets: backends, syslog, sd_notify. */
	sc_nr_oneof(p, __NR_socket, 0, families, 3);
	/*
	 * glibc's first pthread_create() installs its two internal handlers
	 * (SIGCANCEL, SIGSETXID); no other handler may change, SIGSYS's above all.
	 */
	sc_nr_oneof(p, __NR_rt_sigaction, 0, glibc_signals, 2);
	/* The relay's lingering close asks what the peer has not acknowledged. */
	sc_nr_oneof(p, __NR_ioctl, 1, ioctls, 1);
	/* Memory is never made executable. */
	sc_nr_mask(p, __NR_mmap, 2, PROT_EXEC, SC_DENY, SECCOMP_RET_ALLOW);
	sc_nr_mask(p, __NR_mprotect, 2, PROT_EXEC, SC_DENY, SECCOMP_RET_ALLOW);
	/* Threads only: clone3 hides its flags in memory, so glibc falls back. */
	sc_nr_ret(p, __NR_clone3, SECCOMP_RET_ERRNO | ENOSYS);
	calls += 6;	/* socket, rt_sigaction, ioctl, mmap, mprotect, clone3 */
	/* Threads, not processes (with ASan, clone matched above already). */
	sc_nr_mask(p, __NR_clone, 0, CLONE_THREAD, SECCOMP_RET_ALLOW, SC_DENY);
	calls += !KMTLS_ASAN;
	sc_emit(p, SC_RET(SC_DENY));
	return calls;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	static const char head[] = "kmtlsd: sandbox: system call ";
	static const char tail[] = " is not on the seccomp allowlist (agent/sandbox.c): stopping; "
		"set sandbox = off in [kmtlsd] to run without it, and report this line\n";
	char msg[sizeof(head) + sizeof(tail) + 16], num[12];
	unsigned int nr = (unsigned int)si->si_syscall;
	size_t n = sizeof(head) - 1, k = 0;

	(void)sig;
	(void)uc;
	memcpy(msg, head, n);
	do
		num[k++] = '0' + nr % 10;
	while ((nr /= 10) && k < sizeof(num));
	while (k)
		msg[n++] = num[--k];
	memcpy(msg + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	if (write(STDERR_FILENO, msg, n) < 0)
		n = 0;
	/* SA_RESETHAND made the action default: dies once the handler returns. */
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSYS);
}

static int seccomp_apply(char *err, size_t len)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_RESETHAND };
	struct sock_fprog prog;
	struct sc_prog *p = calloc(1, sizeof(*p));
	int calls;

	if (!p)
		return kmtls_fail(err, len, "sandbox: out of memory");
	calls = sc_build(p);
	if (p->n > SC_MAX) {
		free(p);
		return kmtls_fail(err, len, "sandbox: seccomp filter longer than %d instructions", SC_MAX);
	}
	prog.len = p->n;
	prog.filter = p->f;
	sigaction(SIGSYS, &sa, NULL);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)) {
		int e = errno;

		free(p);
		if (e == EINVAL || e == ENOSYS) {
			log_warn("sandbox: no seccomp filters in this kernel (%s): system calls are not restricted",
				 strerror(e));
			return 0;
		}
		return kmtls_fail(err, len, "sandbox: seccomp: %s", strerror(e));
	}
	free(p);
	log_info("sandbox: seccomp allowlist of %d system calls%s; any other stops kmtlsd with SIGSYS and names it (sandbox = off in [kmtlsd] disables the sandbox)",
		 calls, KMTLS_ASAN ? " (+ AddressSanitizer's)" : "");
	return 0;
}

#else /* !SC_ARCH */

static int seccomp_apply(char *err, size_t len)
{
	(void)err;
	(void)len;
	log_warn("sandbox: no seccomp allowlist for this architecture: system calls are not restricted");
	return 0;
}

#endif

/* ------------------------------------------------------------------ */

int kmtls_sandbox_apply(const struct kmtls_config *cfg, char *err, size_t errlen)
{
	/* syslog() reads the time zone on first use; read it while we can. */
	tzset();
	no_core_dumps();
	if (cfg->user && drop_privileges(cfg, err, errlen))
		return -1;
	if (cfg->sandbox == KMTLS_SANDBOX_OFF) {
		log_warn("sandbox = off: no Landlock, no seccomp filter");
		return 0;
	}
	if (single_threaded(err, errlen))
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return kmtls_fail(err, errlen, "sandbox: no_new_privs: %s", strerror(errno));
	if (landlock_apply(cfg, err, errlen) || seccomp_apply(err, errlen))
		return -1;
	return 0;
}
