// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls-echo-server: an mTLS echo server without TLS code.
 *
 * It accepts TCP connections and hands each to the kernel service
 * (libkmtls, asynchronous: many handshakes at once from one poll loop);
 * kmtlsd verifies the client certificate with its [kernel NAME] profile and
 * the socket comes back with kTLS on. The server prints who the client is
 * and echoes plain bytes; the kernel does the records.
 *
 *   kmtls-echo-server [--listen ADDR:PORT] [--profile NAME] [--timeout MS]
 *                     [--count N] [--quiet]
 *
 * --listen    127.0.0.1:7000 by default; [::1]:7000 for IPv6, port 0 for any
 *             (the port taken is printed: "listening on 127.0.0.1:41233")
 * --count     exit after N connections ended (0: never)
 * --quiet     no line per connection
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/kmtls/kmtls.h"

#define MAX_CLIENTS 1024

struct client {
	int fd;			/* -1: free slot */
	int echoing;		/* handshake done, kTLS on */
	char addr[64];
};

static struct client clients[MAX_CLIENTS];
static int quiet;

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
	struct addrinfo *ai;
	char host[256];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (!colon)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(buf, len, "[%s]:%d", host, port);
		return;
	}
	inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
	port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	snprintf(buf, len, "%s:%d", host, port);
}

static void print_peer(const struct client *c, const struct kmtls_peer *p)
{
	unsigned int i;

	if (quiet)
		return;
	printf("%s: %s %s%s, subject \"%s\"", c->addr, p->version_name, p->cipher_name,
	       p->resumed ? " (resumed)" : "", p->subject);
	for (i = 0; i < p->n_san_uri; i++)
		printf(", URI %s", p->san_uri[i]);
	for (i = 0; i < p->n_san_dns; i++)
		printf(", DNS %s", p->san_dns[i]);
	printf(", sha256 %s\n", p->fingerprint_hex);
	fflush(stdout);
}

static void drop(struct client *c, int *ended)
{
	close(c->fd);
	c->fd = -1;
	c->echoing = 0;
	(*ended)++;
}

/* A connection came in: hand it to the kernel service. */
static void take(int lfd, int dev, const struct kmtls_opts *o, int *ended)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, i, err;

	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (i = 0; i < MAX_CLIENTS && clients[i].fd >= 0; i++)
		;
	if (i == MAX_CLIENTS) {
		close(fd);
		return;
	}
	clients[i].fd = fd;
	addr_str(&ss, clients[i].addr, sizeof(clients[i].addr));
	err = kmtls_submit(dev, fd, KMTLS_ROLE_SERVER, o, (uint64_t)i, NULL);
	if (err) {
		fprintf(stderr, "%s: %s\n", clients[i].addr, kmtls_strerror(err));
		drop(&clients[i], ended);
	}
}

/* Handshakes that finished. */
static void completions(int dev, int *ended)
{
	struct kmtls_peer peer;
	struct client *c;

	while (!kmtls_complete(dev, &peer)) {
		if (peer.user_data >= MAX_CLIENTS)
			continue;
		c = &clients[peer.user_data];
		if (peer.status) {
			fprintf(stderr, "%s: handshake failed: %s\n", c->addr,
				kmtls_strerror(peer.status));
			drop(c, ended);
			continue;
		}
		print_peer(c, &peer);
		c->echoing = 1;
	}
}

static void echo(struct client *c, int *ended)
{
	char buf[16384];
	/* Not blocking: a ticket alone may have made the socket readable. */
	ssize_t n = kmtls_recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT), off = 0, w;

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		if (n == 0)
			kmtls_close_notify(c->fd);
		else if (!quiet)
			fprintf(stderr, "%s: %s\n", c->addr, strerror(errno));
		drop(c, ended);
		return;
	}
	while (off < n) {
		w = send(c->fd, buf + off, n - off, MSG_NOSIGNAL);
		if (w < 0) {
			drop(c, ended);
			return;
		}
		off += w;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kmtls-echo-server [--listen ADDR:PORT] [--profile NAME] [--timeout MS]\n"
		   "                         [--count N] [--quiet]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "profile", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct pollfd pfd[MAX_CLIENTS + 2];
	const char *listen_at = "127.0.0.1:7000";
	struct kmtls_opts o = { 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	int c, lfd, dev, one = 1, count = 0, ended = 0, i, n, idx[MAX_CLIENTS + 2];
	char at[80];

	while ((c = getopt_long(argc, argv, "l:p:t:n:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen_at = optarg; break;
		case 'p': o.profile = optarg; break;
		case 't': o.timeout_ms = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'n': count = atoi(optarg); break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (parse_addr(listen_at, &ss, &len)) {
		fprintf(stderr, "kmtls-echo-server: --listen %s: expected ADDR:PORT\n", listen_at);
		return 2;
	}
	dev = kmtls_open(1);
	if (dev < 0) {
		fprintf(stderr, "kmtls-echo-server: /dev/kmtls: %s\n", kmtls_strerror(dev));
		return 1;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 512) ||
	    getsockname(lfd, (struct sockaddr *)&ss, &len)) {
		fprintf(stderr, "kmtls-echo-server: %s: %s\n", listen_at, strerror(errno));
		return 1;
	}
	addr_str(&ss, at, sizeof(at));
	printf("listening on %s\n", at);
	fflush(stdout);
	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	while (!count || ended < count) {
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = dev, .events = POLLIN };
		for (i = 0, n = 2; i < MAX_CLIENTS; i++) {
			if (clients[i].fd < 0 || !clients[i].echoing)
				continue;
			idx[n] = i;
			pfd[n++] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (pfd[1].revents)
			completions(dev, &ended);
		for (i = 2; i < n; i++)
			if (pfd[i].revents && clients[idx[i]].fd >= 0)
				echo(&clients[idx[i]], &ended);
		if (pfd[0].revents)
			take(lfd, dev, &o, &ended);
	}
	close(dev);
	close(lfd);
	return 0;
}
