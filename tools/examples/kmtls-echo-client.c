// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls-echo-client: an mTLS client without TLS code.
 *
 * It connects over TCP and asks the kernel service for the handshake
 * (libkmtls, blocking): kmtlsd presents the client certificate of its
 * [kernel NAME] profile and verifies the server's against the name given.
 * Then it sends plain bytes and prints what comes back.
 *
 *   kmtls-echo-client --connect HOST:PORT [--name NAME] [--profile NAME]
 *                     [--timeout MS] [--message TEXT]
 *
 * --name      the server name to verify (and send as SNI); default: HOST
 * --message   send TEXT, print the echo and quit; without it, stdin is sent
 *             and everything echoed is printed, until stdin ends and all
 *             of it came back
 * The peer's identity goes to stderr, the echoed bytes to stdout.
 */
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

static int dial(const char *target, char *host, size_t hostlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	const char *colon = strrchr(target, ':');
	const char *h = target;
	size_t hl;
	int fd = -1;

	if (!colon)
		return -1;
	hl = (size_t)(colon - target);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && !connect(fd, a->ai_addr, a->ai_addrlen))
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static void print_peer(const struct kmtls_peer *p)
{
	unsigned int i;

	fprintf(stderr, "server: %s %s%s, subject \"%s\"", p->version_name, p->cipher_name,
		p->resumed ? " (resumed)" : "", p->subject);
	for (i = 0; i < p->n_san_uri; i++)
		fprintf(stderr, ", URI %s", p->san_uri[i]);
	for (i = 0; i < p->n_san_dns; i++)
		fprintf(stderr, ", DNS %s", p->san_dns[i]);
	fprintf(stderr, ", sha256 %s\n", p->fingerprint_hex);
}

static int send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy stdin to the socket and the socket to stdout until all came back. */
static int relay(int fd, const char *message)
{
	struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
	size_t sent = 0, got = 0;
	int in_open = !message;
	char buf[16384];
	ssize_t n;

	if (message) {
		if (send_all(fd, message, strlen(message)))
			return -1;
		sent = strlen(message);
	}
	while (in_open || got < sent) {
		if (poll(pfd, in_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (in_open && pfd[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = 0;
			else if (send_all(fd, buf, (size_t)n))
				return -1;
			else
				sent += (size_t)n;
		}
		if (pfd[0].revents) {
			/* Not blocking: a ticket alone made the socket readable. */
			n = kmtls_recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n <= 0) {
				if (n < 0)
					perror("kmtls-echo-client: read");
				return got >= sent ? 0 : -1;
			}
			if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
				return -1;
			fflush(stdout);
			got += (size_t)n;
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kmtls-echo-client --connect HOST:PORT [--name NAME] [--profile NAME]\n"
		   "                         [--timeout MS] [--message TEXT]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'N' },
		{ "profile", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *target = NULL, *message = NULL;
	struct kmtls_opts o = { 0 };
	struct kmtls_peer peer;
	char host[256];
	int c, fd, err;

	while ((c = getopt_long(argc, argv, "c:N:p:t:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': target = optarg; break;
		case 'N': o.peer_name = optarg; break;
		case 'p': o.profile = optarg; break;
		case 't': o.timeout_ms = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'm': message = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!target) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fd = dial(target, host, sizeof(host));
	if (fd < 0) {
		fprintf(stderr, "kmtls-echo-client: cannot connect to %s\n", target);
		return 1;
	}
	if (!o.peer_name)
		o.peer_name = host;
	err = kmtls_handshake(fd, KMTLS_ROLE_CLIENT, &o, &peer);
	if (err) {
		fprintf(stderr, "kmtls-echo-client: handshake with %s failed: %s\n", target,
			kmtls_strerror(err));
		close(fd);
		return 1;
	}
	print_peer(&peer);
	err = relay(fd, message);
	kmtls_close_notify(fd);
	close(fd);
	return err ? 1 : 0;
}
