/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmtls - tracepoints, one at every state transition of a request
 *
 *   kmtls:kmtls_submit      queued (status 0) or refused (-ESRCH, -EAGAIN)
 *   kmtls:kmtls_accept      an agent took it (agent = its netlink port id)
 *   kmtls:kmtls_done        the agent reported (status 0 or its errno)
 *   kmtls:kmtls_timeout     deadline (-ETIMEDOUT) or no agent (-ESRCH)
 *   kmtls:kmtls_cancel      the submitter closed its file (-ECANCELED)
 *   kmtls:kmtls_agent_lost  the accepting agent went away (-ECONNABORTED)
 *
 * Every event carries the request id, the socket cookie (SO_COOKIE), the
 * role, the status and the microseconds since submission.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kmtls

#if !defined(_KMTLS_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _KMTLS_TRACE_H

#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/tracepoint.h>
#include <net/net_namespace.h>

#include "kmtls.h"

TRACE_DEFINE_ENUM(KMTLS_ROLE_CLIENT);
TRACE_DEFINE_ENUM(KMTLS_ROLE_SERVER);

#define show_kmtls_role(role)					\
	__print_symbolic(role,					\
			 { KMTLS_ROLE_CLIENT, "client" },	\
			 { KMTLS_ROLE_SERVER, "server" })

DECLARE_EVENT_CLASS(kmtls_req_class,
		    TP_PROTO(const struct kmtls_req *req, int status),
		    TP_ARGS(req, status),
		    TP_STRUCT__entry(__field(u64, id)
				     __field(u64, cookie)
				     __field(u64, elapsed_us)
				     __field(unsigned int, netns_ino)
				     __field(u32, role)
				     __field(u32, agent)
				     __field(int, status)),
		    TP_fast_assign(__entry->id = req->kr_result.id;
				   __entry->cookie = req->kr_result.sock_cookie;
				   __entry->elapsed_us =
					div_u64(ktime_get_ns() - req->kr_start_ns,
						NSEC_PER_USEC);
				   __entry->netns_ino = req->kr_net->ns.inum;
				   __entry->role = req->kr_role;
				   __entry->agent = req->kr_portid;
				   __entry->status = status;),
		    TP_printk("id=%llu cookie=%llu role=%s status=%d elapsed_us=%llu agent=%u netns=%u",
			      __entry->id, __entry->cookie,
			      show_kmtls_role(__entry->role), __entry->status,
			      __entry->elapsed_us, __entry->agent,
			      __entry->netns_ino)
);

#define DEFINE_KMTLS_REQ_EVENT(name)				\
	DEFINE_EVENT(kmtls_req_class, name,			\
		TP_PROTO(const struct kmtls_req *req, int status),	\
		TP_ARGS(req, status))

DEFINE_KMTLS_REQ_EVENT(kmtls_submit);
DEFINE_KMTLS_REQ_EVENT(kmtls_accept);
DEFINE_KMTLS_REQ_EVENT(kmtls_done);
DEFINE_KMTLS_REQ_EVENT(kmtls_timeout);
DEFINE_KMTLS_REQ_EVENT(kmtls_cancel);
DEFINE_KMTLS_REQ_EVENT(kmtls_agent_lost);

#endif /* _KMTLS_TRACE_H */

/* Out of tree: define_trace.h finds this file in the module directory */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE kmtls_trace
#include <trace/define_trace.h>
