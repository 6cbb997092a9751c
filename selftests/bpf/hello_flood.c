// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_flood - a ClientHello flood from many source addresses, as raw
 * Ethernet frames on one interface (AF_PACKET). For selftests/bpf/
 * flood_test.sh, which runs it inside its own network namespace, on the
 * client end of a veth pair; never point it at anything else.
 *
 *   hello_flood --ifname IF --dst-mac MAC --port P --count N --rate PPS
 *               [--dst4 ADDR --src4 BASE --sources4 N]
 *               [--dst6 ADDR --src6 PREFIX --sources6 N]
 *
 * Sources: IPv4 BASE+1 .. BASE+N; IPv6 PREFIX with its fourth group set to
 * 1 .. N, so each source is its own /64, and a random interface identifier
 * in every frame (the limiter must aggregate them). Every source sends
 * @count TCP ACK|PSH segments carrying a TLS 1.3 ClientHello, from random
 * ports, @rate per second, round-robin across sources. Prints one JSON line:
 * {"sent", "errors", "sources", "per_source", "elapsed_ms"}. SIGTERM stops
 * early and still prints.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frames.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static __u32 rnd(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (__u32)*s;
}

struct flood {
	int fd;
	struct sockaddr_ll to;
	struct frame_spec spec;
	uint8_t hello[600];
	size_t hello_len;
	__u64 seed;
	unsigned long sent, errors;
};

/* One frame; a full queue is waited out for up to 10 ms. */
static void send_one(struct flood *f)
{
	uint8_t frame[1024];
	size_t len;
	int i;

	f->spec.sport = (uint16_t)(1024 + rnd(&f->seed) % 60000);
	f->hello_len = tls_client_hello(f->hello, sizeof(f->hello), 0x0301, 1,
					rnd(&f->seed));
	f->spec.payload = f->hello;
	f->spec.plen = f->hello_len;
	len = frame_build(&f->spec, frame, sizeof(frame));
	for (i = 0; i < 200; i++) {
		if (sendto(f->fd, frame, len, 0, (struct sockaddr *)&f->to, sizeof(f->to)) ==
		    (ssize_t)len) {
			f->sent++;
			return;
		}
		if (errno != ENOBUFS && errno != EAGAIN)
			break;
		usleep(50);
	}
	f->errors++;
}

static void usage(void)
{
	fprintf(stderr, "usage: hello_flood --ifname IF --dst-mac MAC --port P --count N "
		"--rate PPS [--dst4 A --src4 BASE --sources4 N] "
		"[--dst6 A --src6 PREFIX --sources6 N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "dst4", required_argument, NULL, '4' },
		{ "src4", required_argument, NULL, 's' },
		{ "sources4", required_argument, NULL, 'n' },
		{ "dst6", required_argument, NULL, '6' },
		{ "src6", required_argument, NULL, 'S' },
		{ "sources6", required_argument, NULL, 'N' },
		{ 0 }
	};
	const char *ifname = NULL;
	uint8_t dmac[6] = { 0 }, dst4[4], dst6[16], src4[4] = { 0 }, src6[16] = { 0 };
	int have_mac = 0, have4 = 0, have6 = 0, opt, n4 = 0, n6 = 0, port = 0;
	long count = 0, rate = 0, r;
	struct flood f = { .seed = 0x9e3779b97f4a7c15ull };
	struct ifreq ifr = { 0 };
	__u64 start, next, step;
	__u32 base4;
	int s;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': ifname = optarg; break;
		case 'm': have_mac = !fr_parse_mac(optarg, dmac); break;
		case 'p': port = atoi(optarg); break;
		case 'c': count = atol(optarg); break;
		case 'r': rate = atol(optarg); break;
		case '4': have4 |= (inet_pton(AF_INET, optarg, dst4) == 1); break;
		case 's': have4 |= (inet_pton(AF_INET, optarg, src4) == 1) << 1; break;
		case 'n': n4 = atoi(optarg); break;
		case '6': have6 |= (inet_pton(AF_INET6, optarg, dst6) == 1); break;
		case 'S': have6 |= (inet_pton(AF_INET6, optarg, src6) == 1) << 1; break;
		case 'N': n6 = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (!ifname || !have_mac || port <= 0 || port > 65535 || count <= 0 || rate <= 0 ||
	    (n4 && have4 != 3) || (n6 && have6 != 3) || n4 < 0 || n6 < 0 || n4 + n6 == 0 ||
	    n4 > 65000 || n6 > 65000) {
		usage();
		return 2;
	}

	f.fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (f.fd < 0) {
		perror("hello_flood: socket(AF_PACKET)");
		return 1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(f.fd, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "hello_flood: %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	f.to.sll_family = AF_PACKET;
	f.to.sll_ifindex = (int)if_nametoindex(ifname);
	f.to.sll_halen = 6;
	memcpy(f.to.sll_addr, dmac, 6);
	memcpy(f.spec.smac, ifr.ifr_hwaddr.sa_data, 6);
	memcpy(f.spec.dmac, dmac, 6);
	f.spec.dport = (uint16_t)port;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	memcpy(&base4, src4, 4);
	base4 = ntohl(base4);
	start = now_ns();
	step = 1000000000ull / (__u64)rate;
	next = start;
	for (r = 0; r < count && !stop; r++) {
		for (s = 0; s < n4 + n6 && !stop; s++) {
			if (s < n4) {
				__u32 a = htonl(base4 + 1 + (__u32)s);

				f.spec.v6 = 0;
				memcpy(f.spec.src, &a, 4);
				memcpy(f.spec.dst, dst4, 4);
			} else {
				__u32 iid[2] = { rnd(&f.seed), rnd(&f.seed) };

				f.spec.v6 = 1;
				memcpy(f.spec.src, src6, 8);
				fr_put16(f.spec.src + 6, (uint16_t)(s - n4 + 1));
				memcpy(f.spec.src + 8, iid, 8);
				memcpy(f.spec.dst, dst6, 16);
			}
			send_one(&f);
		}
		next += step;
		while (!stop && now_ns() < next)
			usleep((useconds_t)((next - now_ns()) / 1000 + 1));
	}
	printf("{\"sent\":%lu,\"errors\":%lu,\"sources\":%d,\"per_source\":%ld,"
	       "\"elapsed_ms\":%llu}\n", f.sent, f.errors, n4 + n6, r,
	       (unsigned long long)((now_ns() - start) / 1000000));
	close(f.fd);
	return f.errors ? 1 : 0;
}
