// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "failmalloc/failmalloc.h"
#include "faults.h"
#include "proc.h"
#include "tls_pair.h"
#include "usage.h"

struct failmalloc_ctl *failmalloc_prepare(const char *program)
{
	const char *so = out_path("selftests/lib/failmalloc.so");
	struct failmalloc_ctl *ctl;
	static int n;
	char path[256];
	int fd;

	if (binary_is_asan(program) || access(so, R_OK))
		return NULL;
	snprintf(path, sizeof(path), "%s/failmalloc-%d.ctl", test_tmpdir(), ++n);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, sizeof(*ctl))) {
		close(fd);
		return NULL;
	}
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (ctl == MAP_FAILED)
		return NULL;
	setenv("KMTLS_FAILMALLOC", path, 1);
	setenv("LD_PRELOAD", so, 1);
	return ctl;
}

void failmalloc_started(void)
{
	unsetenv("LD_PRELOAD");
	unsetenv("KMTLS_FAILMALLOC");
}

void rst_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---- the misbehaving backend ---------------------------------------- */

struct fb_conn {
	struct fault_backend *b;
	int fd;
};

static int read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		if (recv(fd, line + n, 1, 0) != 1)
			return -1;
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = 0;
	return 0;
}

static void *fb_conn_main(void *arg)
{
	struct fb_conn *c = arg;
	struct fault_backend *b = c->b;
	char line[64], buf[16384];
	unsigned long left;
	ssize_t n;

	memset(buf, 'd', sizeof(buf));
	if (read_line(c->fd, line, sizeof(line))) {
		close(c->fd);
	} else if (!strcmp(line, "echo")) {
		while ((n = recv(c->fd, buf, sizeof(buf), 0)) > 0)
			if (send(c->fd, buf, n, MSG_NOSIGNAL) != n)
				break;
		close(c->fd);
	} else if (!strncmp(line, "reset ", 6)) {
		for (left = strtoul(line + 6, NULL, 10); left; left -= n) {
			n = send(c->fd, buf, left < sizeof(buf) ? left : sizeof(buf), MSG_NOSIGNAL);
			if (n <= 0)
				break;
		}
		rst_close(c->fd);
		atomic_fetch_add(&b->resets, 1);
	} else {	/* stream */
		while (send(c->fd, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
			;
		close(c->fd);
	}
	atomic_fetch_sub(&b->live, 1);
	free(c);
	return NULL;
}

static void *fb_main(void *arg)
{
	struct fault_backend *b = arg;
	struct fb_conn *c;
	pthread_t t;
	int fd;

	while ((fd = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR ||
	       errno == ECONNABORTED) {
		if (fd < 0)
			continue;
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->b = b;
		c->fd = fd;
		atomic_fetch_add(&b->conns, 1);
		atomic_fetch_add(&b->live, 1);
		if (pthread_create(&t, NULL, fb_conn_main, c)) {
			atomic_fetch_sub(&b->live, 1);
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

int fault_backend_start(struct fault_backend *b)
{
	memset(b, 0, sizeof(*b));
	b->lfd = listen_lo(&b->port);
	if (b->lfd < 0)
		return -1;
	if (pthread_create(&b->thread, NULL, fb_main, b)) {
		close(b->lfd);
		b->lfd = -1;
		return -1;
	}
	return 0;
}

void fault_backend_stop(struct fault_backend *b)
{
	int i;

	if (b->lfd < 0)
		return;
	shutdown(b->lfd, SHUT_RDWR);	/* wakes accept() with an error */
	pthread_join(b->thread, NULL);
	close(b->lfd);
	b->lfd = -1;
	/* Connection threads end when kmtlsd closes their sockets. */
	for (i = 0; i < 500 && atomic_load(&b->live); i++)
		usleep(10000);
}

/* ---- a good client ------------------------------------------------- */

int good_echo(int port, size_t bytes, char *err, size_t errlen)
{
	struct tls_client_opts o = {
		.port = port, .cert = pki("client.pem"), .key = pki("client.key"),
	};
	unsigned char out[4096], in[4096];
	size_t sent = 0, got = 0, i, chunk;
	struct tls_end e;
	int n, ret = -1;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i * 7 + 1);
	if (tls_client_open(&o, &e, err, errlen))
		goto out;
	if (wolfSSL_write(e.ssl, "echo\n", 5) != 5) {
		snprintf(err, errlen, "write after the handshake failed");
		goto out;
	}
	/* In lockstep, a chunk at a time: the echo never has to queue much. */
	while (got < bytes) {
		chunk = bytes - sent < sizeof(out) ? bytes - sent : sizeof(out);
		if (wolfSSL_write(e.ssl, out, (int)chunk) != (int)chunk) {
			snprintf(err, errlen, "write failed after %zu bytes", sent);
			goto out;
		}
		sent += chunk;
		while (got < sent) {
			n = wolfSSL_read(e.ssl, in, (int)(sent - got));
			if (n <= 0) {
				snprintf(err, errlen, "echo ended after %zu of %zu bytes", got, bytes);
				goto out;
			}
			for (i = 0; i < (size_t)n; i++)
				if (in[i] != out[(got + i) % sizeof(out)]) {
					snprintf(err, errlen, "echo byte %zu differs", got + i);
					goto out;
				}
			got += n;
		}
	}
	wolfSSL_shutdown(e.ssl);
	ret = 0;
out:
	tls_end_close(&e);
	return ret;
}

/* ---- the wire tap -------------------------------------------------- */

static int keep(struct wiretap *t, const unsigned char *p, size_t n)
{
	unsigned char *g;

	if (t->len + n > t->cap) {
		g = realloc(t->got, (t->len + n) * 2);
		if (!g)
			return -1;
		t->got = g;
		t->cap = (t->len + n) * 2;
	}
	memcpy(t->got + t->len, p, n);
	t->len += n;
	return 0;
}

static void *tap_main(void *arg)
{
	struct wiretap *t = arg;
	struct pollfd p[2];
	unsigned char buf[16384];
	int fd[2], open = 2, i;
	ssize_t n;

	fd[0] = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd[0] < 0 || tcp_connect_port(t->target, &fd[1])) {
		if (fd[0] >= 0)
			close(fd[0]);
		return NULL;
	}
	for (i = 0; i < 2; i++)
		p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
	while (open && poll(p, 2, 30000) > 0) {
		for (i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			n = recv(fd[i], buf, sizeof(buf), 0);
			if (n <= 0) {
				/* Pass the end (FIN, or a reset as a FIN) on. */
				shutdown(fd[!i], SHUT_WR);
				p[i].fd = -1;
				open--;
				continue;
			}
			if (i == 1 && keep(t, buf, n))
				open = 0;
			send(fd[!i], buf, n, MSG_NOSIGNAL);
		}
	}
	close(fd[0]);
	close(fd[1]);
	return NULL;
}

int wiretap_start(struct wiretap *t, int target)
{
	memset(t, 0, sizeof(*t));
	t->target = target;
	t->lfd = listen_lo(&t->port);
	if (t->lfd < 0)
		return -1;
	if (pthread_create(&t->thread, NULL, tap_main, t)) {
		close(t->lfd);
		return -1;
	}
	return 0;
}

void wiretap_join(struct wiretap *t)
{
	pthread_join(t->thread, NULL);
	close(t->lfd);
}

void wiretap_free(struct wiretap *t)
{
	free(t->got);
	t->got = NULL;
}

int tls_records_only(const unsigned char *buf, size_t len, const char *plain,
		     char *err, size_t errlen)
{
	size_t off = 0, rlen, records = 0;

	if (plain && memmem(buf, len, plain, strlen(plain)))
		return snprintf(err, errlen, "the plaintext is on the wire"), -1;
	while (off + 5 <= len) {
		rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
		if (buf[off] < 20 || buf[off] > 23 || buf[off + 1] != 3 || rlen > 16384 + 256)
			return snprintf(err, errlen, "byte %zu: not a TLS record header (%02x %02x %02x)",
					off, buf[off], buf[off + 1], buf[off + 2]), -1;
		off += 5 + rlen;
		records++;
	}
	if (off != len)
		return snprintf(err, errlen, "the last record is cut short (%zu of %zu bytes)", len, off), -1;
	if (!records)
		return snprintf(err, errlen, "nothing on the wire"), -1;
	return 0;
}
