// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmtlsd.h"
#include "tls_pair.h"

int kmtlsd_start(struct kmtlsd *d, int backend_port, const char *const *extra)
{
	char listen[64], backend[64], *argv[64];
	int n = 0, i;

	memset(d, 0, sizeof(*d));
	d->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
	snprintf(backend, sizeof(backend), "127.0.0.1:%d", backend_port);
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
	if (proc_start(&d->proc, "kmtlsd.log", argv))
		return -1;
	return proc_wait_log(&d->proc, "listening on", 10000);
}

int kmtlsd_stop(struct kmtlsd *d)
{
	if (d->proc.pid <= 0)
		return 0;
	return proc_stop(&d->proc, 10000);
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
