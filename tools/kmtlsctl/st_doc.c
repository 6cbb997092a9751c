// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtlsd's /status document as kmtlsctl status and stats read it. Every
 * field they use is checked before anything is printed: strings are
 * strings, lists are lists, counts are whole and not negative. What they print,
 * in text and in --json, comes from a copy that holds only those fields,
 * so a document of another shape is one error that names the field (not
 * a json-c assertion, not a silent 0) and the JSON output has one shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "st.h"

enum kind {
	K_STR,
	K_COUNT,	/* a whole number, 0 to INT64_MAX */
	K_INT,		/* a whole number */
	K_BOOL,
	K_OBJ,
	K_OBJ_OR_NULL,
	K_LIST,		/* of objects with the fields of @sub */
	K_STRS,		/* a list of strings */
};

struct field {
	const char *key;
	enum kind kind;
	int optional;			/* may be absent (and stays absent) */
	const struct field *sub;	/* K_OBJ, K_OBJ_OR_NULL, K_LIST */
};

#define NEED(k, t)	{ k, t, 0, NULL }
#define MAY(k, t)	{ k, t, 1, NULL }
#define SUB(k, t, s)	{ k, t, 0, s }

static const struct field total_hs[] = {
	NEED("ok", K_COUNT), NEED("failed", K_COUNT), NEED("resumed", K_COUNT),
	MAY("sum_us", K_COUNT), { 0 }
};

static const struct field listener_hs[] = {
	NEED("ok", K_COUNT), NEED("failed", K_COUNT), NEED("resumed", K_COUNT), { 0 }
};

static const struct field listener[] = {
	NEED("name", K_STR), NEED("listen", K_STR), NEED("backend", K_STR),
	NEED("mode", K_STR), NEED("active", K_COUNT), MAY("max_connections", K_COUNT),
	NEED("accepted", K_COUNT), SUB("handshakes", K_OBJ, listener_hs),
	NEED("ktls", K_COUNT), NEED("fallback", K_COUNT), NEED("ktls_refused", K_COUNT),
	NEED("backend_failed", K_COUNT), NEED("capped", K_COUNT),
	NEED("closes_unacked", K_COUNT), { 0 }
};

static const struct field kservice_hs[] = {
	NEED("ok", K_COUNT), NEED("failed", K_COUNT), { 0 }
};

static const struct field kservice[] = {
	NEED("profiles", K_STRS), SUB("handshakes", K_OBJ, kservice_hs),
	NEED("attached", K_BOOL), NEED("state", K_STR), { 0 }
};

static const struct field document[] = {
	/* Negative after the clock went back: the caller says so. */
	NEED("version", K_STR), MAY("started", K_COUNT), NEED("uptime_s", K_INT),
	NEED("workers", K_COUNT), NEED("accepted", K_COUNT), NEED("active", K_COUNT),
	SUB("handshakes", K_OBJ, total_hs), NEED("ktls", K_COUNT),
	NEED("fallback", K_COUNT), NEED("ktls_refused", K_COUNT),
	NEED("backend_failed", K_COUNT), NEED("key_updates", K_COUNT),
	NEED("capped", K_COUNT), NEED("closes_unacked", K_COUNT),
	NEED("bytes_client_to_backend", K_COUNT), NEED("bytes_backend_to_client", K_COUNT),
	SUB("listeners", K_LIST, listener), SUB("kernel_service", K_OBJ_OR_NULL, kservice),
	{ 0 }
};

static json_object *take_obj(json_object *in, const struct field *fs, const char *path,
			     char *err, size_t errlen);

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
	snprintf(err, errlen, "%s %s", path, what);
	return -1;
}

static int is(json_object *v, json_type t)
{
	return json_object_is_type(v, t);
}

/* A string of @v: a copy, embedded NULs and all. */
static json_object *str_copy(json_object *v)
{
	return json_object_new_string_len(json_object_get_string(v),
					  json_object_get_string_len(v));
}

/* An element of a K_LIST or K_STRS list. */
static json_object *take_elem(json_object *e, const struct field *f, const char *at,
			      char *err, size_t errlen)
{
	if (f->kind == K_STRS) {
		if (is(e, json_type_string))
			return str_copy(e);
		bad(err, errlen, at, "is not a string");
		return NULL;
	}
	if (is(e, json_type_object))
		return take_obj(e, f->sub, at, err, errlen);
	bad(err, errlen, at, "is not an object");
	return NULL;
}

/* @v as field @f (at @path) into a new value in *@out: 0, or -1 with @err. */
static int take(json_object *v, const struct field *f, const char *path, json_object **out,
		char *err, size_t errlen)
{
	char at[300];
	size_t i, n;

	*out = NULL;
	switch (f->kind) {
	case K_STR:
		if (!is(v, json_type_string))
			return bad(err, errlen, path, "is not a string");
		*out = str_copy(v);
		return 0;
	case K_COUNT:
	case K_INT:
		if (!is(v, json_type_int))
			return bad(err, errlen, path, "is not a whole number");
		if (f->kind == K_COUNT && json_object_get_int64(v) < 0) {
			snprintf(err, errlen, "%s is negative (%lld)", path,
				 (long long)json_object_get_int64(v));
			return -1;
		}
		if (json_object_get_uint64(v) > INT64_MAX)
			return bad(err, errlen, path, "is larger than any number kmtlsd keeps");
		*out = json_object_new_int64(json_object_get_int64(v));
		return 0;
	case K_BOOL:
		if (!is(v, json_type_boolean))
			return bad(err, errlen, path, "is not true or false");
		*out = json_object_new_boolean(json_object_get_boolean(v));
		return 0;
	case K_OBJ:
	case K_OBJ_OR_NULL:
		if (!v && f->kind == K_OBJ_OR_NULL)
			return 0;
		if (!is(v, json_type_object))
			return bad(err, errlen, path, f->kind == K_OBJ ? "is not an object" :
				   "is neither an object nor null");
		*out = take_obj(v, f->sub, path, err, errlen);
		return *out ? 0 : -1;
	case K_LIST:
	case K_STRS:
		if (!is(v, json_type_array))
			return bad(err, errlen, path, "is not a list");
		*out = json_object_new_array();
		n = json_object_array_length(v);
		for (i = 0; i < n; i++) {
			json_object *c;

			if (snprintf(at, sizeof(at), "%s[%zu]", path, i) >= (int)sizeof(at))
				return bad(err, errlen, path, "is nested too deep");
			c = take_elem(json_object_array_get_idx(v, i), f, at, err, errlen);
			if (!c) {
				json_object_put(*out);
				*out = NULL;
				return -1;
			}
			json_object_array_add(*out, c);
		}
		return 0;
	}
	return bad(err, errlen, path, "has no known type");
}

static json_object *take_obj(json_object *in, const struct field *fs, const char *path,
			     char *err, size_t errlen)
{
	json_object *o = json_object_new_object(), *v, *c;
	char at[300];

	for (; fs->key; fs++) {
		if (snprintf(at, sizeof(at), "%s%s%s", path, *path ? "." : "", fs->key) >=
		    (int)sizeof(at)) {
			bad(err, errlen, path, "is nested too deep");
			goto fail;
		}
		if (!json_object_object_get_ex(in, fs->key, &v)) {
			if (fs->optional)
				continue;
			bad(err, errlen, at, "is missing");
			goto fail;
		}
		if (take(v, fs, at, &c, err, errlen))
			goto fail;
		json_object_object_add(o, fs->key, c);
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

json_object *st_doc_check(json_object *doc, char *err, size_t errlen)
{
	if (!is(doc, json_type_object)) {
		snprintf(err, errlen, "the document is not a JSON object");
		return NULL;
	}
	return take_obj(doc, document, "", err, errlen);
}

const char *st_text(const char *s)
{
	static char bufs[8][1024];
	static unsigned int next;
	char *b = bufs[next++ % 8];
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = 0, cap = sizeof(bufs[0]) - 4;	/* room for "..." */

	for (; *p && n + 4 < cap; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			b[n++] = (char)*p;
		else
			n += (size_t)snprintf(b + n, 5, "\\x%02x", *p);
	}
	if (*p)
		n += (size_t)snprintf(b + n, 4, "...");
	b[n] = 0;
	return b;
}
