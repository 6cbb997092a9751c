// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hs_latency - per-connection TLS handshake latency, for any TLS user in a
 * cgroup (kmtlsd, nginx with kTLS, ...), with no change to the application.
 *
 *   hs_sockops     sockops: a connection of a watched port becomes
 *                  ESTABLISHED (passive or active): the time goes into its
 *                  slot in hs_conns (keyed by the socket's address).
 *   hs_release     cgroup/sock_release: the application closes a socket.
 *                  A tracked connection with no completion marker before
 *                  is a failed handshake: counted as "closed", with its
 *                  duration; its slot is freed either way. (State callbacks
 *                  would see a peer's FIN or RST earlier, but cost two more
 *                  sockops runs on every tracked connection, the successful
 *                  ones too; see scripts/bench-latency.sh.)
 *   hs_setsockopt  cgroup/setsockopt: setsockopt(SOL_TLS, TLS_TX|TLS_RX)
 *                  installs the keys, so the handshake is complete: "ok".
 *                  It never looks at optval (key material) and always lets
 *                  the call proceed (returns 1, optval and optlen as given).
 *   hs_usdt_done   USDT kmtls:handshake_done of kmtlsd, for hosts without
 *                  kTLS (no setsockopt(SOL_TLS) ever happens there): from
 *                  the file descriptor to the kernel socket (CO-RE reads:
 *                  task, files, file, socket), to its slot; counts ok,
 *                  failed or timeout.
 *
 * Exactly once: each marker claims the connection by a compare-and-swap of
 * its slot's key (address -> address | HS_K_CLAIMED); only the one that
 * succeeds counts. kmtlsd fires handshake_done before its key install, so
 * where both run, kmtlsd's connections are counted by USDT and other kTLS
 * users by setsockopt. A marker after the first finds the bit set and counts
 * "late" (the TLS_RX after a TLS_TX counts nothing).
 *
 * Each count goes into a per-CPU histogram per (port, direction, outcome)
 * in hs_hist and, as an event with addresses, pid and comm, into the ring
 * buffer hs_events (a full ring counts events_dropped, never blocks).
 *
 * Cost: see scripts/bench-latency.sh. The paths that run for every TCP
 * socket op or setsockopt of the cgroup return after one or two compares;
 * a tracked connection costs cache lines more than instructions, so each
 * path touches as few as it can.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

#include "hs_latency.h"

#define AF_INET		2
#define AF_INET6	10
#define SOL_TLS		282
#define TLS_TX		1
#define TLS_RX		2
#define ETIMEDOUT	110
#define IPPROTO_TCP	6
#define HS_PAGE_SIZE	4096

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hs_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_CONNS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct hs_track);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_CONNS);
	__type(key, __u32);
	__type(value, struct hs_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HS_MAX_HIST);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hs_hist_key);
	__type(value, struct hs_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hs_pcpu);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HS_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HS_HIST_ROWS);
	__type(key, __u32);
	__type(value, struct hs_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_hist_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HS_HIST_ROWS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_hist_rowkey SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct hs_rowix);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hs_hist_rowix SEC(".maps");

/* A new histogram starts from this (too big for the stack). */
struct hs_hist hs_hist_zero = {};

/*
 * The kernel structures the USDT and release programs read, CO-RE
 * relocated against the running kernel's BTF (only the fields used; ___hs
 * is a flavor).
 */
struct in6_addr___hs {
	__u8 b[16];
};

struct sock_common___hs {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr___hs skc_v6_daddr;
	struct in6_addr___hs skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock___hs {
	struct sock_common___hs __sk_common;
} __attribute__((preserve_access_index));

struct socket___hs {
	void *sk;
} __attribute__((preserve_access_index));

struct file___hs {
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___hs {
	unsigned int max_fds;
	struct file___hs **fd;
} __attribute__((preserve_access_index));

struct files_struct___hs {
	struct fdtable___hs *fdt;
} __attribute__((preserve_access_index));

struct task_struct___hs {
	int tgid;
	char comm[HS_COMM_LEN];
	struct files_struct___hs *files;
} __attribute__((preserve_access_index));

/*
 * The current process's tgid and comm into an event. Two loads through
 * the BTF pointer: cheaper than bpf_get_current_comm()'s string copy, and
 * the same bytes (the kernel keeps comm NUL-padded).
 */
static __always_inline void hs_task(__u32 *pid, char *comm)
{
	struct task_struct___hs *t = (void *)bpf_get_current_task_btf();

	*pid = t->tgid;
	__builtin_memcpy(comm, t->comm, HS_COMM_LEN);
}

/* This CPU's counters; the scratch word before them is hs_sk_addr()'s. */
static __always_inline struct hs_stats *hs_stats_get(void)
{
	__u32 zero = 0;
	struct hs_pcpu *p = bpf_map_lookup_elem(&hs_stats, &zero);

	return p ? &p->stats : NULL;
}

/* Per-CPU counters, but atomic: a softirq may interrupt a syscall's run. */
#define HS_STAT_INC(s, field)					\
	do {							\
		if (s)						\
			__sync_fetch_and_add(&(s)->field, 1);	\
	} while (0)

/* ---- a connection's identity ---------------------------------------------- */

/* One 32-bit context load: clang must not merge neighbours into 64 bits. */
#define HS_CTX32(field) (*(volatile __u32 *)&(field))

static __always_inline void hs_addr4(__u8 *dst, __u32 a)
{
	__u32 w[4] = { 0, 0, bpf_htonl(0xffff), a };

	__builtin_memcpy(dst, w, 16);
}

static __always_inline void hs_addr6(__u8 *dst, __u32 a0, __u32 a1, __u32 a2, __u32 a3)
{
	__u32 w[4] = { a0, a1, a2, a3 };

	__builtin_memcpy(dst, w, 16);
}

static __always_inline void hs_conn_sockops(struct hs_conn *c, const struct bpf_sock_ops *o)
{
	c->pad = 0;
	c->family = (__u16)o->family;
	c->lport = (__u16)o->local_port;
	c->rport = (__u16)bpf_ntohl(o->remote_port);
	if (c->family == AF_INET6) {
		hs_addr6(c->laddr, HS_CTX32(o->local_ip6[0]), HS_CTX32(o->local_ip6[1]),
			 HS_CTX32(o->local_ip6[2]), HS_CTX32(o->local_ip6[3]));
		hs_addr6(c->raddr, HS_CTX32(o->remote_ip6[0]), HS_CTX32(o->remote_ip6[1]),
			 HS_CTX32(o->remote_ip6[2]), HS_CTX32(o->remote_ip6[3]));
	} else {
		hs_addr4(c->laddr, o->local_ip4);
		hs_addr4(c->raddr, o->remote_ip4);
	}
}

static __always_inline void hs_conn_sock(struct hs_conn *c, const struct bpf_sock *sk)
{
	c->pad = 0;
	c->family = (__u16)sk->family;
	c->lport = (__u16)sk->src_port;
	c->rport = bpf_ntohs(sk->dst_port);
	if (c->family == AF_INET6) {
		hs_addr6(c->laddr, HS_CTX32(sk->src_ip6[0]), HS_CTX32(sk->src_ip6[1]),
			 HS_CTX32(sk->src_ip6[2]), HS_CTX32(sk->src_ip6[3]));
		hs_addr6(c->raddr, HS_CTX32(sk->dst_ip6[0]), HS_CTX32(sk->dst_ip6[1]),
			 HS_CTX32(sk->dst_ip6[2]), HS_CTX32(sk->dst_ip6[3]));
	} else {
		hs_addr4(c->laddr, sk->src_ip4);
		hs_addr4(c->raddr, sk->dst_ip4);
	}
}

/*
 * From the kernel socket at @addr, for the release program, which may not
 * read ports or local addresses from its context. Only on the failure path.
 */
static __always_inline void hs_conn_kernel(struct hs_conn *c, __u64 addr)
{
	struct sock_common___hs *k = &((struct sock___hs *)addr)->__sk_common;
	__u32 a4;

	__builtin_memset(c, 0, sizeof(*c));
	c->family = BPF_CORE_READ(k, skc_family);
	c->lport = BPF_CORE_READ(k, skc_num);
	c->rport = bpf_ntohs(BPF_CORE_READ(k, skc_dport));
	if (c->family == AF_INET6) {
		bpf_core_read(c->laddr, 16, &k->skc_v6_rcv_saddr);
		bpf_core_read(c->raddr, 16, &k->skc_v6_daddr);
	} else {
		a4 = BPF_CORE_READ(k, skc_rcv_saddr);
		hs_addr4(c->laddr, a4);
		a4 = BPF_CORE_READ(k, skc_daddr);
		hs_addr4(c->raddr, a4);
	}
}

static __always_inline int hs_port_in(const __u16 *ports, __u32 n, __u16 port)
{
	int i;

	for (i = 0; i < HS_MAX_PORTS; i++) {
		if ((__u32)i >= n)
			break;
		if (ports[i] == port)
			return 1;
	}
	return 0;
}

/* Whether @cfg watches a connection on its side: the local or remote port. */
static __always_inline int hs_cfg_watches(const struct hs_config *cfg, int passive,
					  __u16 lport, __u16 rport)
{
	if (passive)
		return (cfg->flags & HS_CFG_ALL_PASSIVE) ||
		       hs_port_in(cfg->ports, cfg->nports, lport);
	return hs_port_in(cfg->active_ports, cfg->nactive, rport);
}

/*
 * Whether connection @c is one the configuration watches: a connected
 * socket (a listener has no remote port) on a watched port.
 */
static __always_inline int hs_watched(const struct hs_conn *c, int passive)
{
	__u32 zero = 0;
	const struct hs_config *cfg = bpf_map_lookup_elem(&hs_config, &zero);

	return cfg && c->rport && hs_cfg_watches(cfg, passive, c->lport, c->rport);
}

/* ---- the table of handshakes in progress ------------------------------------ */

/*
 * The address of a socket as a number, for hashing. The verifier forbids
 * arithmetic on a socket pointer but lets a privileged program store one
 * in a map; a load from there is a plain scalar. Never dereferenced. The
 * word sits next to this CPU's counters (@s, from hs_stats_get()): one
 * cache line less to fetch than a map of its own.
 */
static __always_inline __u64 hs_sk_addr(struct hs_stats *s, const void *sk)
{
	__u64 *v, a, b;
	int i;

	if (!s)
		return 0;
	v = (__u64 *)s - 1;	/* struct hs_pcpu's sk_addr */
	/*
	 * Another program on this CPU may store between our store and load
	 * (a softirq's sockops run interrupting a syscall's program), and
	 * kmtlsctl's reset rewrites the whole value: keep only what compares
	 * equal to @sk (a privileged program may compare a pointer).
	 */
	for (i = 0; i < 3; i++) {
		*(const void *volatile *)v = sk;
		a = *(volatile __u64 *)v;
		/* An opaque copy: clang must not return @sk itself for "a". */
		b = a;
		asm volatile("" : "+r"(b));
		if (a == (__u64)sk)
			return b;
	}
	return 0;
}

/* The slot of the connection on socket @sk (its index in @idx), or NULL. */
static __always_inline struct hs_track *hs_find(__u64 sk, __u32 *idx)
{
	__u32 h = hs_conn_hash(sk), i;
	struct hs_track *t;

#pragma unroll
	for (i = 0; i < HS_PROBES; i++) {
		*idx = h | i;
		t = bpf_map_lookup_elem(&hs_conns, idx);
		if (t && (t->key & ~HS_K_BITS) == sk)
			return t;
	}
	return NULL;
}

/*
 * Take a slot for socket @sk (HS_K_PASSIVE in @bits) established at @now:
 * its index, or -1 when all HS_PROBES are in use. The key goes in with
 * HS_K_BUSY first, then the time, then the key without it: another CPU
 * taking a slot in the same bucket skips a busy one, so neither a loser of
 * the race nor a stale check ever sees one tenant's key with another's
 * time. (The connection's own markers come after accept() or connect(),
 * when the key is complete.)
 */
static __always_inline int hs_insert(__u64 sk, __u64 bits, __u64 now, struct hs_stats *s)
{
	__u32 h = hs_conn_hash(sk), i, idx;
	struct hs_track *t;
	__u64 old;

#pragma unroll
	for (i = 0; i < HS_PROBES; i++) {
		idx = h | i;
		t = bpf_map_lookup_elem(&hs_conns, &idx);
		if (!t)
			continue;
		old = t->key;
		if (old & HS_K_BUSY)
			continue;	/* another CPU is taking it */
		/* Signed: a time after ours (taken meanwhile) is fresh, not stale. */
		if (old && !(old & HS_K_CLAIMED) && (old & ~HS_K_BITS) != sk &&
		    (__s64)(now - t->est_ns) < (__s64)HS_STALE_NS)
			continue;	/* a handshake in progress */
		if (__sync_val_compare_and_swap(&t->key, old, sk | bits | HS_K_BUSY) != old)
			continue;	/* another CPU took it first */
		t->est_ns = now;
		/* Only a clear by kmtlsctl (attach, detach) can come between. */
		__sync_val_compare_and_swap(&t->key, sk | bits | HS_K_BUSY, sk | bits);
		if (old && !(old & HS_K_CLAIMED) && (old & ~HS_K_BITS) != sk)
			HS_STAT_INC(s, stale);
		return (int)idx;
	}
	return -1;
}

/*
 * Claim @t, found holding @sk, adding @extra (HS_K_SOCKOPT) to its key:
 * 1 when this caller is the first marker (the time and side are then in
 * @est_ns and @passive); 0 when claimed before (the key seen in @key);
 * -1 when the slot went to another socket meanwhile. The time is read
 * before the swap: after it, the slot may be taken again.
 */
static __always_inline int hs_claim(struct hs_track *t, __u64 sk, __u64 extra, __u64 *est_ns,
				    int *passive, __u64 *key)
{
	__u64 old;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		old = t->key;
		*key = old;
		*est_ns = t->est_ns;
		if ((old & ~HS_K_BITS) != sk)
			return -1;
		if (old & HS_K_CLAIMED)
			return 0;
		if (__sync_val_compare_and_swap(&t->key, old, old | HS_K_CLAIMED | extra) == old) {
			*passive = !!(old & HS_K_PASSIVE);
			return 1;
		}
		/* Another marker raced us: look again, it has the claim now. */
	}
	return -1;
}

struct hs_row_take {
	__u32 want;	/* hs_rowkey() of the pair */
	int row;	/* out: its row, or -1 */
};

/* bpf_loop() callback: row @r if it is free (taken now) or already the pair's. */
static long hs_row_try(__u32 r, void *data)
{
	struct hs_row_take *take = data;
	__u32 key = r, old, *rk = bpf_map_lookup_elem(&hs_hist_rowkey, &key);

	if (!rk)
		return 1;
	old = *rk ? *rk : __sync_val_compare_and_swap(rk, 0, take->want);
	if (old && old != take->want)
		return 0;
	take->row = (int)r;
	return 1;
}

/*
 * The "ok" row of (@port, @active) in hs_hist_rows, taken on first use;
 * -1 when all rows are taken (see hs_latency.h).
 */
static __always_inline int hs_row(__u16 port, int active)
{
	__u32 k = port;
	struct hs_rowix *ix = bpf_map_lookup_elem(&hs_hist_rowix, &k);
	struct hs_row_take take = { .want = hs_rowkey(port, active), .row = -1 };
	__u32 r;

	if (!ix)
		return -1;
	r = ix->row1[active & 1];
	if (r == HS_ROW_NONE)
		return -1;
	if (r)
		return (int)r - 1;
	/* A pair's first ok only. bpf_loop: 6.12's verifier rejects the plain loop. */
	bpf_loop(HS_HIST_ROWS, hs_row_try, &take, 0);
	ix->row1[active & 1] = take.row >= 0 ? (__u16)(take.row + 1) : HS_ROW_NONE;
	return take.row;
}

static __always_inline void hs_count(const struct hs_conn *c, int passive, __u8 outcome,
				     __u64 lat_ns, struct hs_stats *s)
{
	struct hs_hist_key hk = {
		.port = passive ? c->lport : c->rport,
		.active = !passive,
		.outcome = outcome,
	};
	struct hs_hist *h = NULL;
	__u32 slot;
	int row;

	if (outcome == HS_OK) {
		row = hs_row(hk.port, !passive);
		if (row >= 0)
			h = bpf_map_lookup_elem(&hs_hist_rows, &row);
	}
	if (!h)
		h = bpf_map_lookup_elem(&hs_hist, &hk);
	if (!h) {
		bpf_map_update_elem(&hs_hist, &hk, &hs_hist_zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hs_hist, &hk);
		if (!h) {
			HS_STAT_INC(s, hist_full);
			return;
		}
	}
	slot = hs_slot(lat_ns / 1000);
	if (slot >= HS_SLOTS)
		slot = HS_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, lat_ns);
}

/*
 * @size bytes of hs_events, counted in @s (events, or events_dropped when
 * the ring is full: NULL); *@nth is this CPU's event count before it.
 */
static __always_inline void *hs_reserve(const __u32 size, struct hs_stats *s, __u64 *nth)
{
	void *r = bpf_ringbuf_reserve(&hs_events, size, 0);

	if (!r) {
		HS_STAT_INC(s, events_dropped);
		return NULL;
	}
	*nth = s ? __sync_fetch_and_add(&s->events, 1) : 0;
	return r;
}

/*
 * An event with the fields every source fills; NULL when the ring is full.
 * USDT's (with the cipher) only: the others write struct hs_event4 or
 * HS_EVENT_SHORT, see hs_emit(). Sets *@nth to this CPU's event count
 * before it.
 */
static __always_inline struct hs_event *
hs_event_new(const struct hs_conn *c, int passive, __u8 outcome, __u8 source, __u64 now,
	     __u64 lat_ns, struct hs_stats *s, const __u32 size, __u64 *nth)
{
	struct hs_event *e = hs_reserve(HS_EVENT_RECORD(size), s, nth);

	if (!e)
		return NULL;
	__builtin_memset(e, 0, size);
	e->ts_ns = now;
	e->latency_ns = lat_ns;
	e->family = c->family;
	e->lport = c->lport;
	e->rport = c->rport;
	e->outcome = outcome;
	e->source = source;
	e->flags = passive ? HS_EV_PASSIVE : 0;
	__builtin_memcpy(e->laddr, c->laddr, 16);
	__builtin_memcpy(e->raddr, c->raddr, 16);
	return e;
}

/*
 * A wakeup is an irq_work (a self-IPI, a VM exit under virtualization):
 * microseconds, more than everything else here together. So the reader is
 * only woken when the ring is a quarter full; otherwise it finds the events
 * at its next poll timeout (kmtlsctl reads every 100 ms). The fill level
 * is read every 64th event of a CPU (@nth): it sits on the reader's cache
 * line, a miss each time.
 */
static __always_inline void hs_event_submit(struct hs_event *e, __u64 nth)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (!(nth & 63) &&
	    bpf_ringbuf_query(&hs_events, BPF_RB_AVAIL_DATA) >= HS_RINGBUF_BYTES / 4)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/*
 * The event of a marker other than USDT, with the current process (the one
 * installing keys or closing). An IPv4 connection's fits in one cache line
 * with the ring's header (struct hs_event4); others end before the cipher.
 * Records are whole cache lines (HS_EVENT_RECORD): each event writes the
 * fewest lines it can.
 */
static __always_inline void hs_emit(const struct hs_conn *c, int passive, __u8 outcome,
				    __u8 source, __u64 now, __u64 lat_ns, struct hs_stats *s)
{
	struct hs_event4 *e4;
	struct hs_event *e;
	__u64 nth;

	if (c->family != AF_INET) {
		e = hs_event_new(c, passive, outcome, source, now, lat_ns, s, HS_EVENT_SHORT,
				 &nth);
		if (!e)
			return;
		hs_task(&e->pid, e->comm);
		hs_event_submit(e, nth);
		return;
	}
	e4 = hs_reserve(sizeof(*e4), s, &nth);
	if (!e4)
		return;
	e4->ts_ns = now;
	e4->latency_ns = lat_ns;
	e4->lport = c->lport;
	e4->rport = c->rport;
	__builtin_memcpy(&e4->laddr, c->laddr + 12, 4);
	__builtin_memcpy(&e4->raddr, c->raddr + 12, 4);
	e4->outcome = outcome;
	e4->source = source;
	e4->flags = passive ? HS_EV_PASSIVE : 0;
	__builtin_memset(e4->pad, 0, sizeof(e4->pad));
	hs_task(&e4->pid, e4->comm);
	hs_event_submit((struct hs_event *)e4, nth);
}

/* ---- sockops ---------------------------------------------------------------- */

static __always_inline int hs_established(struct bpf_sock_ops *skops, int passive)
{
	struct bpf_sock *sk = skops->sk;
	const struct hs_config *cfg;
	struct hs_addr *a;
	struct hs_stats *s;
	__u32 zero = 0;
	__u64 addr, now;
	int idx;

	cfg = bpf_map_lookup_elem(&hs_config, &zero);
	if (!cfg || !sk)
		return 1;
	if (!hs_cfg_watches(cfg, passive, (__u16)skops->local_port,
			    (__u16)bpf_ntohl(skops->remote_port)))
		return 1;
	s = hs_stats_get();
	addr = hs_sk_addr(s, sk);
	now = bpf_ktime_get_ns();
	idx = addr ? hs_insert(addr, passive ? HS_K_PASSIVE : 0, now, s) : -1;
	if (idx < 0) {
		HS_STAT_INC(s, table_full);
		return 1;
	}
	if (cfg->flags & HS_CFG_USDT) {
		a = bpf_map_lookup_elem(&hs_addrs, &idx);
		if (a) {
			hs_conn_sockops(&a->conn, skops);
			a->est_ns = now;
		}
	}
	HS_STAT_INC(s, tracked);
	return 1;
}

SEC("sockops")
int hs_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return hs_established(skops, 1);
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		return hs_established(skops, 0);
	default:
		return 1;
	}
}

/* ---- cgroup/sock_release ------------------------------------------------- */

/*
 * The application closes a socket: a tracked connection not claimed by a
 * marker is a failed handshake. Either way its slot is free after this.
 */
SEC("cgroup/sock_release")
int hs_release(struct bpf_sock *sk)
{
	struct hs_stats *s;
	struct hs_track *t;
	struct hs_conn c;
	__u64 addr, now, key, est;
	__u32 idx;

	if (sk->protocol != IPPROTO_TCP)
		return 1;
	s = hs_stats_get();
	addr = hs_sk_addr(s, sk);
	t = addr ? hs_find(addr, &idx) : NULL;
	if (!t)
		return 1;
	/*
	 * Claim and free in one swap: unclaimed, we are its first marker;
	 * claimed, freeing it keeps a later socket at this address from
	 * counting "late". Losing the race to a marker on another CPU leaves
	 * the slot claimed, which is free for new connections anyway.
	 */
	key = t->key;
	est = t->est_ns;
	if ((key & ~HS_K_BITS) != addr ||
	    __sync_val_compare_and_swap(&t->key, key, 0) != key || (key & HS_K_CLAIMED))
		return 1;
	hs_conn_kernel(&c, addr);
	if (!hs_watched(&c, !!(key & HS_K_PASSIVE))) {
		/*
		 * The slot of a socket that died without a release (a child
		 * still in the accept queue when its listener closed), found
		 * by another socket the allocator put at its address.
		 */
		HS_STAT_INC(s, stale);
		return 1;
	}
	now = bpf_ktime_get_ns();
	hs_count(&c, !!(key & HS_K_PASSIVE), HS_CLOSED, now - est, s);
	HS_STAT_INC(s, by_close);
	hs_emit(&c, !!(key & HS_K_PASSIVE), HS_CLOSED, HS_SRC_CLOSE, now, now - est, s);
	return 1;
}

/* ---- cgroup/setsockopt ------------------------------------------------------ */

SEC("cgroup/setsockopt")
int hs_setsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct hs_stats *s;
	struct hs_track *t;
	struct hs_conn c;
	__u64 addr, now, est, key;
	int passive = 0, first;
	__u32 idx;

	/*
	 * Over a page the kernel gave us only a prefix: 0 tells it to use
	 * the caller's buffer as it is (kernel selftests' sockopt_sk idiom).
	 */
	if (ctx->optlen > HS_PAGE_SIZE)
		ctx->optlen = 0;
	if (ctx->level != SOL_TLS || (ctx->optname != TLS_TX && ctx->optname != TLS_RX) || !sk)
		return 1;
	s = hs_stats_get();
	addr = hs_sk_addr(s, sk);
	t = addr ? hs_find(addr, &idx) : NULL;
	first = t ? hs_claim(t, addr, HS_K_SOCKOPT, &est, &passive, &key) : -1;
	if (first < 0) {
		HS_STAT_INC(s, ktls_untracked);
		return 1;
	}
	if (!first) {
		/* Claimed by USDT: late, once; by our TLS_TX: TLS_RX, nothing. */
		if (!(key & HS_K_SOCKOPT) &&
		    __sync_val_compare_and_swap(&t->key, key, key | HS_K_SOCKOPT) == key)
			HS_STAT_INC(s, late);
		return 1;
	}
	now = bpf_ktime_get_ns();
	hs_conn_sock(&c, sk);
	hs_count(&c, passive, HS_OK, now - est, s);
	HS_STAT_INC(s, by_ktls);
	hs_emit(&c, passive, HS_OK, HS_SRC_KTLS, now, now - est, s);
	return 1;
}

/* ---- USDT kmtls:handshake_done ---------------------------------------------- */

/* The kernel socket behind file descriptor @fd of this process, or 0. */
static __always_inline __u64 hs_sk_of_fd(int fd)
{
	struct task_struct___hs *task = (void *)bpf_get_current_task();
	struct fdtable___hs *fdt = BPF_CORE_READ(task, files, fdt);
	struct file___hs **fds, *file;
	struct socket___hs *sock;

	if (fd < 0 || !fdt || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	return sock ? (__u64)BPF_CORE_READ(sock, sk) : 0;
}

/*
 * Arguments are fetched one by one, each only when needed: the probe also
 * fires for kmtlsd processes outside the cgroup, which need only the fd.
 *   0 fd, 1 status, 2 duration_ns, 3 tls_version, 4 cipher, 5 resumed
 */
SEC("usdt")
int hs_usdt_done(struct pt_regs *ctx)
{
	struct hs_stats *s = hs_stats_get();
	long fd = -1, status = 0, arg = 0;
	__u8 outcome = HS_OK;
	struct hs_event *e;
	struct hs_addr *a;
	struct hs_track *t;
	struct hs_conn pc;
	__u64 sk, now, est, key, nth;
	int passive = 0, first;
	__u32 idx = 0;

	bpf_usdt_arg(ctx, 0, &fd);
	sk = hs_sk_of_fd((int)fd);
	t = sk ? hs_find(sk, &idx) : NULL;
	a = t ? bpf_map_lookup_elem(&hs_addrs, &idx) : NULL;
	/*
	 * The addresses first: once claimed, the slot may be taken again.
	 * None when it was established before USDT was attached: then its
	 * close counts it.
	 */
	if (a)
		__builtin_memcpy(&pc, &a->conn, sizeof(pc));
	if (!a || a->est_ns != t->est_ns) {
		HS_STAT_INC(s, usdt_untracked);
		return 0;
	}
	first = hs_claim(t, sk, 0, &est, &passive, &key);
	if (first <= 0) {
		if (first)
			HS_STAT_INC(s, usdt_untracked);
		else
			HS_STAT_INC(s, late);
		return 0;
	}
	now = bpf_ktime_get_ns();
	bpf_usdt_arg(ctx, 1, &status);
	status = (int)status;
	if (status == ETIMEDOUT)
		outcome = HS_TIMEOUT;
	else if (status)
		outcome = HS_FAILED;
	hs_count(&pc, passive, outcome, now - est, s);
	HS_STAT_INC(s, by_usdt);
	e = hs_event_new(&pc, passive, outcome, HS_SRC_USDT, now, now - est, s,
			 sizeof(struct hs_event), &nth);
	if (!e)
		return 0;
	e->status = (__s32)status;
	if (!bpf_usdt_arg(ctx, 2, &arg))
		e->agent_ns = (__u64)arg;
	if (!bpf_usdt_arg(ctx, 3, &arg))
		e->tls_version = (__u16)arg;
	if (!bpf_usdt_arg(ctx, 5, &arg) && arg)
		e->flags |= HS_EV_RESUMED;
	/*
	 * wolfSSL's cipher names are constant strings: one fixed-size copy,
	 * cheaper than a string copy; near the end of a mapping it can fail,
	 * then the string copy.
	 */
	if (!bpf_usdt_arg(ctx, 4, &arg) && arg &&
	    bpf_probe_read_user(e->cipher, sizeof(e->cipher) - 1, (const void *)arg))
		bpf_probe_read_user_str(e->cipher, sizeof(e->cipher), (const void *)arg);
	hs_task(&e->pid, e->comm);
	hs_event_submit(e, nth);
	return 0;
}
