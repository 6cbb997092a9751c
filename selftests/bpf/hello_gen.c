// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hello_gen - a ClientHello flood delivered to a veth's peer as xdp_frames,
 * for scripts/bench-xdp.sh: bpf/hello_gen.bpf.c under BPF_PROG_TEST_RUN with
 * BPF_F_TEST_XDP_LIVE_FRAMES, ingress on @ifname, XDP_TX out of it. Run it
 * in the network namespace of @ifname, on the client end of a veth pair
 * whose peer has an XDP program (or GRO) to take ndo_xdp_xmit frames.
 *
 *   hello_gen --ifname IF --dst-mac MAC --dst4 ADDR --src4 BASE
 *             --sources N --port P --frames N [--warmup N] [--cpu C] [--batch B]
 *
 * Frames come from BASE+1 .. BASE+N, round robin. --warmup frames go first,
 * untimed, right before the timed ones: a limiter's buckets are then
 * drained when timing starts (a pause of a second would refill them, and the
 * ClientHellos they admit cost a trip through TCP each). The peer's NAPI runs in
 * NET_RX softirq on this CPU when test_run re-enables bottom halves after
 * each batch, inside the syscall, so the CPU time of this thread (softirqs
 * included: no IRQ time accounting assumed) plus what ksoftirqd/C did
 * meanwhile is generation and delivery together. Prints one JSON line:
 * {"frames", "warmup", "sent", "cpu", "thread_ns", "ksoftirqd_ns", "test_run_ns",
 * "wall_ns"}, times for the timed frames; sent counts both (XDP_TX returns);
 * test_run_ns is the kernel's own timing (opts.duration).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "frames.h"
#include "hello_gen.skel.h"

#define HG_CHUNK 1000000	/* frames per test_run call */

static __u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* The pid of ksoftirqd/@cpu, or 0. */
static int ksoftirqd_pid(int cpu)
{
	char want[32], path[64], comm[32];
	struct dirent *d;
	int pid = 0;
	DIR *dir;
	FILE *f;

	snprintf(want, sizeof(want), "ksoftirqd/%d\n", cpu);
	dir = opendir("/proc");
	if (!dir)
		return 0;
	while (!pid && (d = readdir(dir))) {
		int n = atoi(d->d_name);

		if (n <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", n);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want))
			pid = n;
		fclose(f);
	}
	closedir(dir);
	return pid;
}

/* Nanoseconds @pid has run (schedstat), 0 when unknown. */
static __u64 task_ns(int pid)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* One frame through the program, not live: the rewrite must checksum. */
static int self_check(struct hello_gen *skel, const uint8_t *frame, size_t len,
		      __u32 want_src)
{
	uint8_t out[1024];
	const uint8_t *ip = out + 14, *tcp = out + 34;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	size_t tcp_len = len - 34;
	__u32 sum, src;

	if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hello_gen), &o) ||
	    o.retval != XDP_TX || o.data_size_out != len) {
		fprintf(stderr, "hello_gen: the program did not return XDP_TX on the template\n");
		return -1;
	}
	memcpy(&src, ip + 12, 4);
	sum = fr_sum(ip + 12, 8, 6 + (uint32_t)tcp_len);
	if (ntohl(src) != want_src || fr_fold(fr_sum(ip, 20, 0)) ||
	    fr_fold(fr_sum(tcp, tcp_len, sum))) {
		fprintf(stderr, "hello_gen: the rewritten frame has a wrong source or checksum\n");
		return -1;
	}
	skel->bss->hg_next = 0;
	skel->bss->hg_sent = 0;
	return 0;
}

struct gen {
	int prog_fd, ifindex, batch;
	const uint8_t *frame;
	size_t len;
};

/* @frames live frames out of the interface; adds the kernel's timing to @ns. */
static int gen_run(const struct gen *g, __u64 frames, __u64 *ns)
{
	struct xdp_md ctx = { .data_end = (__u32)g->len, .ingress_ifindex = (__u32)g->ifindex };
	__u64 done = 0;

	while (done < frames) {
		__u32 n = frames - done > HG_CHUNK ? HG_CHUNK : (__u32)(frames - done);
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = g->frame,
			    .data_size_in = (__u32)g->len, .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = n,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = (__u32)g->batch);

		if (bpf_prog_test_run_opts(g->prog_fd, &o)) {
			fprintf(stderr, "hello_gen: BPF_PROG_TEST_RUN with live frames: %s "
				"(kernel 5.18 or later)\n",
				strerror(errno));
			return -1;
		}
		*ns += (__u64)o.duration * n;
		done += n;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: hello_gen --ifname IF --dst-mac MAC --dst4 ADDR --src4 BASE "
		"--sources N --port P --frames N [--cpu C] [--batch B]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "dst4", required_argument, NULL, 'd' },
		{ "src4", required_argument, NULL, 's' },
		{ "sources", required_argument, NULL, 'n' },
		{ "port", required_argument, NULL, 'p' },
		{ "frames", required_argument, NULL, 'f' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ 0 }
	};
	struct frame_spec spec = { .sport = 40000 };
	uint8_t frame[1024], hello[600], src[4] = { 0 };
	__u64 t0, t1, w0, w1, k0, k1, frames = 0, warmup = 0, ns = 0;
	int opt, nsrc = 0, port = 0, cpu = 0, ok = 0, ks, err;
	struct gen g = { .batch = 64, .frame = frame };
	const char *ifname = NULL;
	struct hello_gen *skel;
	cpu_set_t set;
	size_t hlen;
	__u32 base;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': ifname = optarg; break;
		case 'm': ok |= !fr_parse_mac(optarg, spec.dmac); break;
		case 'd': ok |= (inet_pton(AF_INET, optarg, spec.dst) == 1) << 1; break;
		case 's': ok |= (inet_pton(AF_INET, optarg, src) == 1) << 2; break;
		case 'n': nsrc = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'f': frames = strtoull(optarg, NULL, 10); break;
		case 'w': warmup = strtoull(optarg, NULL, 10); break;
		case 'c': cpu = atoi(optarg); break;
		case 'b': g.batch = atoi(optarg); break;
		default: usage(); return 2;
		}
	}
	if (!ifname || ok != 7 || nsrc < 1 || nsrc > 65000 || port <= 0 || port > 65535 ||
	    !frames || cpu < 0 || g.batch < 1 || g.batch > 256) {
		usage();
		return 2;
	}
	g.ifindex = (int)if_nametoindex(ifname);
	if (!g.ifindex) {
		fprintf(stderr, "hello_gen: no interface %s in this network namespace\n", ifname);
		return 1;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fprintf(stderr, "hello_gen: CPU %d: %s\n", cpu, strerror(errno));
		return 1;
	}

	/*
	 * The template: a TLS 1.3 ClientHello from BASE itself, 20-byte IPv4
	 * and TCP headers (the offsets hello_gen.bpf.c writes at).
	 */
	hlen = tls_client_hello(hello, sizeof(hello), 0x0301, 1, 1);
	memcpy(spec.src, src, 4);
	spec.dport = (uint16_t)port;
	spec.payload = hello;
	spec.plen = hlen;
	g.len = frame_build(&spec, frame, sizeof(frame));
	memcpy(&base, src, 4);
	base = ntohl(base);

	skel = hello_gen__open();
	if (!skel) {
		fprintf(stderr, "hello_gen: cannot open the BPF object: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->hg_sources = (__u32)nsrc;
	skel->rodata->hg_base = base;
	memcpy((void *)&skel->rodata->hg_ip_check, frame + 14 + 10, 2);
	memcpy((void *)&skel->rodata->hg_tcp_check, frame + 34 + 16, 2);
	if (hello_gen__load(skel)) {
		fprintf(stderr, "hello_gen: cannot load the BPF program (root?): %s\n",
			strerror(errno));
		hello_gen__destroy(skel);
		return 1;
	}
	g.prog_fd = bpf_program__fd(skel->progs.hello_gen);
	err = self_check(skel, frame, g.len, base + 1);
	if (!err && warmup)
		err = gen_run(&g, warmup, &ns);

	ns = 0;
	ks = ksoftirqd_pid(cpu);
	k0 = task_ns(ks);
	w0 = clock_ns(CLOCK_MONOTONIC);
	t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	if (!err)
		err = gen_run(&g, frames, &ns);
	t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	w1 = clock_ns(CLOCK_MONOTONIC);
	k1 = task_ns(ks);

	if (!err)
		printf("{\"frames\":%llu,\"warmup\":%llu,\"sent\":%llu,\"cpu\":%d,"
		       "\"thread_ns\":%llu,\"ksoftirqd_ns\":%llu,\"test_run_ns\":%llu,"
		       "\"wall_ns\":%llu}\n", (unsigned long long)frames,
		       (unsigned long long)warmup, (unsigned long long)skel->bss->hg_sent, cpu,
		       (unsigned long long)(t1 - t0), (unsigned long long)(k1 - k0),
		       (unsigned long long)ns, (unsigned long long)(w1 - w0));
	hello_gen__destroy(skel);
	return err ? 1 : 0;
}
