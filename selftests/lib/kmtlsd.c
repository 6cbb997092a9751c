// SPDX-License-Identifier: GPL-2.0-or-later
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kmtlsd.h"

/*
 * $KMTLS_WRAP: a command line put before kmtlsd (split on blanks, no
 * quoting), e.g. "valgrind --error-exitcode=99 --leak-check=full". A wrapped
 * daemon is much slower: it gets longer to start and to stop.
 */
static int add_wrap(char **argv, int max)
{
	static char buf[1024];
	const char *w = getenv("KMTLS_WRAP");
	char *tok, *save;
	int n = 0;

	if (!w || !*w)
		return 0;
	snprintf(buf, sizeof(buf), "%s", w);
	for (tok = strtok_r(buf, " \t", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t", &save))
		argv[n++] = tok;
	return n;
}

static int wrapped(void)
{
	const char *w = getenv("KMTLS_WRAP");

	return w && *w;
}

int kmtlsd_start_timeout_ms(void)
{
	return wrapped() ? 120000 : 10000;
}

/* One log file per daemon: tests run several side by side. */
static const char *next_log_name(void)
{
	static char name[32];
	static int n;

	snprintf(name, sizeof(name), "kmtlsd-%d.log", ++n);
	return name;
}
#include "tls_pair.h"

int kmtlsd_start(struct kmtlsd *d, int backend_port, const char *const *extra)
{
	char listen[64], backend[64], *argv[64];
	int n = 0, i;

	memset(d, 0, sizeof(*d));
	d->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", backend_port);
	n = add_wrap(argv, 32);
	argv[n++] = (char *)out_path("bin/kmtlsd");
	argv[n++] = "--foreground";
	argv[n++] = "--workers";
	argv[n++] = "1";
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--backend";
	argv[n++] = backend;
	argv[n++] = "--cert";
	argv[n++] = (char *)pki("server.pem");
	argv[n++] = "--key";
	argv[n++] = (char *)pki("server.key");
	argv[n++] = "--ca";
	argv[n++] = (char *)pki("ca.pem");
	for (i = 0; extra && extra[i] && n < 63; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	if (proc_start(&d->proc, next_log_name(), argv))
		return -1;
	return proc_wait_log(&d->proc, "listening on", kmtlsd_start_timeout_ms());
}

int kmtlsd_run(struct kmtlsd *d, int port, const char *const *args)
{
	char *argv[64];
	int n = 0, i;

	memset(d, 0, sizeof(*d));
	d->port = port;
	n = add_wrap(argv, 32);
	argv[n++] = (char *)out_path("bin/kmtlsd");
	argv[n++] = "--foreground";
	argv[n++] = "--workers";
	argv[n++] = "1";
	argv[n++] = "--log-level";
	argv[n++] = "debug";
	for (i = 0; args && args[i] && n < 63; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	if (proc_start(&d->proc, next_log_name(), argv))
		return -1;
	return proc_wait_log(&d->proc, "listening on", kmtlsd_start_timeout_ms());
}

int kmtlsd_reload(struct kmtlsd *d, int nth)
{
	int i;

	proc_signal(&d->proc, SIGHUP);
	for (i = 0; i < 250 && proc_log_count(&d->proc, "reloaded certificates") < nth; i++)
		usleep(20000);
	return proc_log_count(&d->proc, "reloaded certificates") == nth ? 0 : -1;
}

int kmtlsd_stop(struct kmtlsd *d)
{
	int rc;

	if (d->proc.pid <= 0)
		return 0;
	rc = proc_stop(&d->proc, kmtlsd_start_timeout_ms());
	/* Its log says why; a teardown that checks the status prints nothing else. */
	if (rc < 0)
		fprintf(stderr, "# kmtlsd: still running %d ms after SIGTERM: killed\n",
			kmtlsd_start_timeout_ms());
	else if (rc)
		fprintf(stderr, "# kmtlsd: exit status %d after SIGTERM\n", rc);
	if (rc)
		kmtlsd_dump_log(d);
	return rc;
}

int kmtlsd_wait_log(struct kmtlsd *d, const char *needle, int timeout_ms)
{
	return proc_wait_log(&d->proc, needle, timeout_ms);
}

void kmtlsd_dump_log(struct kmtlsd *d)
{
	char line[1024];
	FILE *f = fopen(d->proc.log, "r");

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "# kmtlsd: %s", line);
	if (f)
		fclose(f);
}
