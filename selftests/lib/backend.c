// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

int backend_start(struct backend *b, const char *const *args)
{
	char ready[300], listen[64], logname[48], *argv[32];
	int n = 0, i, waited;
	FILE *f;

	memset(b, 0, sizeof(*b));
	b->port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", b->port);
	snprintf(b->report, sizeof(b->report), "%s/backend-%d.jsonl", test_tmpdir(), b->port);
	snprintf(ready, sizeof(ready), "%s/backend-%d.ready", test_tmpdir(), b->port);
	argv[n++] = (char *)out_path("selftests/progs/test_backend");
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--report";
	argv[n++] = b->report;
	argv[n++] = "--ready-file";
	argv[n++] = ready;
	for (i = 0; args && args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	snprintf(logname, sizeof(logname), "backend-%d.log", b->port);
	if (proc_start(&b->proc, logname, argv))
		return -1;
	for (waited = 0; waited < 5000; waited += 10) {
		f = fopen(ready, "r");
		if (f) {
			fclose(f);
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

void backend_stop(struct backend *b)
{
	proc_stop(&b->proc, 3000);
}

json_object *backend_report_line(struct backend *b, int n)
{
	FILE *f = fopen(b->report, "r");
	char *line = NULL;
	size_t cap = 0;
	json_object *o = NULL;
	int i = 0;

	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0) {
		if (i++ == n) {
			o = json_tokener_parse(line);
			break;
		}
	}
	free(line);
	fclose(f);
	return o;
}

static long totals(struct backend *b, const char *key)
{
	json_object *o;
	long v = -1;
	int i;

	for (i = 0; (o = backend_report_line(b, i)); i++) {
		if (json_object_object_get_ex(o, "total_bytes", NULL))
			v = jint(o, key);
		json_object_put(o);
	}
	return v;
}

long backend_total_bytes(struct backend *b)
{
	return totals(b, "total_bytes");
}

long backend_conns(struct backend *b)
{
	return totals(b, "conns");
}

int backend_wait_conns(struct backend *b, int n, int timeout_ms)
{
	json_object *o;
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		o = backend_report_line(b, n - 1);
		if (o) {
			json_object_put(o);
			return 0;
		}
		usleep(20000);
	}
	return -1;
}

const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

long jint(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return -1;
	return (long)json_object_get_int64(v);
}
