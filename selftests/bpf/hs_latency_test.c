// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hs_latency end to end: real mTLS handshakes through kmtlsd, measured by
 * the BPF programs that `kmtlsctl latency attach` puts on a cgroup made for
 * the test, read back from the pinned maps, the ring buffer and kmtlsctl.
 *
 * Two variants: "usdt" attaches kmtlsd's kmtls:handshake_done probe too,
 * "ktls" only the sockops and setsockopt programs. On a kernel with kTLS
 * (the guest) both count every handshake as ok (by USDT first, or by the
 * key install); on a kernel without it (the host) only the USDT path sees
 * a handshake complete, and without it each connection counts as closed
 * when it ends, which the ktls variant checks there.
 *
 * The clients wait PRE_HELLO_MS between connect() and their ClientHello
 * and get an echo through kmtlsd and the backend after the handshake, so
 * each handshake's latency lies in [PRE_HELLO_MS, connect() .. echo].
 *
 * Isolation: a private mount namespace with its own bpffs for the pins
 * ($KMTLS_BPF_PIN_DIR), a cgroup of its own (kmtlsd, the backend and the
 * clients run in it; kmtlsd instances of other tests on the host do not),
 * loopback only. The teardown detaches, stops the daemons and removes the
 * cgroup.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <linux/magic.h>

#include "hs_latency.h"
#include "../lib/backend.h"
#include "../lib/kmtlsd.h"
#include "../lib/tls_pair.h"
#include "kselftest_harness.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define N_HANDSHAKES	20
#define PRE_HELLO_MS	20
#define QUEUE_MS	300		/* kmtlsd stopped this long in accept_queue */
#define KMTLSD_TIMEOUT	"3s"		/* kmtlsd's handshake timeout in the tests */

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- processes ----------------------------------------------------------- */

/* Run argv with stdout into @buf (NUL-terminated); the exit status or -1. */
static int run_capture(char *const argv[], char *buf, size_t len)
{
	int p[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (len && (n = read(p[0], buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	if (len)
		buf[got] = 0;
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* kmtlsctl ARGS... (NULL-terminated); output in @buf, exit status back. */
static int ctl(char *buf, size_t len, ...)
{
	char *argv[24];
	va_list ap;
	int n = 0;

	argv[n++] = (char *)out_path("bin/kmtlsctl");
	va_start(ap, len);
	while (n < 23 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	return run_capture(argv, buf, len);
}

/* ---- cgroup and bpffs ---------------------------------------------------- */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static int is_fs(const char *path, long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == magic;
}

/* The cgroup2 mount (first in /proc/self/mounts), else one mounted here. */
static int cgroup2_root(char *root, size_t len)
{
	char line[1024], dev[128], dir[512], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %511s %63s", dev, dir, type) == 3 &&
		    !strcmp(type, "cgroup2") && is_fs(dir, CGROUP2_SUPER_MAGIC))
			found = snprintf(root, len, "%s", dir) < (int)len;
	if (f)
		fclose(f);
	if (found)
		return 0;
	/* None: mount one in this test's private mount namespace. */
	snprintf(root, len, "%s/cgroup2", test_tmpdir());
	mkdir(root, 0755);
	return mount("cgroup2", root, "cgroup2", 0, NULL) ? -errno : 0;
}

/*
 * Cgroups a killed run of this test left behind (its teardown never ran):
 * empty ones whose process is gone are removed.
 */
static void sweep_stale_cgroups(const char *root)
{
	char path[1024];
	struct dirent *de;
	DIR *d = opendir(root);
	int pid;

	while (d && (de = readdir(d))) {
		if (sscanf(de->d_name, "kmtls-hsl-%d", &pid) != 1 || pid <= 0 ||
		    !kill(pid, 0) || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		rmdir(path);
	}
	if (d)
		closedir(d);
}

/* Our cgroup v2 path as an absolute directory under @root. */
static int cgroup_self(const char *root, char *path, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "re");
	int ret = -ENOENT;

	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		ret = snprintf(path, len, "%s%s", root, strcmp(line + 3, "/") ? line + 3 : "") <
		      (int)len ? 0 : -ENAMETOOLONG;
		break;
	}
	if (f)
		fclose(f);
	return ret;
}

/* ---- reading the maps ----------------------------------------------------- */

struct counts {
	long n[HS_OUTCOME_MAX];
	__u64 sum_ns;		/* over all outcomes */
};

static int pinned(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", getenv("KMTLS_BPF_PIN_DIR"), name);
	return bpf_obj_get(path);
}

/* The "ok" row of one side of @port in hs_hist_rows, or -1. */
static int hist_row(int port, int active)
{
	int fd = pinned(HS_MAP_ROWKEY), row = -1;
	__u32 r, rk;

	for (r = 0; fd >= 0 && row < 0 && r < HS_HIST_ROWS; r++)
		if (!bpf_map_lookup_elem(fd, &r, &rk) && rk == hs_rowkey((__u16)port, active))
			row = (int)r;
	if (fd >= 0)
		close(fd);
	return row;
}

/* hs_hist (and the ok row) of one side of @port, summed over the CPUs per outcome. */
static int hist_counts_side(int port, int active, struct counts *c)
{
	struct hs_hist_key k = { .port = (__u16)port, .active = (__u8)active };
	int ncpu = libbpf_num_possible_cpus(), fd = pinned(HS_MAP_HIST), o, i;
	int rows = pinned(HS_MAP_ROWS), row = hist_row(port, active);
	struct hs_hist *h;

	memset(c, 0, sizeof(*c));
	if (fd < 0 || rows < 0 || ncpu < 1) {
		if (fd >= 0)
			close(fd);
		if (rows >= 0)
			close(rows);
		return -1;
	}
	h = calloc((size_t)ncpu, sizeof(*h));
	for (o = 0; h && o <= HS_OUTCOME_MAX; o++) {
		if (o < HS_OUTCOME_MAX) {
			k.outcome = (__u8)o;
			if (bpf_map_lookup_elem(fd, &k, h))
				continue;
		} else if (row < 0 || bpf_map_lookup_elem(rows, &row, h)) {
			continue;
		}
		for (i = 0; i < ncpu; i++) {
			c->n[o < HS_OUTCOME_MAX ? o : HS_OK] += (long)h[i].count;
			c->sum_ns += h[i].sum_ns;
		}
	}
	free(h);
	close(fd);
	close(rows);
	return 0;
}

/* The server side of @port. */
static int hist_counts(int port, struct counts *c)
{
	return hist_counts_side(port, 0, c);
}

static long total(const struct counts *c)
{
	long t = 0;
	int o;

	for (o = 0; o < HS_OUTCOME_MAX; o++)
		t += c->n[o];
	return t;
}

/* Poll until @port has @want counts in all (up to @ms); the last reading. */
static void wait_counts(int port, long want, int ms, struct counts *c)
{
	int i;

	for (i = 0; i < ms / 10; i++) {
		hist_counts(port, c);
		if (total(c) >= want)
			return;
		sleep_ms(10);
	}
}

static int hs_stats_sum(struct hs_stats *s)
{
	int ncpu = libbpf_num_possible_cpus(), fd = pinned(HS_MAP_STATS), i, j;
	struct hs_pcpu v[ncpu > 0 ? ncpu : 1];
	__u32 zero = 0;

	memset(s, 0, sizeof(*s));
	if (fd < 0 || ncpu < 1 || bpf_map_lookup_elem(fd, &zero, v)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (i = 0; i < ncpu; i++)
		for (j = 0; j < (int)(sizeof(*s) / sizeof(__u64)); j++)
			((__u64 *)s)[j] += ((__u64 *)&v[i].stats)[j];
	return 0;
}

/* Slots of hs_conns with a handshake in progress (key set, not claimed). */
static int pending_entries(void)
{
	size_t len = (size_t)HS_CONNS * sizeof(struct hs_track), i;
	int fd = pinned(HS_MAP_CONNS), n = 0;
	const struct hs_track *t;

	if (fd < 0)
		return -1;
	t = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (t == MAP_FAILED)
		return -1;
	for (i = 0; i < HS_CONNS; i++)
		n += t[i].key && !(t[i].key & HS_K_CLAIMED);
	munmap((void *)t, len);
	return n;
}

struct evs {
	struct hs_event e[256];
	int n;
};

static int ev_cb(void *ctx, void *data, size_t len)
{
	struct evs *v = ctx;

	if (v->n < 256 && !hs_event_read(data, len, &v->e[v->n]))
		v->n++;
	return 0;
}

/* Everything in the ring buffer now. */
static int read_events(struct evs *v)
{
	int fd = pinned(HS_MAP_EVENTS), ret;
	struct ring_buffer *rb;

	v->n = 0;
	if (fd < 0)
		return -1;
	rb = ring_buffer__new(fd, ev_cb, v, NULL);
	ret = rb ? ring_buffer__consume(rb) : -1;
	ring_buffer__free(rb);
	close(fd);
	return ret < 0 ? -1 : 0;
}

static const struct hs_event *event_of(const struct evs *v, int client_port)
{
	int i;

	for (i = 0; i < v->n; i++)
		if (v->e[i].rport == client_port && (v->e[i].flags & HS_EV_PASSIVE))
			return &v->e[i];
	return NULL;
}

/* An event of a kmtlsd connection over IPv4 loopback: its process and addresses. */
static void expect_kmtlsd_lo4(struct __test_metadata *_metadata, const struct hs_event *e,
			      pid_t pid, int port)
{
	static const __u8 lo[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };

	EXPECT_EQ((__u32)pid, e->pid);
	EXPECT_STREQ("kmtlsd", e->comm);
	EXPECT_EQ(port, e->lport);
	EXPECT_EQ(AF_INET, e->family);
	EXPECT_EQ(0, memcmp(lo, e->laddr, 16));
	EXPECT_EQ(0, memcmp(lo, e->raddr, 16));
}

static int events_of(const struct evs *v, int client_port)
{
	int i, n = 0;

	for (i = 0; i < v->n; i++)
		n += v->e[i].rport == client_port;
	return n;
}

/* ---- clients -------------------------------------------------------------- */

struct client {
	int fd, port;		/* port: the client's local port */
	WOLFSSL *ssl;
	__u64 t0, t_conn, t1;	/* before connect(), after it, after the echo */
};

static int local_port(int fd)
{
	struct sockaddr_in6 a;	/* sin_port and sin6_port share their place */
	socklen_t l = sizeof(a);

	return getsockname(fd, (struct sockaddr *)&a, &l) ? -1 : ntohs(a.sin6_port);
}

static void client_close(struct client *c)
{
	if (c->ssl)
		wolfSSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

/* A blocking TCP connection to 127.0.0.1 or ::1, or -1. */
static int connect_lo(int family, int port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, family == AF_INET6 ? (struct sockaddr *)&a6 :
			       (struct sockaddr *)&a4,
			       family == AF_INET6 ? sizeof(a6) : sizeof(a4))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* connect() over IPv4 or IPv6; no byte sent yet. */
static int client_connect_af(struct client *c, int family, int port)
{
	memset(c, 0, sizeof(*c));
	c->t0 = now_ns();
	c->fd = connect_lo(family, port);
	if (c->fd < 0)
		return -1;
	c->t_conn = now_ns();
	c->port = local_port(c->fd);
	return 0;
}

static int client_connect(struct client *c, int port)
{
	return client_connect_af(c, AF_INET, port);
}

/* The handshake on a connected client, then one echo through kmtlsd. */
static int client_handshake(struct client *c, WOLFSSL_CTX *ctx, char *err, size_t errlen)
{
	char buf[4];
	int ret, got = 0;

	c->ssl = wolfSSL_new(ctx);
	if (!c->ssl)
		return snprintf(err, errlen, "wolfSSL_new failed"), -1;
	wolfSSL_set_fd(c->ssl, c->fd);
	wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
	ret = wolfSSL_connect(c->ssl);
	if (ret != WOLFSSL_SUCCESS) {
		ret = wolfSSL_get_error(c->ssl, ret);
		return snprintf(err, errlen, "handshake: %s (%d)",
				wolfSSL_ERR_reason_error_string(ret), ret), -1;
	}
	if (wolfSSL_write(c->ssl, "ping", 4) != 4)
		return snprintf(err, errlen, "write failed"), -1;
	while (got < 4) {
		ret = wolfSSL_read(c->ssl, buf + got, 4 - got);
		if (ret <= 0)
			return snprintf(err, errlen, "no echo (%d)",
					wolfSSL_get_error(c->ssl, ret)), -1;
		got += ret;
	}
	c->t1 = now_ns();
	return memcmp(buf, "ping", 4) ? (snprintf(err, errlen, "bad echo"), -1) : 0;
}

/* ---- fixture --------------------------------------------------------------- */

FIXTURE(hsl) {
	struct backend be;
	struct kmtlsd d;
	struct proc d6;		/* a kmtlsd on [::1], started by the ipv6 test */
	struct proc rd;		/* kmtlsctl latency --events, started by a test */
	WOLFSSL_CTX *ctx;
	char cg_root[512], cg[600], cg_home[600], bpffs[512];
	int in_cg, bpffs_mounted, attached;
	int raw_port, lsock;	/* a second watched port, for plain sockets */
	int ktls;		/* the kernel has kTLS */
};

FIXTURE_VARIANT(hsl) {
	int usdt;
};

FIXTURE_VARIANT_ADD(hsl, usdt) { .usdt = 1 };
FIXTURE_VARIANT_ADD(hsl, ktls) { .usdt = 0 };

/* Undo whatever setup got to; safe to call twice. */
static void hsl_cleanup(FIXTURE_DATA(hsl) *self)
{
	char out[4096], procs[700];
	int i;

	if (self->attached)
		ctl(out, sizeof(out), "latency", "detach", NULL);
	self->attached = 0;
	kmtlsd_stop(&self->d);
	if (self->d6.pid > 0)
		proc_stop(&self->d6, 10000);
	if (self->rd.pid > 0)
		proc_stop(&self->rd, 5000);
	self->rd.pid = 0;
	backend_stop(&self->be);
	self->d.proc.pid = self->be.proc.pid = self->d6.pid = 0;
	if (self->lsock >= 0)
		close(self->lsock);
	self->lsock = -1;
	if (self->ctx)
		wolfSSL_CTX_free(self->ctx);
	self->ctx = NULL;
	if (self->in_cg) {
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", self->cg_home);
		write_file(procs, "0");
		/* Exited children may take a moment to leave the cgroup. */
		for (i = 0; i < 100 && rmdir(self->cg) && errno == EBUSY; i++)
			sleep_ms(20);
	}
	self->in_cg = 0;
	if (self->bpffs_mounted)
		umount(self->bpffs);
	self->bpffs_mounted = 0;
}

/* Everything but the attach: NULL, or what failed. */
static const char *hsl_prepare(FIXTURE_DATA(hsl) *self)
{
	static char why[256];
	const char *be_args[] = { "--mode", "echo", NULL };
	const char *d_args[] = { "--handshake-timeout", KMTLSD_TIMEOUT, NULL };
	struct kmtls_tls_conf conf = {
		.cert = pki("client.pem"), .key = pki("client.key"), .ca = pki("ca.pem"),
		.tls_min = 0x0304,
	};
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	char procs[700], pins[600];

	self->lsock = -1;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return "cannot make a private mount namespace";
	snprintf(self->bpffs, sizeof(self->bpffs), "%s/bpffs", test_tmpdir());
	mkdir(self->bpffs, 0700);
	if (mount("bpf", self->bpffs, "bpf", 0, "mode=0700"))
		return "cannot mount bpffs";
	self->bpffs_mounted = 1;
	snprintf(pins, sizeof(pins), "%s/kmtls", self->bpffs);
	setenv("KMTLS_BPF_PIN_DIR", pins, 1);

	if (cgroup2_root(self->cg_root, sizeof(self->cg_root)))
		return "no cgroup2 hierarchy";
	if (cgroup_self(self->cg_root, self->cg_home, sizeof(self->cg_home)))
		return "cannot find our cgroup v2 path";
	sweep_stale_cgroups(self->cg_root);
	snprintf(self->cg, sizeof(self->cg), "%s/kmtls-hsl-%d", self->cg_root, getpid());
	if (mkdir(self->cg, 0755))
		return "cannot create a cgroup";
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", self->cg);
	if (write_file(procs, "0")) {
		rmdir(self->cg);
		return "cannot move into the test cgroup";
	}
	self->in_cg = 1;

	self->ktls = tls_stat("TlsCurrTxSw") >= 0;
	self->ctx = kmtls_tls_ctx_new(&conf, why, sizeof(why));
	if (!self->ctx)
		return why;
	if (backend_start(&self->be, be_args))
		return "backend did not start";
	if (kmtlsd_start(&self->d, self->be.port, d_args))
		return "kmtlsd did not start";
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	self->lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (self->lsock < 0 || bind(self->lsock, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(self->lsock, 16) || getsockname(self->lsock, (struct sockaddr *)&a, &al))
		return "cannot listen on loopback";
	self->raw_port = ntohs(a.sin_port);
	return NULL;
}

static int hsl_attach(FIXTURE_DATA(hsl) *self, int usdt, char *out, size_t len)
{
	char ports[32];
	int ret;

	snprintf(ports, sizeof(ports), "%d,%d", self->d.port, self->raw_port);
	if (usdt)
		ret = ctl(out, len, "--json", "latency", "attach", "--cgroup", self->cg,
			  "--ports", ports, "--usdt", out_path("bin/kmtlsd"), NULL);
	else
		ret = ctl(out, len, "--json", "latency", "attach", "--cgroup", self->cg,
			  "--ports", ports, NULL);
	self->attached = !ret;
	return ret;
}

FIXTURE_SETUP(hsl)
{
	const char *why;
	char out[4096];

	signal(SIGPIPE, SIG_IGN);
	if (geteuid())
		SKIP(return, "needs root (BPF, cgroups, mounts)");
	why = hsl_prepare(self);
	if (why) {
		hsl_cleanup(self);
		ASSERT_EQ(NULL, why) TH_LOG("setup: %s", why);
	}
	if (hsl_attach(self, variant->usdt, out, sizeof(out))) {
		hsl_cleanup(self);
		ASSERT_TRUE(0) TH_LOG("kmtlsctl latency attach: %s", out);
	}
}

FIXTURE_TEARDOWN(hsl)
{
	if (!__test_passed(_metadata))
		kmtlsd_dump_log(&self->d);
	hsl_cleanup(self);
}

/* Whether a completed handshake is seen by this variant on this kernel. */
static int sees_success(const FIXTURE_VARIANT(hsl) *variant, FIXTURE_DATA(hsl) *self)
{
	return variant->usdt || self->ktls;
}

/* ---- tests ------------------------------------------------------------------ */

/*
 * setsockopt(SOL_TLS, TLS_TX) on an accepted plain TCP connection. The
 * cgroup hook runs before the protocol handler, so it fires on every
 * kernel, also where the call then fails: without kTLS, TCP_ULP "tls"
 * fails with ENOENT (no module) and SOL_TLS with ENOPROTOOPT (no ULP).
 * That is why the USDT path is what measures kmtlsd there: kmtlsd (like
 * every TLS library) stops after the failed TCP_ULP and never reaches
 * SOL_TLS.
 */
TEST_F_TIMEOUT(hsl, setsockopt_hook, 120)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	int cfd, sfd, ulp, ulp_err, tx, tx_err;
	const struct hs_event *e;
	struct counts n;
	struct evs ev;
	char comm[16];

	ASSERT_EQ(0, tcp_connect_port(self->raw_port, &cfd));
	sfd = accept(self->lsock, NULL, NULL);
	ASSERT_LE(0, sfd);

	errno = 0;
	ulp = setsockopt(sfd, SOL_TCP, TCP_ULP, "tls", 3);
	ulp_err = errno;
	errno = 0;
	tx = setsockopt(sfd, SOL_TLS, TLS_TX, &ci, sizeof(ci));
	tx_err = errno;
	/* The second key install of the connection must not count again. */
	setsockopt(sfd, SOL_TLS, TLS_RX, &ci, sizeof(ci));
	TH_LOG("kernel %s kTLS: TCP_ULP \"tls\" -> %s, SOL_TLS TLS_TX -> %s",
	       self->ktls ? "with" : "without", ulp ? strerror(ulp_err) : "ok",
	       tx ? strerror(tx_err) : "ok");
	if (self->ktls) {
		EXPECT_EQ(0, ulp);
		EXPECT_EQ(0, tx);
	} else {
		EXPECT_EQ(-1, ulp);
		EXPECT_EQ(ENOENT, ulp_err);
		EXPECT_EQ(-1, tx);
		EXPECT_EQ(ENOPROTOOPT, tx_err);
	}

	/* Counted once (TX, not RX again), as ok, by the key install. */
	wait_counts(self->raw_port, 1, 2000, &n);
	EXPECT_EQ(1, n.n[HS_OK]);
	EXPECT_EQ(1, total(&n));
	ASSERT_EQ(0, read_events(&ev));
	e = event_of(&ev, local_port(cfd));
	ASSERT_NE(NULL, e);
	EXPECT_EQ(HS_SRC_KTLS, e->source);
	EXPECT_EQ(HS_OK, e->outcome);
	EXPECT_EQ((__u32)getpid(), e->pid);
	EXPECT_EQ(self->raw_port, e->lport);
	memset(comm, 0, sizeof(comm));
	memcpy(comm, e->comm, sizeof(e->comm) < 15 ? sizeof(e->comm) : 15);
	EXPECT_EQ(0, strncmp(comm, program_invocation_short_name, 15));

	/* Closing it later counts nothing more. */
	close(sfd);
	close(cfd);
	sleep_ms(100);
	hist_counts(self->raw_port, &n);
	EXPECT_EQ(1, total(&n));
}

static long jpath(json_object *o, const char *a, const char *b, const char *c);

/*
 * Successful handshakes count in one of HS_HIST_ROWS per-CPU array rows,
 * one per (port, side), taken on first use; the ports after those count
 * in the hash like everything else. Every port counts exactly once either
 * way, and kmtlsctl shows them all.
 */
TEST_F_TIMEOUT(hsl, hist_rows, 120)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	enum { NPORTS = HS_HIST_ROWS + 3 };
	int ls[NPORTS], port[NPORTS], i, j, cfd, sfd, rows = 0, ok = 0;
	char out[65536];
	json_object *o, *p, *arr;
	struct counts n;

	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "attach", "--cgroup", self->cg,
			 "--ports", "all", NULL)) TH_LOG("%s", out);
	for (i = 0; i < NPORTS; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t al = sizeof(a);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ls[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, ls[i]);
		ASSERT_EQ(0, bind(ls[i], (struct sockaddr *)&a, sizeof(a)));
		ASSERT_EQ(0, listen(ls[i], 4));
		ASSERT_EQ(0, getsockname(ls[i], (struct sockaddr *)&a, &al));
		port[i] = ntohs(a.sin_port);
		ASSERT_EQ(0, tcp_connect_port(port[i], &cfd));
		sfd = accept(ls[i], NULL, NULL);
		ASSERT_LE(0, sfd);
		setsockopt(sfd, SOL_TLS, TLS_TX, &ci, sizeof(ci));
		close(sfd);
		close(cfd);
		close(ls[i]);
	}
	for (i = 0; i < NPORTS; i++) {
		wait_counts(port[i], 1, 2000, &n);
		EXPECT_EQ(1, n.n[HS_OK]) TH_LOG("port %d", port[i]);
		EXPECT_EQ(1, total(&n)) TH_LOG("port %d", port[i]);
		rows += hist_row(port[i], 0) >= 0;
	}
	/* The rows went to the first ports (kmtlsd's and the fixture's may hold some). */
	EXPECT_GE(HS_HIST_ROWS, rows);
	EXPECT_LE(HS_HIST_ROWS - 2, rows);
	EXPECT_LE(0, hist_row(port[0], 0));
	EXPECT_GT(0, hist_row(port[NPORTS - 1], 0));

	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", NULL)) TH_LOG("%s", out);
	o = json_tokener_parse(out);
	ASSERT_NE(NULL, o);
	ASSERT_TRUE(json_object_object_get_ex(o, "ports", &arr));
	for (i = 0; i < (int)json_object_array_length(arr); i++) {
		p = json_object_array_get_idx(arr, i);
		for (j = 0; j < NPORTS; j++)
			ok += port[j] == jpath(p, "port", NULL, NULL) &&
			      jpath(p, "outcomes", "ok", "count") == 1;
	}
	EXPECT_EQ(NPORTS, ok);
	json_object_put(o);

	/* latency reset empties the rows too (and keeps them assigned). */
	ASSERT_EQ(0, ctl(out, sizeof(out), "latency", "reset", NULL)) TH_LOG("%s", out);
	hist_counts(port[0], &n);
	EXPECT_EQ(0, total(&n));
	EXPECT_LE(0, hist_row(port[0], 0));
}

/*
 * The client side: connect()ed sockets whose remote port is watched
 * (--active-ports) count under that port as "client"; the server end of
 * the same connection, in the same cgroup, counts on its own.
 */
TEST_F_TIMEOUT(hsl, client_side, 120)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	char ports[32], active[16], out[4096];
	const struct hs_event *e;
	struct counts n, a;
	int cfd, sfd, i;
	struct evs ev;

	snprintf(ports, sizeof(ports), "%d,%d", self->d.port, self->raw_port);
	snprintf(active, sizeof(active), "%d", self->raw_port);
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "attach", "--cgroup", self->cg,
			 "--ports", ports, "--active-ports", active, NULL)) TH_LOG("%s", out);
	ASSERT_EQ(0, tcp_connect_port(self->raw_port, &cfd));
	sfd = accept(self->lsock, NULL, NULL);
	ASSERT_LE(0, sfd);
	setsockopt(cfd, SOL_TCP, TCP_ULP, "tls", 3);
	setsockopt(cfd, SOL_TLS, TLS_TX, &ci, sizeof(ci));
	close(sfd);	/* the server end never installs keys: closed */
	close(cfd);
	for (i = 0; i < 200; i++) {
		hist_counts_side(self->raw_port, 1, &a);
		hist_counts_side(self->raw_port, 0, &n);
		if (total(&a) && total(&n))
			break;
		sleep_ms(10);
	}
	EXPECT_EQ(1, a.n[HS_OK]);
	EXPECT_EQ(1, total(&a));
	EXPECT_EQ(1, n.n[HS_CLOSED]);
	EXPECT_EQ(1, total(&n));
	ASSERT_EQ(0, read_events(&ev));
	for (i = 0; i < ev.n; i++) {
		e = &ev.e[i];
		if (e->flags & HS_EV_PASSIVE) {
			EXPECT_EQ(HS_SRC_CLOSE, e->source);
			EXPECT_EQ(self->raw_port, e->lport);
		} else {
			EXPECT_EQ(HS_SRC_KTLS, e->source);
			EXPECT_EQ(self->raw_port, e->rport);
		}
	}
	EXPECT_EQ(2, ev.n);
}

/*
 * N handshakes: exactly N counts, all ok, each inside the wall-clock window
 * its client measured; the events carry the right addresses, process and
 * source. Without a completion marker (ktls variant, no kTLS) every one of
 * them counts as closed when it closes, and as nothing before.
 */
TEST_F_TIMEOUT(hsl, handshakes, 300)
{
	struct client cl[N_HANDSHAKES];
	__u64 sum = 0, lat;
	struct hs_stats st;
	struct counts n;
	struct evs ev;
	char err[256];
	int i;

	for (i = 0; i < N_HANDSHAKES; i++) {
		ASSERT_EQ(0, client_connect(&cl[i], self->d.port));
		sleep_ms(PRE_HELLO_MS);
		ASSERT_EQ(0, client_handshake(&cl[i], self->ctx, err, sizeof(err)))
			TH_LOG("client %d: %s", i, err);
	}
	if (!sees_success(variant, self)) {
		sleep_ms(200);
		hist_counts(self->d.port, &n);
		EXPECT_EQ(0, total(&n)) TH_LOG("counted before any marker");
		for (i = 0; i < N_HANDSHAKES; i++)
			client_close(&cl[i]);
		wait_counts(self->d.port, N_HANDSHAKES, 10000, &n);
		EXPECT_EQ(N_HANDSHAKES, n.n[HS_CLOSED]);
		EXPECT_EQ(N_HANDSHAKES, total(&n));
		return;
	}
	wait_counts(self->d.port, N_HANDSHAKES, 10000, &n);
	for (i = 0; i < N_HANDSHAKES; i++)
		client_close(&cl[i]);
	EXPECT_EQ(N_HANDSHAKES, n.n[HS_OK]);
	EXPECT_EQ(N_HANDSHAKES, total(&n));

	ASSERT_EQ(0, read_events(&ev));
	EXPECT_EQ(N_HANDSHAKES, ev.n);
	for (i = 0; i < N_HANDSHAKES; i++) {
		const struct hs_event *e = event_of(&ev, cl[i].port);

		ASSERT_NE(NULL, e) TH_LOG("no event for client port %d", cl[i].port);
		EXPECT_EQ(1, events_of(&ev, cl[i].port));
		lat = e->latency_ns;
		sum += lat;
		/* The window: the client's pause before its ClientHello .. its echo. */
		EXPECT_LE((__u64)PRE_HELLO_MS * 1000000, lat);
		EXPECT_GE(cl[i].t1 - cl[i].t0, lat)
			TH_LOG("client %d: latency %llu ns, window %llu ns", i,
			       (unsigned long long)lat, (unsigned long long)(cl[i].t1 - cl[i].t0));
		EXPECT_EQ(HS_OK, e->outcome);
		EXPECT_EQ(variant->usdt ? HS_SRC_USDT : HS_SRC_KTLS, e->source);
		expect_kmtlsd_lo4(_metadata, e, self->d.proc.pid, self->d.port);
		if (variant->usdt) {
			/* kmtlsd's own clock starts at accept(): never longer. */
			EXPECT_GE(lat, e->agent_ns);
			EXPECT_LT(0ull, e->agent_ns);
			EXPECT_EQ(0, e->status);
			EXPECT_EQ(0x0304, e->tls_version);
			EXPECT_NE(0, e->cipher[0]);
		}
	}
	/* The histogram holds exactly what the events say. */
	EXPECT_EQ(sum, n.sum_ns);

	/* The closes come after the marker: nothing more is counted. */
	sleep_ms(300);
	hist_counts(self->d.port, &n);
	EXPECT_EQ(N_HANDSHAKES, total(&n));
	ASSERT_EQ(0, hs_stats_sum(&st));
	EXPECT_EQ((__u64)N_HANDSHAKES, st.tracked);
	EXPECT_EQ(0ull, st.events_dropped);
	if (variant->usdt) {
		EXPECT_EQ((__u64)N_HANDSHAKES, st.by_usdt);
	} else {
		EXPECT_EQ((__u64)N_HANDSHAKES, st.by_ktls);
	}
	/* Claimed connections leave no pending entry behind. */
	EXPECT_EQ(0, pending_entries());
}

/* kill() only asks: wait until every thread of @pid is stopped. */
static int wait_stopped(pid_t pid)
{
	char path[64], buf[512], *p;
	int i, stopped = 0;
	FILE *f;

	for (i = 0; i < 500 && !stopped; i++) {
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "re");
		if (!f)
			return -1;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		stopped = p && p[1] == ' ' && p[2] == 'T';
		if (!stopped)
			sleep_ms(2);
	}
	return stopped ? 0 : -1;
}

static void *sigcont_later(void *arg)
{
	pid_t pid = *(pid_t *)arg;

	sleep_ms(QUEUE_MS);
	kill(pid, SIGCONT);
	return NULL;
}

/*
 * The time a connection waits before the server accept()s it counts: with
 * kmtlsd stopped for QUEUE_MS, the handshake takes at least that long, and
 * kmtlsd's own timer (from accept) misses it.
 */
TEST_F_TIMEOUT(hsl, accept_queue, 120)
{
	const struct hs_event *e;
	struct client c;
	struct counts n;
	struct evs ev;
	pthread_t t;
	char err[256];

	if (!sees_success(variant, self))
		SKIP(return, "no kTLS and no USDT: nothing marks a handshake complete");
	ASSERT_EQ(0, kill(self->d.proc.pid, SIGSTOP));
	ASSERT_EQ(0, wait_stopped(self->d.proc.pid));
	ASSERT_EQ(0, client_connect(&c, self->d.port));
	ASSERT_EQ(0, pthread_create(&t, NULL, sigcont_later, &self->d.proc.pid));
	EXPECT_EQ(0, client_handshake(&c, self->ctx, err, sizeof(err))) TH_LOG("%s", err);
	pthread_join(t, NULL);
	wait_counts(self->d.port, 1, 5000, &n);
	client_close(&c);
	EXPECT_EQ(1, n.n[HS_OK]);
	ASSERT_EQ(0, read_events(&ev));
	e = event_of(&ev, c.port);
	ASSERT_NE(NULL, e);
	EXPECT_LE((__u64)QUEUE_MS * 1000000, e->latency_ns);
	EXPECT_GE(c.t1 - c.t0, e->latency_ns);
	if (variant->usdt) {
		EXPECT_GT((__u64)QUEUE_MS * 1000000, e->agent_ns);
		TH_LOG("latency %.1f ms, of which kmtlsd saw %.1f ms",
		       e->latency_ns / 1e6, e->agent_ns / 1e6);
	}
}

/*
 * Handshakes that do not complete: a client that connects and closes, one
 * without a certificate, one with a certificate from an unknown CA, and one
 * that stalls until kmtlsd's handshake timeout. Each counts once, none as
 * ok. With USDT kmtlsd's verdict names the failure; without it, the close.
 */
TEST_F_TIMEOUT(hsl, aborted, 120)
{
	struct kmtls_tls_conf nocert = { .ca = pki("ca.pem"), .tls_min = 0x0304 };
	struct kmtls_tls_conf other = {
		.cert = pki("bad/otherca.pem"), .key = pki("bad/otherca.key"),
		.ca = pki("ca.pem"), .tls_min = 0x0304,
	};
	enum { QUIT, NOCERT, OTHERCA, STALL, NCASES };
	static const char *const names[] = { "connect+close", "no certificate",
					     "unknown CA", "stall" };
	struct client c[NCASES];
	const struct hs_event *e;
	WOLFSSL_CTX *ctx[NCASES] = { 0 };
	struct counts n;
	struct evs ev;
	char err[256], buf[64];
	int i;

	ctx[NOCERT] = kmtls_tls_ctx_new(&nocert, err, sizeof(err));
	ASSERT_NE(NULL, ctx[NOCERT]) TH_LOG("%s", err);
	ctx[OTHERCA] = kmtls_tls_ctx_new(&other, err, sizeof(err));
	ASSERT_NE(NULL, ctx[OTHERCA]) TH_LOG("%s", err);

	for (i = 0; i < NCASES; i++) {
		ASSERT_EQ(0, client_connect(&c[i], self->d.port));
		if (i == NOCERT || i == OTHERCA) {
			/* TLS 1.3: the client is done first; the refusal follows. */
			client_handshake(&c[i], ctx[i], err, sizeof(err));
			while (read(c[i].fd, buf, sizeof(buf)) > 0)
				;
		} else if (i == STALL) {
			/* Nothing sent: kmtlsd gives up after its timeout. */
			while (read(c[i].fd, buf, sizeof(buf)) > 0)
				;
		}
		client_close(&c[i]);
		wait_counts(self->d.port, i + 1, 10000, &n);
	}
	wolfSSL_CTX_free(ctx[NOCERT]);
	wolfSSL_CTX_free(ctx[OTHERCA]);
	sleep_ms(200);
	hist_counts(self->d.port, &n);
	EXPECT_EQ(0, n.n[HS_OK]);
	EXPECT_EQ(NCASES, total(&n));

	ASSERT_EQ(0, read_events(&ev));
	for (i = 0; i < NCASES; i++) {
		e = event_of(&ev, c[i].port);
		ASSERT_NE(NULL, e) TH_LOG("%s: no event", names[i]);
		EXPECT_EQ(1, events_of(&ev, c[i].port));
		EXPECT_NE(HS_OK, e->outcome) TH_LOG("%s", names[i]);
		TH_LOG("%s: %s by %s after %.2f ms (status %d)", names[i],
		       hs_outcome_name(e->outcome), hs_source_name(e->source),
		       e->latency_ns / 1e6, e->status);
		if (!variant->usdt) {
			/* Counted when kmtlsd closed it: its process, the addresses. */
			EXPECT_EQ(HS_CLOSED, e->outcome);
			EXPECT_EQ(HS_SRC_CLOSE, e->source);
			expect_kmtlsd_lo4(_metadata, e, self->d.proc.pid, self->d.port);
			continue;
		}
		if (i == NOCERT || i == OTHERCA) {
			EXPECT_EQ(HS_FAILED, e->outcome) TH_LOG("%s", names[i]);
			EXPECT_GT(0, e->status);
		} else if (i == STALL) {
			EXPECT_EQ(HS_TIMEOUT, e->outcome);
			EXPECT_EQ(ETIMEDOUT, e->status);
		}
	}
}

/* A listener on [::]:0 that takes IPv4 too (IPv4-mapped); its fd, port in @port. */
static int listen_dual(int *port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), zero = 0;

	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin6_port);
	return fd;
}

/* hs_hist keys of a port other than @a and @b (a histogram nobody asked for). */
static int foreign_hist_keys(int a, int b)
{
	struct hs_hist_key k, next;
	int fd = pinned(HS_MAP_HIST), n = 0;
	void *prev = NULL;

	if (fd < 0)
		return -1;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		n += next.port != a && next.port != b;
		k = next;
		prev = &k;
	}
	close(fd);
	return n;
}

/*
 * Children still in the accept queue when their listener closes die
 * without a release: their slots stay. The allocator soon puts new
 * sockets at their addresses; the close of such a socket (here, clients
 * of an unwatched port) must not count it as the dead connection with
 * its own ports, only give the slot up (stale).
 */
TEST_F_TIMEOUT(hsl, orphaned_children, 120)
{
	enum { CHILDREN = 8, OPEN = 256 };
	static int cl[OPEN], sv[OPEN];
	struct hs_stats st0, st1;
	int fd[CHILDREN], other, oport, i;

	ASSERT_EQ(0, hs_stats_sum(&st0));
	for (i = 0; i < CHILDREN; i++)
		ASSERT_LE(0, fd[i] = connect_lo(AF_INET, self->raw_port));
	for (i = 0; i < 100 && pending_entries() < CHILDREN; i++)
		sleep_ms(10);
	ASSERT_EQ(CHILDREN, pending_entries());
	close(self->lsock);	/* the children go, never accepted */
	self->lsock = -1;
	for (i = 0; i < CHILDREN; i++)
		close(fd[i]);

	/*
	 * Enough sockets open at once that the allocator hands out the
	 * freed children's memory again (it recycles its newest free objects
	 * first: one at a time would never get there).
	 */
	other = listen_dual(&oport);
	ASSERT_LE(0, other);
	for (i = 0; i < OPEN; i++) {
		ASSERT_LE(0, cl[i] = connect_lo(AF_INET, oport));
		ASSERT_LE(0, sv[i] = accept(other, NULL, NULL));
	}
	for (i = 0; i < OPEN; i++) {
		close(sv[i]);
		close(cl[i]);
	}
	close(other);
	sleep_ms(100);
	ASSERT_EQ(0, hs_stats_sum(&st1));
	EXPECT_EQ(0, foreign_hist_keys(self->d.port, self->raw_port));
	EXPECT_EQ(st0.by_close, st1.by_close);
	EXPECT_LT(st0.stale, st1.stale) TH_LOG("no new socket at a dead child's address");
	TH_LOG("%llu of %d dead children's slots found by new sockets",
	       (unsigned long long)(st1.stale - st0.stale), CHILDREN);
}

/*
 * IPv6: handshakes through a kmtlsd on [::1] (the USDT program reads the
 * IPv6 addresses from the kernel socket and must build the same key as the
 * sockops program), and key installs on IPv4-mapped connections of a
 * dual-stack listener (AF_INET6 sockets carrying IPv4).
 */
TEST_F_TIMEOUT(hsl, ipv6, 180)
{
	static const __u8 lo6[16] = { [15] = 1 };
	static const __u8 mapped[16] = { [10] = 0xff, [11] = 0xff, 127, 0, 0, 1 };
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info.version = TLS_1_2_VERSION,
		.info.cipher_type = TLS_CIPHER_AES_GCM_128,
	};
	char listen[64], backend[64], ports[64], out[4096], err[256];
	int p6 = free_port(), dport, dfd, i, cfd[2], sfd;
	const struct hs_event *e;
	struct client c[3];
	struct counts n;
	struct evs ev;
	char *argv[] = {
		(char *)out_path("bin/kmtlsd"), "--foreground", "--workers", "1",
		"--listen", listen, "--backend", backend,
		"--cert", (char *)pki("server.pem"), "--key", (char *)pki("server.key"),
		"--ca", (char *)pki("ca.pem"), NULL
	};

	dfd = listen_dual(&dport);
	ASSERT_LE(0, dfd);
	snprintf(listen, sizeof(listen), "[::1]:%d", p6);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", self->be.port);
	ASSERT_EQ(0, proc_start(&self->d6, "kmtlsd6.log", argv));
	ASSERT_EQ(0, proc_wait_log(&self->d6, "listening on", 10000));
	/* Attaching again to the same cgroup only changes the watched ports. */
	snprintf(ports, sizeof(ports), "%d,%d,%d,%d", self->d.port, self->raw_port, p6, dport);
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "attach", "--cgroup", self->cg,
			 "--ports", ports, NULL)) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"already_attached\":true"));

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, client_connect_af(&c[i], AF_INET6, p6));
		ASSERT_EQ(0, client_handshake(&c[i], self->ctx, err, sizeof(err))) TH_LOG("%s", err);
	}
	if (sees_success(variant, self)) {
		wait_counts(p6, 3, 10000, &n);
		EXPECT_EQ(3, n.n[HS_OK]);
	}
	for (i = 0; i < 3; i++)
		client_close(&c[i]);
	wait_counts(p6, 3, 10000, &n);
	EXPECT_EQ(3, total(&n));

	/* The same program, IPv4 and IPv6 through one dual-stack listener. */
	cfd[0] = connect_lo(AF_INET, dport);
	cfd[1] = connect_lo(AF_INET6, dport);
	for (i = 0; i < 2; i++) {
		ASSERT_LE(0, cfd[i]);
		sfd = accept(dfd, NULL, NULL);
		ASSERT_LE(0, sfd);
		setsockopt(sfd, SOL_TCP, TCP_ULP, "tls", 3);
		setsockopt(sfd, SOL_TLS, TLS_TX, &ci, sizeof(ci));
		close(sfd);
	}
	wait_counts(dport, 2, 5000, &n);
	EXPECT_EQ(2, n.n[HS_OK]);
	EXPECT_EQ(2, total(&n));

	ASSERT_EQ(0, read_events(&ev));
	for (i = 0; i < 3; i++) {
		e = event_of(&ev, c[i].port);
		ASSERT_NE(NULL, e);
		EXPECT_EQ(AF_INET6, e->family);
		EXPECT_EQ(p6, e->lport);
		EXPECT_EQ(0, memcmp(lo6, e->laddr, 16));
		EXPECT_EQ(0, memcmp(lo6, e->raddr, 16));
		if (variant->usdt) {
			EXPECT_EQ(HS_SRC_USDT, e->source);
		}
	}
	for (i = 0; i < 2; i++) {
		e = event_of(&ev, local_port(cfd[i]));
		ASSERT_NE(NULL, e);
		EXPECT_EQ(AF_INET6, e->family);
		EXPECT_EQ(HS_SRC_KTLS, e->source);
		EXPECT_EQ(0, memcmp(i ? lo6 : mapped, e->raddr, 16));
		close(cfd[i]);
	}
	close(dfd);
}

static json_object *parse_line(const char *s, int line)
{
	const char *p = s;

	while (line-- > 0 && p && (p = strchr(p, '\n')))
		p++;
	return p && *p ? json_tokener_parse(p) : NULL;
}

static long jpath(json_object *o, const char *a, const char *b, const char *c)
{
	json_object *v = o;

	if (a && !json_object_object_get_ex(v, a, &v))
		return -1;
	if (b && !json_object_object_get_ex(v, b, &v))
		return -1;
	if (c && !json_object_object_get_ex(v, c, &v))
		return -1;
	return json_object_get_int64(v);
}

/* kmtlsctl latency: text, --json, --port, --interval, --events, status, detach. */
TEST_F_TIMEOUT(hsl, kmtlsctl, 300)
{
	char out[65536], port[16], *argv[16];
	json_object *o, *ports, *p0;
	struct client c[32];
	struct counts n;
	char err[256];
	int i, j, k, lines, done = 0, status = -1;
	FILE *f;

	snprintf(port, sizeof(port), "%d", self->d.port);
	/*
	 * A streaming reader that stops after 3 events; it skips events from
	 * before it started, so handshakes go on until it is done.
	 */
	argv[0] = (char *)out_path("bin/kmtlsctl");
	argv[1] = "--json";
	argv[2] = "latency";
	argv[3] = "--events";
	argv[4] = "--count";
	argv[5] = "3";
	argv[6] = "--duration";
	argv[7] = "120";
	argv[8] = "--port";
	argv[9] = port;
	argv[10] = NULL;
	ASSERT_EQ(0, proc_start(&self->rd, "events.json", argv));
	for (done = 0; done < 32; done++) {
		if (waitpid(self->rd.pid, &status, WNOHANG) == self->rd.pid) {
			self->rd.pid = 0;
			break;
		}
		ASSERT_EQ(0, client_connect(&c[done], self->d.port));
		ASSERT_EQ(0, client_handshake(&c[done], self->ctx, err, sizeof(err)))
			TH_LOG("%s", err);
		client_close(&c[done]);
		sleep_ms(100);
	}
	ASSERT_EQ(0, self->rd.pid) TH_LOG("the reader did not stop after 3 events");
	EXPECT_EQ(0, WEXITSTATUS(status));
	f = fopen(self->rd.log, "r");
	ASSERT_NE(NULL, f);
	lines = (int)fread(out, 1, sizeof(out) - 1, f);
	fclose(f);
	out[lines] = 0;
	for (i = 0; i < 3; i++) {
		o = parse_line(out, i);
		ASSERT_NE(NULL, o) TH_LOG("events: %s", out);
		EXPECT_EQ(self->d.port, jpath(o, "lport", NULL, NULL));
		for (j = 0, k = 0; j < done; j++)
			k += c[j].port == jpath(o, "rport", NULL, NULL);
		EXPECT_EQ(1, k) TH_LOG("an event for a connection we did not make: %s", out);
		json_object_put(o);
	}
	o = parse_line(out, 3);
	ASSERT_NE(NULL, o) TH_LOG("events: %s", out);
	EXPECT_EQ(3, jpath(o, "summary", "events", NULL));
	EXPECT_EQ(0, jpath(o, "summary", "dropped", NULL));
	json_object_put(o);

	/* The histogram as JSON, the port's entry first. */
	wait_counts(self->d.port, done, 10000, &n);
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "--port", port, NULL));
	o = json_tokener_parse(out);
	ASSERT_NE(NULL, o) TH_LOG("%s", out);
	ASSERT_TRUE(json_object_object_get_ex(o, "ports", &ports));
	ASSERT_EQ(1, (int)json_object_array_length(ports));
	p0 = json_object_array_get_idx(ports, 0);
	EXPECT_EQ(self->d.port, jpath(p0, "port", NULL, NULL));
	EXPECT_EQ(done, total(&n));
	EXPECT_EQ(total(&n), jpath(o, "totals", "ok", NULL) +
	  jpath(o, "totals", "closed", NULL) + jpath(o, "totals", "failed", NULL) +
	  jpath(o, "totals", "timeout", NULL));
	if (sees_success(variant, self)) {
		EXPECT_EQ(done, jpath(p0, "outcomes", "ok", "count"));
		EXPECT_LT(0, jpath(p0, "outcomes", "ok", "p50_us"));
	}
	json_object_put(o);

	/* Text: bcc-style bars and percentiles. */
	ASSERT_EQ(0, ctl(out, sizeof(out), "latency", NULL));
	EXPECT_NE(NULL, strstr(out, "usecs"));
	EXPECT_NE(NULL, strstr(out, "distribution"));
	EXPECT_NE(NULL, strstr(out, "|*"));
	EXPECT_NE(NULL, strstr(out, "p99"));
	TH_LOG("kmtlsctl latency:\n%s", out);

	/* Intervals: one JSON line each, nothing new in them. */
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "--interval", "0.2",
			 "--count", "2", NULL));
	for (i = 0; i < 2; i++) {
		o = parse_line(out, i);
		ASSERT_NE(NULL, o) TH_LOG("%s", out);
		EXPECT_EQ(0, jpath(o, "totals", "ok", NULL));
		json_object_put(o);
	}

	/* Status, then detach: links gone, maps kept, nothing counted after. */
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "status", NULL));
	o = json_tokener_parse(out);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(1, jpath(o, "attached", NULL, NULL));
	EXPECT_EQ(variant->usdt ? 1 : 0, jpath(o, "usdt_links", NULL, NULL) > 0);
	json_object_put(o);
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "detach", NULL));
	self->attached = 0;
	ASSERT_EQ(0, ctl(out, sizeof(out), "--json", "latency", "status", NULL));
	o = json_tokener_parse(out);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(0, jpath(o, "attached", NULL, NULL));
	EXPECT_EQ(1, jpath(o, "loaded", NULL, NULL));
	EXPECT_EQ(0, jpath(o, "usdt_links", NULL, NULL));
	json_object_put(o);
	hist_counts(self->d.port, &n);
	ASSERT_EQ(0, client_connect(&c[0], self->d.port));
	ASSERT_EQ(0, client_handshake(&c[0], self->ctx, err, sizeof(err))) TH_LOG("%s", err);
	client_close(&c[0]);
	{
		struct counts after;

		sleep_ms(300);
		hist_counts(self->d.port, &after);
		EXPECT_EQ(total(&n), total(&after));
	}
	/* A second detach has nothing to do. */
	EXPECT_EQ(1, ctl(out, sizeof(out), "--json", "latency", "detach", NULL));
}

TEST_HARNESS_MAIN
