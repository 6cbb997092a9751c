// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * watch-files and the ways deploy tools replace certificates, under the
 * sandbox as kmtlsd normally runs: each change makes exactly one reload
 * (counted after a settle time longer than the quiet period) and nothing
 * else makes one.
 *
 * Files: a copy over the file, a rename into place, a delete and a later
 * re-create. Directories: the whole directory renamed away and a new one
 * renamed in (then a write into the old one changes nothing), removed and
 * made again, switched by a symlink (`current -> relN`, mv -T), Kubernetes'
 * "..data" switch, certbot's live/ symlinks. A directory kmtlsd may not
 * read (Landlock) is waited for, not reloaded in vain.
 *
 * The configuration file sits in the directory that holds the replaced
 * directories, so that the sandbox lets kmtlsd read their successors (see
 * watch-files in kmtlsd.conf(5)). Each version of a layout carries a CRL:
 * crl.pem refuses bad/revoked, crl-empty.pem lets it in, which shows which
 * version kmtlsd serves.
 */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/backend.h"
#include "../lib/client.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#define RELOADED	"reloaded certificates"
#define DECIDED		"changed: reloading"
#define FAILED		"keeping the previous"
#define SETTLE_MS	2200	/* the quiet period (1 s) and then some */

FIXTURE(wl) {
	struct backend be;
	struct kmtlsd d;
	char base[256];
	int reloads;		/* expected so far */
};

FIXTURE_SETUP(wl)
{
	const char *be_args[] = { "--mode", "echo", NULL };

	signal(SIGPIPE, SIG_IGN);
	self->d.proc.pid = 0;
	self->reloads = 0;
	snprintf(self->base, sizeof(self->base), "%s/%s", test_tmpdir(), _metadata->name);
	ASSERT_EQ(0, mkdir(self->base, 0700));
	ASSERT_EQ(0, backend_start(&self->be, be_args));
}

FIXTURE_TEARDOWN(wl)
{
	if (!__test_passed(_metadata) && self->d.proc.pid)
		kmtlsd_dump_log(&self->d);
	EXPECT_EQ(0, proc_log_count(&self->d.proc, "not on the seccomp allowlist"));
	EXPECT_EQ(0, kmtlsd_stop(&self->d));
	backend_stop(&self->be);
}

/* BASE/@fmt... in a rotating buffer. */
static const char *at(FIXTURE_DATA(wl) *self, const char *fmt, ...)
{
	static char slots[8][512];
	static int next;
	char *p = slots[next++ % 8], rel[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(p, sizeof(slots[0]), "%s/%s", self->base, rel);
	return p;
}

/* @src's bytes into @dst, in place (as cp does: same file, new bytes). */
static int copy_over(const char *src, const char *dst)
{
	char buf[4096];
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ok = in >= 0 && out >= 0;
	ssize_t n;

	while (ok && (n = read(in, buf, sizeof(buf))) > 0)
		ok = write(out, buf, n) == n;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out))
		ok = 0;
	return ok ? 0 : -1;
}

/* @src into @dst by renaming a new file over it (as deploy tools do). */
static int put(const char *src, const char *dst)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	return copy_over(src, tmp) || rename(tmp, dst) ? -1 : 0;
}

/* A symlink @link to @target made anew and renamed over it (mv -T). */
static int relink(const char *target, const char *link)
{
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.tmp", link);
	unlink(tmp);
	return symlink(target, tmp) || rename(tmp, link) ? -1 : 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int rm_rf(const char *path)
{
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A version of the TLS files in new directory @dir; @revoke picks the CRL. */
static int version(const char *dir, const char *cert, const char *key, const char *ca,
		   int revoke)
{
	char p[600];

	if (mkdir(dir, 0700))
		return -1;
	snprintf(p, sizeof(p), "%s/%s", dir, cert);
	if (copy_over(pki("server.pem"), p))
		return -1;
	snprintf(p, sizeof(p), "%s/%s", dir, key);
	if (copy_over(pki("server.key"), p))
		return -1;
	snprintf(p, sizeof(p), "%s/%s", dir, ca);
	if (copy_over(pki("ca.pem"), p))
		return -1;
	snprintf(p, sizeof(p), "%s/clients.crl", dir);
	return copy_over(pki(revoke ? "crl.pem" : "crl-empty.pem"), p);
}

static int plain(const char *dir, int revoke)
{
	return version(dir, "server.pem", "server.key", "ca.pem", revoke);
}

static int count(FIXTURE_DATA(wl) *self, const char *needle)
{
	return proc_log_count(&self->d.proc, needle);
}

/* kmtlsd.conf in @confdir for files in @dir (relative to BASE), started. */
static int start_in(FIXTURE_DATA(wl) *self, const char *confdir, const char *dir,
		    const char *cert, const char *key, const char *ca, const char *crl)
{
	char conf[600], *args[] = { "-c", conf, NULL };
	int port = free_port();
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/kmtlsd.conf", confdir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[kmtlsd]\nwatch-files = yes\n\n[listener web]\nlisten = 127.0.0.1:%d\n"
		"backend = 127.0.0.1:%d\ncert = %s/%s/%s\nkey = %s/%s/%s\nca = %s/%s/%s\n"
		"crl = %s/%s/%s\n", port, self->be.port, self->base, dir, cert, self->base, dir,
		key, self->base, dir, ca, self->base, dir, crl);
	if (fclose(f) || kmtlsd_run(&self->d, port, (const char *const *)args) ||
	    kmtlsd_wait_log(&self->d, "watch-files: watching", 2000))
		return -1;
	/* The watcher works under the filter (its system calls are allowed). */
	return count(self, "sandbox: seccomp allowlist of") == 1 ? 0 : -1;
}

static int start(FIXTURE_DATA(wl) *self, const char *dir, const char *cert,
		 const char *key, const char *ca, const char *crl)
{
	return start_in(self, self->base, dir, cert, key, ca, crl);
}

/*
 * After a change: exactly one more reload, and none after it for the
 * settle time; no reload failed. 0, or -1 (the counts say which).
 */
static int one_reload(FIXTURE_DATA(wl) *self)
{
	int ms;

	self->reloads++;
	for (ms = 0; ms < 8000 && count(self, RELOADED) < self->reloads; ms += 20)
		usleep(20000);
	usleep(SETTLE_MS * 1000);
	return count(self, RELOADED) == self->reloads && count(self, DECIDED) == self->reloads &&
	       !count(self, FAILED) ? 0 : -1;
}

/* After something that changes nothing kmtlsd uses: no reload at all. */
static int no_reload(FIXTURE_DATA(wl) *self)
{
	usleep((SETTLE_MS + 300) * 1000);
	return count(self, RELOADED) == self->reloads && count(self, DECIDED) == self->reloads &&
	       !count(self, FAILED) ? 0 : -1;
}

static void expect_reloads(struct __test_metadata *_metadata, FIXTURE_DATA(wl) *self, int n)
{
	EXPECT_EQ(n, count(self, RELOADED)) TH_LOG("reload decisions: %d, failed: %d",
						   count(self, DECIDED), count(self, FAILED));
}

/* 1 when bad/revoked gets through (the empty CRL applies), 0 when refused. */
static int revoked_in(FIXTURE_DATA(wl) *self)
{
	return client_ping(self->d.port, pki("bad/revoked.pem"), pki("bad/revoked.key"));
}

/* ---- files ------------------------------------------------------------- */

TEST_F(wl, file_copied_over)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, start(self, "tls", "server.pem", "server.key", "ca.pem", "clients.crl"));
	ASSERT_EQ(0, copy_over(pki("crl.pem"), at(self, "tls/clients.crl")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	ASSERT_EQ(0, copy_over(pki("server.pem"), at(self, "tls/server.pem")));
	EXPECT_EQ(0, one_reload(self));
	expect_reloads(_metadata, self, 2);
}

TEST_F(wl, file_renamed_into_place)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, start(self, "tls", "server.pem", "server.key", "ca.pem", "clients.crl"));
	ASSERT_EQ(0, put(pki("crl.pem"), at(self, "tls/clients.crl")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	expect_reloads(_metadata, self, 1);
}

/* Gone for longer than the quiet period: waited for, not reloaded without. */
TEST_F(wl, file_deleted_then_recreated)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, start(self, "tls", "server.pem", "server.key", "ca.pem", "clients.crl"));
	ASSERT_EQ(0, unlink(at(self, "tls/clients.crl")));
	EXPECT_EQ(0, no_reload(self));
	ASSERT_EQ(0, copy_over(pki("crl.pem"), at(self, "tls/clients.crl")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	expect_reloads(_metadata, self, 1);
}

/* ---- directories --------------------------------------------------------- */

TEST_F_TIMEOUT(wl, directory_renamed_over, 60)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, start(self, "tls", "server.pem", "server.key", "ca.pem", "clients.crl"));
	ASSERT_EQ(1, revoked_in(self));
	/* mv tls tls.old; mv tls.new tls */
	ASSERT_EQ(0, plain(at(self, "tls.new"), 1));
	ASSERT_EQ(0, rename(at(self, "tls"), at(self, "tls.old")));
	ASSERT_EQ(0, rename(at(self, "tls.new"), at(self, "tls")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	/* The old directory is nothing kmtlsd uses any more. */
	ASSERT_EQ(0, put(pki("crl-empty.pem"), at(self, "tls.old/clients.crl")));
	EXPECT_EQ(0, no_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	/* The new one is watched. */
	ASSERT_EQ(0, put(pki("crl-empty.pem"), at(self, "tls/clients.crl")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(1, revoked_in(self));
	expect_reloads(_metadata, self, 2);
}

TEST_F_TIMEOUT(wl, directory_removed_and_made_again, 60)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, start(self, "tls", "server.pem", "server.key", "ca.pem", "clients.crl"));
	/* rm -rf tls; mkdir tls; cp ... tls/ */
	ASSERT_EQ(0, rm_rf(at(self, "tls")));
	ASSERT_EQ(0, plain(at(self, "tls"), 1));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(0, revoked_in(self));
	ASSERT_EQ(0, copy_over(pki("crl-empty.pem"), at(self, "tls/clients.crl")));
	EXPECT_EQ(0, one_reload(self));
	EXPECT_EQ(1, revoked_in(self));
	expect_reloads(_metadata, self, 2);
}

/* current -> relN, switched with mv -T, three times; then the old one edited. */
TEST_F_TIMEOUT(wl, symlinked_directory_switched, 60)
{
	int i;

	ASSERT_EQ(0, plain(at(self, "rel0"), 0));
	ASSERT_EQ(0, symlink("rel0", at(self, "current")));
	ASSERT_EQ(0, start(self, "current", "server.pem", "server.key", "ca.pem", "clients.crl"));
	for (i = 1; i <= 3; i++) {
		ASSERT_EQ(0, plain(at(self, "rel%d", i), i % 2));
		ASSERT_EQ(0, relink(at(self, "rel%d", i) + strlen(self->base) + 1,
				    at(self, "current")));
		EXPECT_EQ(0, one_reload(self)) TH_LOG("switch %d", i);
		EXPECT_EQ(i % 2 ? 0 : 1, revoked_in(self));
	}
	ASSERT_EQ(0, put(pki("crl-empty.pem"), at(self, "rel2/clients.crl")));
	EXPECT_EQ(0, no_reload(self));
	expect_reloads(_metadata, self, 3);
}

/* Kubernetes: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>. */
TEST_F_TIMEOUT(wl, kubernetes_data_switched, 60)
{
	static const char *const names[] = { "tls.crt", "tls.key", "ca.crt", "clients.crl" };
	char target[64];
	int i, k;

	ASSERT_EQ(0, mkdir(at(self, "tls"), 0700));
	ASSERT_EQ(0, version(at(self, "tls/..v0"), "tls.crt", "tls.key", "ca.crt", 0));
	ASSERT_EQ(0, symlink("..v0", at(self, "tls/..data")));
	for (k = 0; k < 4; k++) {
		snprintf(target, sizeof(target), "..data/%s", names[k]);
		ASSERT_EQ(0, symlink(target, at(self, "tls/%s", names[k])));
	}
	ASSERT_EQ(0, start(self, "tls", "tls.crt", "tls.key", "ca.crt", "clients.crl"));
	for (i = 1; i <= 2; i++) {
		ASSERT_EQ(0, version(at(self, "tls/..v%d", i), "tls.crt", "tls.key", "ca.crt",
				     i % 2));
		snprintf(target, sizeof(target), "..v%d", i);
		ASSERT_EQ(0, relink(target, at(self, "tls/..data")));
		ASSERT_EQ(0, rm_rf(at(self, "tls/..v%d", i - 1)));
		EXPECT_EQ(0, one_reload(self)) TH_LOG("switch %d", i);
		EXPECT_EQ(i % 2 ? 0 : 1, revoked_in(self));
	}
	expect_reloads(_metadata, self, 2);
}

/* certbot: live/ex/fullchain.pem -> ../../archive/ex/fullchainN.pem. */
TEST_F_TIMEOUT(wl, certbot_renewed, 60)
{
	char target[128];
	int i;

	ASSERT_EQ(0, mkdir(at(self, "le"), 0700));
	ASSERT_EQ(0, mkdir(at(self, "le/archive"), 0700));
	ASSERT_EQ(0, mkdir(at(self, "le/live"), 0700));
	ASSERT_EQ(0, version(at(self, "le/archive/ex"), "fullchain1.pem", "privkey1.pem", "ca.pem",
			     0));
	ASSERT_EQ(0, mkdir(at(self, "le/live/ex"), 0700));
	ASSERT_EQ(0, symlink("../../archive/ex/fullchain1.pem",
			     at(self, "le/live/ex/fullchain.pem")));
	ASSERT_EQ(0, symlink("../../archive/ex/privkey1.pem", at(self, "le/live/ex/privkey.pem")));
	ASSERT_EQ(0, symlink("../../archive/ex/ca.pem", at(self, "le/live/ex/chain.pem")));
	ASSERT_EQ(0, symlink("../../archive/ex/clients.crl", at(self, "le/live/ex/clients.crl")));
	ASSERT_EQ(0, start(self, "le/live/ex", "fullchain.pem", "privkey.pem", "chain.pem",
			   "clients.crl"));
	for (i = 2; i <= 3; i++) {
		ASSERT_EQ(0, copy_over(pki("server.pem"),
				       at(self, "le/archive/ex/fullchain%d.pem", i)));
		ASSERT_EQ(0, copy_over(pki("server.key"),
				       at(self, "le/archive/ex/privkey%d.pem", i)));
		snprintf(target, sizeof(target), "../../archive/ex/fullchain%d.pem", i);
		ASSERT_EQ(0, relink(target, at(self, "le/live/ex/fullchain.pem")));
		snprintf(target, sizeof(target), "../../archive/ex/privkey%d.pem", i);
		ASSERT_EQ(0, relink(target, at(self, "le/live/ex/privkey.pem")));
		EXPECT_EQ(0, one_reload(self)) TH_LOG("renewal %d", i);
	}
	expect_reloads(_metadata, self, 2);
}

/*
 * A CA directory: a file added, one written over, the directory replaced
 * (then a file added to the old one changes nothing).
 */
TEST_F_TIMEOUT(wl, ca_directory_changed, 60)
{
	ASSERT_EQ(0, plain(at(self, "tls"), 0));
	ASSERT_EQ(0, mkdir(at(self, "ca.d"), 0700));
	ASSERT_EQ(0, copy_over(pki("ca.pem"), at(self, "ca.d/ca.pem")));
	ASSERT_EQ(0, start(self, ".", "tls/server.pem", "tls/server.key", "ca.d",
			   "tls/clients.crl"));
	ASSERT_EQ(0, put(pki("ca.pem"), at(self, "ca.d/again.pem")));
	EXPECT_EQ(0, one_reload(self));
	ASSERT_EQ(0, copy_over(pki("ca.pem"), at(self, "ca.d/ca.pem")));
	EXPECT_EQ(0, one_reload(self));
	ASSERT_EQ(0, mkdir(at(self, "ca.new"), 0700));
	ASSERT_EQ(0, copy_over(pki("ca.pem"), at(self, "ca.new/ca.pem")));
	ASSERT_EQ(0, rename(at(self, "ca.d"), at(self, "ca.old")));
	ASSERT_EQ(0, rename(at(self, "ca.new"), at(self, "ca.d")));
	/* Landlock gave kmtlsd the CA directory, not what holds it (that is only read). */
	if (count(self, "no Landlock")) {
		EXPECT_EQ(0, one_reload(self));
	} else {
		EXPECT_EQ(0, kmtlsd_wait_log(&self->d, "ca.d cannot be read", 5000));
		EXPECT_EQ(0, no_reload(self));
	}
	ASSERT_EQ(0, put(pki("ca.pem"), at(self, "ca.old/stale.pem")));
	EXPECT_EQ(0, no_reload(self));
	EXPECT_EQ(1, client_ping(self->d.port, pki("client.pem"), pki("client.key")));
	expect_reloads(_metadata, self, self->reloads);
}

/* Around the files, but nothing that changes what their paths name. */
TEST_F(wl, neighbours_change_nothing)
{
	ASSERT_EQ(0, plain(at(self, "rel0"), 0));
	ASSERT_EQ(0, symlink("rel0", at(self, "current")));
	ASSERT_EQ(0, start(self, "current", "server.pem", "server.key", "ca.pem", "clients.crl"));
	ASSERT_EQ(0, plain(at(self, "rel1"), 1));
	ASSERT_EQ(0, symlink("rel1", at(self, "next")));
	ASSERT_EQ(0, relink("rel0", at(self, "previous")));
	ASSERT_EQ(0, rename(at(self, "rel1"), at(self, "rel1.staged")));
	ASSERT_EQ(0, put(pki("crl.pem"), at(self, "rel0/clients.crl.bak")));
	ASSERT_EQ(0, mkdir(at(self, "rel0/sub"), 0700));
	ASSERT_EQ(0, put(pki("crl.pem"), at(self, "notes.txt")));
	EXPECT_EQ(0, no_reload(self));
	expect_reloads(_metadata, self, 0);
}

/*
 * The configuration elsewhere: Landlock lets kmtlsd read only below the
 * directories it started with, so a new release directory cannot be read.
 * kmtlsd says so and waits rather than fail a reload.
 */
TEST_F(wl, unreadable_new_directory_is_waited_for)
{
	ASSERT_EQ(0, mkdir(at(self, "etc"), 0700));
	ASSERT_EQ(0, mkdir(at(self, "srv"), 0700));
	ASSERT_EQ(0, plain(at(self, "srv/rel0"), 0));
	ASSERT_EQ(0, symlink("rel0", at(self, "srv/current")));
	ASSERT_EQ(0, start_in(self, at(self, "etc"), "srv/current", "server.pem", "server.key",
			      "ca.pem", "clients.crl"));
	if (count(self, "no Landlock"))
		SKIP(return, "the kernel has no Landlock");
	ASSERT_EQ(0, plain(at(self, "srv/rel1"), 1));
	ASSERT_EQ(0, relink("rel1", at(self, "srv/current")));
	ASSERT_EQ(0, kmtlsd_wait_log(&self->d, "srv/current/server.pem cannot be read", 5000));
	EXPECT_EQ(0, no_reload(self));
	EXPECT_EQ(1, count(self, "cannot be read"));
	EXPECT_EQ(1, revoked_in(self));
}

TEST_HARNESS_MAIN
