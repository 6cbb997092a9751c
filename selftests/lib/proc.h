/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMTLS_SELFTEST_PROC_H
#define KMTLS_SELFTEST_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* A program started by a test, its output captured in a log file. */
struct proc {
	pid_t pid;
	char log[256];
};

/* Start argv[0] (searched in PATH when it has no slash; NULL-terminated
 * argv) with stdout+stderr into p->log. */
int proc_start(struct proc *p, const char *logname, char *const argv[]);

/* Wait until the log contains needle; 0 when seen, -1 on timeout or exit. */
int proc_wait_log(struct proc *p, const char *needle, int timeout_ms);

/* Occurrences of needle in the log so far. */
int proc_log_count(struct proc *p, const char *needle);

/* SIGTERM, then SIGKILL after grace_ms; returns the exit status or -1. */
int proc_stop(struct proc *p, int grace_ms);

/* Send a signal. */
int proc_signal(struct proc *p, int sig);

/* CPU time of process @pid so far, in clock ticks (utime + stime), or -1. */
long proc_cpu_ticks(pid_t pid);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int free_port(void);

/* A TCP listener on 127.0.0.1, port chosen by the kernel: fd (port in @port), or -1. */
int listen_lo(int *port);

/* "$KMTLS_OUT/<rel>" (default build/out) in a rotating static buffer. */
const char *out_path(const char *rel);

/* A fresh temporary directory for this process (mkdtemp), removed with all
 * in it when the test binary exits; KMTLS_KEEP_TMP=1 keeps it. */
const char *test_tmpdir(void);

#endif
