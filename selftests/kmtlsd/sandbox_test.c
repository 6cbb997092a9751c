// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's hardening from the outside: with the sandbox on (the default) it
 * is under a seccomp filter with no_new_privs, still serves (kTLS
 * setsockopts and splice pass the filter in the guest) and still reloads on
 * SIGHUP; Landlock refuses a certificate that moved outside the directories
 * it started with; `user = nobody` runs as nobody with no capability after
 * binding a port below 1024; an unknown user is refused by name; a SIGHUP
 * re-reads the config file and applies a new policy, allow-uid user names
 * included, under the filter; and the systemd notifications (READY,
 * WATCHDOG, RELOADING, STOPPING) arrive over an abstract and a path
 * NOTIFY_SOCKET.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

/* The value of "Key:" in /proc/PID/status, or "" when absent. */
static const char *status_field(pid_t pid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	size_t n = strlen(key);
	FILE *f;

	buf[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, n) && line[n] == ':') {
			snprintf(buf, len, "%s", line + n + 1 + strspn(line + n + 1, " \t"));
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	return buf;
}

/* The soft limit of "Max core file size" in /proc/PID/limits, or -1. */
static long core_limit(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Max core file size", 18) && sscanf(line + 18, "%ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* One mTLS round trip through kmtlsd to the echo backend. */
static int ping(int port, char *err, size_t len)
{
	struct tls_client_opts o = { .port = port, .cert = pki("client.pem"),
				     .key = pki("client.key") };
	struct tls_end e;
	char buf[4];
	int ret = -1;

	if (tls_client_open(&o, &e, err, len))
		return -1;
	if (wolfSSL_write(e.ssl, "ping", 4) == 4 && wolfSSL_read(e.ssl, buf, 4) == 4 &&
	    !memcmp(buf, "ping", 4))
		ret = 0;
	else
		snprintf(err, len, "no echo through kmtlsd");
	tls_end_close(&e);
	return ret;
}

static int copy_file(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid)
{
	char buf[65536];
	int in = open(src, O_RDONLY), out;
	ssize_t n;

	unlink(dst);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (in < 0 || out < 0)
		return -1;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			return -1;
	close(in);
	if (fchmod(out, mode) || fchown(out, uid, gid))
		return -1;
	return close(out);
}

/* server.pem, server.key and ca.pem copied into @dir (created). */
static int copy_pki(const char *dir, uid_t uid, gid_t gid)
{
	char p[512];

	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/server.pem", dir);
	if (copy_file(pki("server.pem"), p, 0644, uid, gid))
		return -1;
	snprintf(p, sizeof(p), "%s/ca.pem", dir);
	if (copy_file(pki("ca.pem"), p, 0644, uid, gid))
		return -1;
	snprintf(p, sizeof(p), "%s/server.key", dir);
	return copy_file(pki("server.key"), p, 0600, uid, gid);
}

/* A free port below 1024 on 127.0.0.1 (we run as root), or -1. */
static int low_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int port, fd, ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (port = 990; port > 600; port--) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_port = htons(port);
		ok = !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (ok)
			return port;
	}
	return -1;
}

FIXTURE(sb) {
	struct backend be;
	struct kmtlsd d;
	char dir[256];
	char listen[64], backend[64];
	char bpffs[512];	/* a bpffs a test mounted, "" if none */
};

FIXTURE_SETUP(sb)
{
	const char *be_args[] = { "--mode", "echo", NULL };

	signal(SIGPIPE, SIG_IGN);
	self->d.proc.pid = 0;
	self->bpffs[0] = 0;
	ASSERT_EQ(0, backend_start(&self->be, be_args));
	snprintf(self->backend, sizeof(self->backend), "127.0.0.1:%d", self->be.port);
	snprintf(self->dir, sizeof(self->dir), "%s/pki-%s", test_tmpdir(), _metadata->name);
}

FIXTURE_TEARDOWN(sb)
{
	if (!__test_passed(_metadata) && self->d.proc.pid)
		kmtlsd_dump_log(&self->d);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
	if (self->bpffs[0])
		umount2(self->bpffs, MNT_DETACH);
}

TEST_F(sb, filtered_serves_and_reloads)
{
	const char *args[] = { NULL };
	long ktls_before = tls_stat("TlsTxSw");
	char err[256], v[128];

	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, args));
	EXPECT_STREQ("2", status_field(self->d.proc.pid, "Seccomp", v, sizeof(v)));
	EXPECT_STREQ("1", status_field(self->d.proc.pid, "NoNewPrivs", v, sizeof(v)));
	EXPECT_EQ(0, core_limit(self->d.proc.pid));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "sandbox: seccomp allowlist of"));
	EXPECT_EQ(0, ping(self->d.port, err, sizeof(err))) TH_LOG("%s", err);
	/* In the guest the keys went into kTLS under the filter. */
	if (ktls_before >= 0)
		EXPECT_LT(ktls_before, tls_stat("TlsTxSw"));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 10000));
	EXPECT_EQ(0, ping(self->d.port, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "not on the seccomp allowlist"));
}

/*
 * The certificate becomes a symlink into a directory kmtlsd was never
 * given: Landlock refuses the reload, the old certificate keeps serving.
 * With the sandbox off the same reload goes through (the control).
 */
static void moved_cert(struct __test_metadata *_metadata, FIXTURE_DATA(sb) *self,
		       int sandbox)
{
	char cert[512], key[512], ca[512], elsewhere[512], err[256];
	const char *args[] = {
		"--listen", self->listen, "--backend", self->backend, "--cert", cert,
		"--key", key, "--ca", ca, "--sandbox", sandbox ? "on" : "off", NULL,
	};

	snprintf(self->listen, sizeof(self->listen), "127.0.0.1:%d", free_port());
	ASSERT_EQ(0, copy_pki(self->dir, 0, 0));
	snprintf(cert, sizeof(cert), "%s/server.pem", self->dir);
	snprintf(key, sizeof(key), "%s/server.key", self->dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", self->dir);
	ASSERT_EQ(0, kmtlsd_run(&self->d, atoi(strrchr(self->listen, ':') + 1), args));
	if (sandbox && proc_log_count(&self->d.proc, "no Landlock"))
		SKIP(return, "the kernel has no Landlock");
	snprintf(elsewhere, sizeof(elsewhere), "%s-elsewhere", self->dir);
	ASSERT_EQ(0, copy_pki(elsewhere, 0, 0));
	strcat(elsewhere, "/server.pem");
	ASSERT_EQ(0, unlink(cert));
	ASSERT_EQ(0, symlink(elsewhere, cert));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	if (sandbox) {
		ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "keeping the previous", 10000));
		EXPECT_EQ(0, proc_log_count(&self->d.proc, "reloaded certificates"));
	} else {
		ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 10000));
	}
	EXPECT_EQ(0, ping(self->d.port, err, sizeof(err))) TH_LOG("%s", err);
}

TEST_F(sb, landlock_refuses_a_file_moved_outside)
{
	moved_cert(_metadata, self, 1);
}

TEST_F(sb, sandbox_off_reloads_it)
{
	char v[64];

	moved_cert(_metadata, self, 0);
	EXPECT_STREQ("0", status_field(self->d.proc.pid, "Seccomp", v, sizeof(v)));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "sandbox = off"));
}

/* Write @val into the sysctl file @path: its previous value, or -1. */
static int sysctl_swap(const char *path, int val)
{
	FILE *f = fopen(path, "r+");
	int old = -1;

	if (val < 0 || !f || fscanf(f, "%d", &old) != 1 || fseek(f, 0, SEEK_SET) ||
	    fprintf(f, "%d\n", val) < 0)
		old = -1;
	if (f && fclose(f))
		old = -1;
	return old;
}

/* An AddressSanitizer kmtlsd stays dumpable on purpose (sandbox.c). */
static int asan_build(struct kmtlsd *d)
{
	return proc_log_count(&d->proc, "(+ AddressSanitizer's)") > 0;
}

/*
 * From a config file, as in production: [kmtlsd] user = nobody; with
 * fs.suid_dumpable = 1 for its start, it must still not be dumpable.
 */
TEST_F(sb, user_nobody_after_binding_a_low_port)
{
	char conf[512], err[256], v[128], want[64];
	struct passwd *pw = getpwnam("nobody");
	const char *args[] = { "-c", conf, NULL };
	int port = low_port(), suid_dumpable, started;
	struct stat st;
	FILE *f;

	if (geteuid() != 0 || !pw)
		SKIP(return, "needs root and a user nobody");
	ASSERT_LT(0, port);
	/* mkdtemp made it 0700: nobody must reach the files to reload them. */
	ASSERT_EQ(0, chmod(test_tmpdir(), 0711));
	/* Owned by nobody, so that the reload can read them after the switch. */
	ASSERT_EQ(0, copy_pki(self->dir, pw->pw_uid, pw->pw_gid));
	snprintf(conf, sizeof(conf), "%s/kmtlsd.conf", self->dir);
	f = fopen(conf, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, "[kmtlsd]\nuser = nobody\nsandbox = on\n\n[listener low]\n"
		"listen = 127.0.0.1:%d\nbackend = %s\ncert = %s/server.pem\n"
		"key = %s/server.key\nca = %s/ca.pem\n",
		port, self->backend, self->dir, self->dir, self->dir);
	fclose(f);
	/* The uid change makes it dumpable if fs.suid_dumpable is 1. */
	suid_dumpable = sysctl_swap("/proc/sys/fs/suid_dumpable", 1);
	started = kmtlsd_run(&self->d, port, args);
	sysctl_swap("/proc/sys/fs/suid_dumpable", suid_dumpable);
	ASSERT_EQ(0, started);
	/* Not dumpable: /proc/PID/mem is root's, not nobody's to open. */
	if (suid_dumpable >= 0 && !asan_build(&self->d)) {
		snprintf(v, sizeof(v), "/proc/%d/mem", (int)self->d.proc.pid);
		ASSERT_EQ(0, stat(v, &st));
		EXPECT_EQ(0U, st.st_uid);
	}
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid,
		 pw->pw_uid);
	EXPECT_STREQ(want, status_field(self->d.proc.pid, "Uid", v, sizeof(v)));
	snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_gid, pw->pw_gid, pw->pw_gid,
		 pw->pw_gid);
	EXPECT_STREQ(want, status_field(self->d.proc.pid, "Gid", v, sizeof(v)));
	EXPECT_STREQ("0000000000000000", status_field(self->d.proc.pid, "CapEff", v, sizeof(v)));
	EXPECT_STREQ("0000000000000000", status_field(self->d.proc.pid, "CapPrm", v, sizeof(v)));
	EXPECT_STREQ("2", status_field(self->d.proc.pid, "Seccomp", v, sizeof(v)));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "running as user nobody"));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "cannot read"));
	EXPECT_EQ(0, ping(port, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 10000));
	EXPECT_EQ(0, ping(port, err, sizeof(err))) TH_LOG("%s", err);
}

/* 0 when kmtlsd is alive and never named a call outside the allowlist. */
static int still_filtered(struct kmtlsd *d)
{
	char v[16];

	if (kill(d->proc.pid, 0) || proc_log_count(&d->proc, "not on the seccomp allowlist"))
		return -1;
	return strcmp(status_field(d->proc.pid, "Seccomp", v, sizeof(v)), "2") ? -1 : 0;
}

/*
 * More workers than glibc's first eight malloc arenas: the thread that
 * needs the ninth asks for the CPU count (sched_getaffinity). Connections
 * are spread over the workers' SO_REUSEPORT sockets by their ports, so 60
 * of them reach (almost surely) every one of the 12 workers.
 */
TEST_F(sb, twelve_workers_serve_under_the_filter)
{
	const char *args[] = { "--workers", "12", NULL };
	char err[256];
	int i, ok = 0;

	ASSERT_EQ(0, kmtlsd_start(&self->d, self->be.port, args));
	ASSERT_EQ(1, proc_log_count(&self->d.proc, "12 worker(s)"));
	for (i = 0; i < 60; i++) {
		if (!ping(self->d.port, err, sizeof(err)))
			ok++;
		else if (still_filtered(&self->d))
			break;
	}
	EXPECT_EQ(60, ok) TH_LOG("last: %s", err);
	EXPECT_EQ(0, still_filtered(&self->d));
}

/*
 * The reload validates the configuration again, which compares the two
 * unix addresses by their real directories: realpath() reads links.
 */
TEST_F(sb, reload_with_two_unix_addresses)
{
	const char *dir = test_tmpdir();
	const char *args[] = { "-c", self->dir, NULL };
	FILE *f;

	/* An originating listener: unix: is for those. */
	snprintf(self->dir, sizeof(self->dir), "%s/unix.conf", dir);
	f = fopen(self->dir, "w");
	ASSERT_NE(NULL, f);
	fprintf(f, "[kmtlsd]\nsandbox = on\nstatus-listen = unix:%s/status.sock\n\n"
		"[listener u]\nmode = originate\nlisten = unix:%s/l.sock\nbackend = %s\n"
		"server-name = localhost\ncert = %s\nkey = %s\nca = %s\n",
		dir, dir, self->backend, pki("client.pem"), pki("client.key"), pki("ca.pem"));
	ASSERT_EQ(0, fclose(f));
	ASSERT_EQ(0, kmtlsd_run(&self->d, 0, args));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "status on unix:", 5000));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 10000));
	EXPECT_EQ(0, still_filtered(&self->d));
}

/*
 * A CA directory that grew past 128 files after the start: the reload's
 * scandir() sorts more than 1 KiB of pointers, and glibc's qsort() asks
 * for the memory size (sysinfo) before it allocates.
 */
TEST_F(sb, reload_a_ca_directory_of_140_files)
{
	char cadir[512], file[600], err[256];
	const char *args[] = {
		"--listen", self->listen, "--backend", self->backend, "--cert", pki("server.pem"),
		"--key", pki("server.key"), "--ca", cadir, NULL,
	};
	int i;

	snprintf(self->listen, sizeof(self->listen), "127.0.0.1:%d", free_port());
	snprintf(cadir, sizeof(cadir), "%s-cadir", self->dir);
	ASSERT_EQ(0, mkdir(cadir, 0755));
	snprintf(file, sizeof(file), "%s/ca.pem", cadir);
	ASSERT_EQ(0, copy_file(pki("ca.pem"), file, 0644, 0, 0));
	ASSERT_EQ(0, kmtlsd_run(&self->d, atoi(strrchr(self->listen, ':') + 1), args));
	EXPECT_EQ(0, ping(self->d.port, err, sizeof(err))) TH_LOG("%s", err);
	for (i = 0; i < 140; i++) {
		snprintf(file, sizeof(file), "%s/ca-%03d.pem", cadir, i);
		ASSERT_EQ(0, copy_file(pki("ca.pem"), file, 0644, 0, 0));
	}
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "reloaded certificates", 10000));
	EXPECT_EQ(0, still_filtered(&self->d));
	EXPECT_EQ(0, ping(self->d.port, err, sizeof(err))) TH_LOG("%s", err);
}

/* 1 when bad/policy's certificate (@intruder) or client's gets through. */
static int served(int port, int intruder)
{
	struct tls_client_opts o = {
		.port = port,
		.cert = pki(intruder ? "bad/policy.pem" : "client.pem"),
		.key = pki(intruder ? "bad/policy.key" : "client.key"),
	};
	struct tls_end e;
	char err[256], buf[4];
	int ok = 0;

	if (!tls_client_open(&o, &e, err, sizeof(err)))
		ok = wolfSSL_write(e.ssl, "ping", 4) == 4 && wolfSSL_read(e.ssl, buf, 4) == 4;
	tls_end_close(&e);
	return ok;
}

static int write_policy_conf(const char *conf, int port, const char *backend,
			     const char *allow_uri, const char *allow_uid)
{
	FILE *f = fopen(conf, "w");

	if (!f)
		return -1;
	fprintf(f, "[kmtlsd]\nsandbox = on\n\n[listener sb]\nlisten = 127.0.0.1:%d\n"
		"backend = %s\ncert = %s\nkey = %s\nca = %s\n%s\n"
		"[kernel default]\ncert = %s\nkey = %s\nca = %s\nallow-uid = %s\n",
		port, backend, pki("server.pem"), pki("server.key"), pki("ca.pem"), allow_uri,
		pki("server.pem"), pki("server.key"), pki("ca.pem"), allow_uid);
	return fclose(f);
}

/*
 * The policy reloads under the filter: the listener's allow-uri narrows,
 * the kernel profile's allow-uid takes user names (looked up outside the
 * sandbox, which reads neither /etc/passwd nor NSS modules), and an
 * unknown user keeps the previous configuration without harm to kmtlsd.
 */
TEST_F(sb, policy_reloads_under_the_filter)
{
	struct passwd *pw = getpwnam("nobody");
	char conf[512], v[64], want[128];
	const char *args[] = { "-c", conf, NULL };
	int port = free_port();

	if (!pw)
		SKIP(return, "needs a user nobody");
	snprintf(conf, sizeof(conf), "%s/policy.conf", test_tmpdir());
	ASSERT_EQ(0, write_policy_conf(conf, port, self->backend,
				       "allow-uri = spiffe://example.org/*\nallow-uri = spiffe://other.org/*",
				       "0"));
	ASSERT_EQ(0, kmtlsd_run(&self->d, port, args));
	EXPECT_STREQ("2", status_field(self->d.proc.pid, "Seccomp", v, sizeof(v)));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "looks up allow-uid user names for reloads"));
	EXPECT_EQ(1, served(port, 1));

	ASSERT_EQ(0, write_policy_conf(conf, port, self->backend,
				       "allow-uri = spiffe://example.org/*", "root, nobody"));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "of 1 kernel profile(s)", 10000));
	snprintf(want, sizeof(want), "reload: [kernel default] allow-uid = \"0, %u\" (was \"0\")",
		 (unsigned int)pw->pw_uid);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, want)) TH_LOG("no \"%s\"", want);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "reload: [listener sb] allow-uri = \"spiffe://example.org/*\""));
	EXPECT_EQ(0, served(port, 1));
	EXPECT_EQ(1, served(port, 0));

	ASSERT_EQ(0, write_policy_conf(conf, port, self->backend, "", "kmtls-no-such-user"));
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "keeping the previous configuration", 10000));
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "allow-uid = \"kmtls-no-such-user\": expected uids or user names"));
	/* Still filtered, still serving, with the policy of the last good file. */
	EXPECT_EQ(1, served(port, 0));
	EXPECT_EQ(0, served(port, 1));
	EXPECT_STREQ("2", status_field(self->d.proc.pid, "Seccomp", v, sizeof(v)));
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "not on the seccomp allowlist"));
}

TEST_F(sb, unknown_user_refused_by_name)
{
	const char *args[] = { "--user", "kmtls-no-such-user", NULL };

	ASSERT_EQ(-1, kmtlsd_start(&self->d, self->be.port, args));
	EXPECT_EQ(1, proc_log_count(&self->d.proc,
				    "user = \"kmtls-no-such-user\": no such user"));
}

/* ---- sd_notify ---------------------------------------------------------- */

struct notify {
	int fd;
	char name[108];
	char got[8192];
	size_t len;
};

static int notify_open(struct notify *n, int abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	n->len = 0;
	if (abstract)
		snprintf(n->name, sizeof(n->name), "@kmtls-sandbox-test-%d", (int)getpid());
	else
		snprintf(n->name, sizeof(n->name), "%s/notify.sock", test_tmpdir());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", n->name);
	len = offsetof(struct sockaddr_un, sun_path) + strlen(n->name);
	if (abstract)
		sa.sun_path[0] = 0;
	else
		unlink(n->name);
	return n->fd < 0 || bind(n->fd, (struct sockaddr *)&sa, len) ? -1 : 0;
}

/* Read datagrams until @msg was one of them or @timeout_ms passed. */
static int notify_wait(struct notify *n, const char *msg, int timeout_ms)
{
	struct pollfd p = { .fd = n->fd, .events = POLLIN };
	char buf[512];
	ssize_t r;
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 50) {
		while ((r = recv(n->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[r] = 0;
			n->len += snprintf(n->got + n->len, sizeof(n->got) - n->len, "%s|", buf);
			if (n->len >= sizeof(n->got))
				n->len = sizeof(n->got) - 1;
			if (!strncmp(buf, msg, strlen(msg)))
				return 0;
		}
		poll(&p, 1, 50);
	}
	return -1;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

static void notify_cycle(struct __test_metadata *_metadata, FIXTURE_DATA(sb) *self,
			 int abstract)
{
	struct notify n;
	int started;

	ASSERT_EQ(0, notify_open(&n, abstract));
	setenv("NOTIFY_SOCKET", n.name, 1);
	setenv("WATCHDOG_USEC", "200000", 1);	/* a ping every 100 ms */
	started = kmtlsd_start(&self->d, self->be.port, NULL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	ASSERT_EQ(0, started);
	ASSERT_EQ(0, notify_wait(&n, "READY=1", 5000)) TH_LOG("got %s", n.got);
	ASSERT_EQ(0, notify_wait(&n, "WATCHDOG=1", 2000)) TH_LOG("got %s", n.got);
	ASSERT_EQ(0, notify_wait(&n, "WATCHDOG=1", 2000)) TH_LOG("got %s", n.got);
	ASSERT_EQ(0, proc_signal(&self->d.proc, SIGHUP));
	ASSERT_EQ(0, notify_wait(&n, "RELOADING=1\nMONOTONIC_USEC=", 5000)) TH_LOG("got %s", n.got);
	ASSERT_EQ(0, notify_wait(&n, "READY=1", 5000)) TH_LOG("got %s", n.got);
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	EXPECT_EQ(0, notify_wait(&n, "STOPPING=1", 2000)) TH_LOG("got %s", n.got);
	EXPECT_EQ(2, count(n.got, "READY=1"));
	close(n.fd);
	if (!abstract)
		unlink(n.name);
}

TEST_F(sb, notify_abstract_socket)
{
	notify_cycle(_metadata, self, 1);
}

TEST_F(sb, notify_path_socket)
{
	notify_cycle(_metadata, self, 0);
}

/* ---- a reload that waits on a helper process that hangs ----------------- */

/* The number kmtlsd logged right after @before ("process 123 ..."), or -1. */
static pid_t logged_pid(struct proc *p, const char *before)
{
	char line[1024], *at;
	FILE *f = fopen(p->log, "r");
	pid_t pid = -1;

	while (f && pid < 0 && fgets(line, sizeof(line), f))
		if ((at = strstr(line, before)))
			pid = atoi(at + strlen(before));
	if (f)
		fclose(f);
	return pid > 0 ? pid : -1;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * SIGHUP, then read the notifications until a WATCHDOG=1 after the
 * reload's READY=1: the longest time without a WATCHDOG=1 (from the last
 * one before the SIGHUP) into *gap, the SIGHUP to READY=1 into *took.
 * -1 when READY=1 did not come within @timeout_ms.
 */
static int reload_pings(struct notify *n, struct proc *d, int timeout_ms,
			long long *gap, long long *took)
{
	struct pollfd p = { .fd = n->fd, .events = POLLIN };
	long long last, now, sent, end, ready = 0;
	char buf[512];
	ssize_t r;

	if (notify_wait(n, "WATCHDOG=1", 2000))
		return -1;
	last = mono_ms();
	*gap = 0;
	if (proc_signal(d, SIGHUP))
		return -1;
	sent = mono_ms();
	for (end = sent + timeout_ms; (now = mono_ms()) < end;) {
		if (now - last > *gap)
			*gap = now - last;
		if (poll(&p, 1, 20) != 1)
			continue;
		r = recv(n->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (r <= 0)
			continue;
		buf[r] = 0;
		now = mono_ms();
		if (!strcmp(buf, "READY=1")) {
			ready = now;
		} else if (!strcmp(buf, "WATCHDOG=1")) {
			if (now - last > *gap)
				*gap = now - last;
			last = now;
			if (ready)
				break;
		}
	}
	*took = ready ? ready - sent : -1;
	return ready ? 0 : -1;
}

/*
 * systemd kills a service that sends no WATCHDOG=1 for WATCHDOG_USEC. A
 * reload waits for a helper process (allow-uid lookups, [ratelimit]):
 * with the helper stopped by SIGSTOP the reload waits its full bound,
 * and the pings must go on meanwhile (every half interval: 500 ms here).
 * @conf has kmtlsd's configuration; @helper is what the log says before
 * the helper's pid; @waited what it logs when the wait gives up.
 */
static void reload_with_a_stuck_helper(struct __test_metadata *_metadata,
				       FIXTURE_DATA(sb) *self, const char *conf, int port,
				       const char *helper, const char *waited, int bound_ms)
{
	const char *args[] = { "-c", conf, NULL };
	long long gap, took;
	struct notify n;
	pid_t pid;
	int started;

	ASSERT_EQ(0, notify_open(&n, 0));
	setenv("NOTIFY_SOCKET", n.name, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	started = kmtlsd_run(&self->d, port, args);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	ASSERT_EQ(0, started);
	ASSERT_EQ(0, notify_wait(&n, "READY=1", 5000)) TH_LOG("got %s", n.got);
	pid = logged_pid(&self->d.proc, helper);
	ASSERT_LT(0, pid) TH_LOG("no \"%s<pid>\" in the log", helper);
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	started = reload_pings(&n, &self->d.proc, bound_ms + 10000, &gap, &took);
	kill(pid, SIGCONT);
	ASSERT_EQ(0, started) TH_LOG("no READY=1 after the SIGHUP");
	TH_LOG("reload took %lld ms; longest time without WATCHDOG=1: %lld ms", took, gap);
	/* The helper was waited for, up to its bound and no longer... */
	EXPECT_LE(bound_ms - 100, took);
	EXPECT_GT(bound_ms + 3000, took);
	EXPECT_EQ(1, proc_log_count(&self->d.proc, waited));
	/* ...and systemd heard from kmtlsd all along. */
	EXPECT_GT(1000, gap);
	close(n.fd);
	unlink(n.name);
}

TEST_F_TIMEOUT(sb, watchdog_fed_while_a_user_lookup_hangs, 60)
{
	char conf[512];
	int port = free_port();

	if (!getpwnam("nobody"))
		SKIP(return, "needs a user nobody");
	snprintf(conf, sizeof(conf), "%s/uid.conf", test_tmpdir());
	ASSERT_EQ(0, write_policy_conf(conf, port, self->backend, "", "nobody"));
	reload_with_a_stuck_helper(_metadata, self, conf, port, "]: process ",
				   "the lookup of user \"nobody\" got no answer within 5 s", 5000);
	/* The file was refused (the name could not be looked up). */
	EXPECT_EQ(1, proc_log_count(&self->d.proc, "cannot look up user names: Connection timed out"));
	EXPECT_EQ(1, served(port, 0));
}

TEST_F_TIMEOUT(sb, watchdog_fed_while_the_ratelimit_helper_hangs, 60)
{
	char conf[512], pins[512];
	int port = free_port(), i;
	FILE *f;

	snprintf(pins, sizeof(pins), "%s/bpffs", test_tmpdir());
	ASSERT_EQ(0, mkdir(pins, 0700));
	if (mount("bpffs", pins, "bpf", 0, "mode=0700"))
		SKIP(return, "cannot mount a bpffs for the limiter's pins: %s", strerror(errno));
	snprintf(self->bpffs, sizeof(self->bpffs), "%s", pins);	/* the teardown's */
	strcat(pins, "/kmtls");
	setenv("KMTLS_BPF_PIN_DIR", pins, 1);
	snprintf(conf, sizeof(conf), "%s/rl.conf", test_tmpdir());
	ASSERT_EQ(0, write_policy_conf(conf, port, self->backend, "", "0"));
	f = fopen(conf, "a");
	ASSERT_NE(NULL, f);
	fprintf(f, "\n[ratelimit]\nrate = 100\n");
	ASSERT_EQ(0, fclose(f));
	reload_with_a_stuck_helper(_metadata, self, conf, port, "ratelimit: process ",
				   "[ratelimit] reload still running after 10 s; carrying on", 10000);
	unsetenv("KMTLS_BPF_PIN_DIR");
	EXPECT_EQ(1, served(port, 0));
	/* The helper, running again, finishes the reload it had begun. */
	for (i = 0; i < 100 && proc_log_count(&self->d.proc, "ratelimit: enforce") < 2; i++)
		usleep(50000);
	EXPECT_EQ(2, proc_log_count(&self->d.proc, "ratelimit: enforce"));
}

TEST_HARNESS_MAIN
