/* config.json fields (see spec.h), read with yajl's tree parser. Lookups follow
 * Go's encoding/json as the Go shim decodes the spec: struct fields match keys
 * case-insensitively, map keys (annotations) exactly, and a repeated key's
 * last value wins. */
#include "spec.h"

#include "atomic.h"
#include "quote.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

static int load(int dirfd, yajl_val *root, struct ttrpc_status *st)
{
	char *buf, err[256] = "";
	size_t len;
	int r = bundle_read_file(dirfd, BUNDLE_SPEC_FILE, &buf, &len, BUNDLE_SPEC_MAX);
	if (r < 0) {
		if (r == -EFBIG || r == -EINVAL) {
			if (st && r == -EFBIG)
				ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
						 "read %s: larger than %d bytes", BUNDLE_SPEC_FILE,
						 BUNDLE_SPEC_MAX);
			else if (st)
				ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
						 "read %s: not a regular file", BUNDLE_SPEC_FILE);
			return -EBADMSG;
		}
		if (st)
			ttrpc_status_set(st, ttrpc_code_from_errno(r), "read %s: %s",
					 BUNDLE_SPEC_FILE, strerror(-r));
		return r;
	}
	*root = NULL;
	if (strlen(buf) == len)
		*root = yajl_tree_parse(buf, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "holds a NUL byte");
	free(buf);
	if (!*root || !YAJL_IS_OBJECT(*root)) {
		bundle_one_line(err);
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "read %s: %s%s",
					 BUNDLE_SPEC_FILE,
					 *root ? "not a JSON object" : "not JSON: ", *root ? "" : err);
		yajl_tree_free(*root);
		*root = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* The last value of key in object obj, or NULL. */
static yajl_val member(yajl_val obj, const char *key, bool fold_case)
{
	yajl_val found = NULL;
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *k = obj->u.object.keys[i];
		if (fold_case ? strcasecmp(k, key) == 0 : strcmp(k, key) == 0)
			found = obj->u.object.values[i];
	}
	return found;
}

static int bad_field(struct ttrpc_status *st, const char *field, const char *want)
{
	if (st)
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "read %s: %s must be %s",
				 BUNDLE_SPEC_FILE, field, want);
	return -EBADMSG;
}

/* 1 and the value if annotation key is set, 0 if not, -EBADMSG. */
static int annotation(yajl_val root, const char *key, const char **value,
		      struct ttrpc_status *st)
{
	yajl_val a = member(root, "annotations", true);
	if (!a || YAJL_IS_NULL(a))
		return 0;
	if (!YAJL_IS_OBJECT(a))
		return bad_field(st, "annotations", "an object");
	yajl_val v = member(a, key, false);
	if (!v)
		return 0;
	if (YAJL_IS_NULL(v)) {
		/* Go decodes null into a map[string]string as "" */
		*value = "";
		return 1;
	}
	if (!YAJL_IS_STRING(v)) {
		char q[BUNDLE_QUOTE_MAX];
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "read %s: annotation %s must be a string",
					 BUNDLE_SPEC_FILE, bundle_quote(q, sizeof(q), key));
		return -EBADMSG;
	}
	*value = v->u.string;
	return 1;
}

static int copy_out(const char *what, const char *s, char *out, size_t outlen,
		    struct ttrpc_status *st)
{
	size_t n = strlen(s);
	if (n >= outlen) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "read %s: %s is longer than %zu bytes", BUNDLE_SPEC_FILE,
					 what, outlen ? outlen - 1 : 0);
		return -ENAMETOOLONG;
	}
	memcpy(out, s, n + 1);
	return 0;
}

int bundle_spec_annotation(int dirfd, const char *key, char *out, size_t outlen,
			   struct ttrpc_status *st)
{
	yajl_val root;
	const char *v = NULL;
	int r = load(dirfd, &root, st);
	if (r < 0)
		return r;
	r = annotation(root, key, &v, st);
	if (r == 1) {
		char q[BUNDLE_QUOTE_MAX], what[BUNDLE_QUOTE_MAX + 16];
		snprintf(what, sizeof(what), "annotation %s", bundle_quote(q, sizeof(q), key));
		int c = copy_out(what, v, out, outlen, st);
		if (c < 0)
			r = c;
	}
	yajl_tree_free(root);
	return r;
}

int bundle_group_id(int dirfd, const char *id, char *out, size_t outlen,
		    struct ttrpc_status *st)
{
	static const char *const keys[] = {BUNDLE_GROUP_ANNOTATION, BUNDLE_SANDBOX_ANNOTATION};
	yajl_val root;
	const char *v = NULL;
	int r = load(dirfd, &root, st);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !v; i++) {
		r = annotation(root, keys[i], &v, st);
		if (r < 0)
			goto out;
	}
	r = copy_out("group id", v ? v : id, out, outlen, st);
out:
	yajl_tree_free(root);
	return r;
}

int bundle_spec_info(int dirfd, struct bundle_spec_info *info, struct ttrpc_status *st)
{
	yajl_val root;
	int r = load(dirfd, &root, st);
	if (r < 0)
		return r;
	info->private_pid_ns = false;
	info->cgroups_path[0] = '\0';

	yajl_val lx = member(root, "linux", true);
	if (!lx || YAJL_IS_NULL(lx))
		goto out;
	if (!YAJL_IS_OBJECT(lx)) {
		r = bad_field(st, "linux", "an object");
		goto out;
	}
	yajl_val nss = member(lx, "namespaces", true);
	if (nss && !YAJL_IS_NULL(nss)) {
		if (!YAJL_IS_ARRAY(nss)) {
			r = bad_field(st, "linux.namespaces", "an array");
			goto out;
		}
		for (size_t i = 0; i < nss->u.array.len; i++) {
			yajl_val ns = nss->u.array.values[i];
			if (YAJL_IS_NULL(ns))
				continue;
			if (!YAJL_IS_OBJECT(ns)) {
				r = bad_field(st, "linux.namespaces entries", "objects");
				goto out;
			}
			yajl_val type = member(ns, "type", true), path = member(ns, "path", true);
			if ((type && !YAJL_IS_NULL(type) && !YAJL_IS_STRING(type)) ||
			    (path && !YAJL_IS_NULL(path) && !YAJL_IS_STRING(path))) {
				r = bad_field(st, "linux.namespaces type and path", "strings");
				goto out;
			}
			const char *t = YAJL_GET_STRING(type), *p = YAJL_GET_STRING(path);
			if (t && strcmp(t, "pid") == 0 && (!p || !*p))
				info->private_pid_ns = true;
		}
	}
	yajl_val cg = member(lx, "cgroupsPath", true);
	if (cg && !YAJL_IS_NULL(cg)) {
		if (!YAJL_IS_STRING(cg)) {
			r = bad_field(st, "linux.cgroupsPath", "a string");
			goto out;
		}
		r = copy_out("linux.cgroupsPath", cg->u.string, info->cgroups_path,
			     sizeof(info->cgroups_path), st);
	}
out:
	yajl_tree_free(root);
	return r;
}

static yajl_gen_status gen_value(yajl_gen g, yajl_val v)
{
	yajl_gen_status s = yajl_gen_status_ok;
	if (YAJL_IS_OBJECT(v)) {
		s = yajl_gen_map_open(g);
		for (size_t i = 0; s == yajl_gen_status_ok && i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];
			s = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
			if (s == yajl_gen_status_ok)
				s = gen_value(g, v->u.object.values[i]);
		}
		return s == yajl_gen_status_ok ? yajl_gen_map_close(g) : s;
	}
	if (YAJL_IS_ARRAY(v)) {
		s = yajl_gen_array_open(g);
		for (size_t i = 0; s == yajl_gen_status_ok && i < v->u.array.len; i++)
			s = gen_value(g, v->u.array.values[i]);
		return s == yajl_gen_status_ok ? yajl_gen_array_close(g) : s;
	}
	if (YAJL_IS_STRING(v))
		return yajl_gen_string(g, (const unsigned char *)v->u.string, strlen(v->u.string));
	if (YAJL_IS_NUMBER(v)) /* the number as written: no float round trip */
		return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	if (YAJL_IS_TRUE(v))
		return yajl_gen_bool(g, 1);
	if (YAJL_IS_FALSE(v))
		return yajl_gen_bool(g, 0);
	return yajl_gen_null(g);
}

int bundle_process_set_terminal(const char *json, size_t len, bool terminal, char **out,
				size_t *outlen, struct ttrpc_status *st)
{
	char *text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, json, len);
	text[len] = '\0';
	char ebuf[128] = "";
	yajl_val root = yajl_tree_parse(text, ebuf, sizeof(ebuf));
	free(text);
	if (!root || !YAJL_IS_OBJECT(root)) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "process spec: %s",
					 root ? "not a JSON object" : ebuf);
		yajl_tree_free(root);
		return -EBADMSG;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(root);
		return -ENOMEM;
	}
	yajl_gen_status s = yajl_gen_map_open(g);
	bool set = false;
	for (size_t i = 0; s == yajl_gen_status_ok && i < root->u.object.len; i++) {
		const char *k = root->u.object.keys[i];
		s = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
		if (s != yajl_gen_status_ok)
			break;
		if (strcmp(k, "terminal") == 0 && !set) {
			s = yajl_gen_bool(g, terminal);
			set = true;
		} else if (strcmp(k, "terminal") == 0) {
			s = yajl_gen_bool(g, terminal); /* a duplicate says the same */
		} else {
			s = gen_value(g, root->u.object.values[i]);
		}
	}
	if (s == yajl_gen_status_ok && !set) {
		s = yajl_gen_string(g, (const unsigned char *)"terminal", 8);
		if (s == yajl_gen_status_ok)
			s = yajl_gen_bool(g, terminal);
	}
	if (s == yajl_gen_status_ok)
		s = yajl_gen_map_close(g);
	int rc = 0;
	const unsigned char *buf;
	size_t n;
	if (s != yajl_gen_status_ok || yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "process spec: cannot re-encode");
		rc = -EBADMSG;
	} else if (!(*out = malloc(n + 1))) {
		rc = -ENOMEM;
	} else {
		memcpy(*out, buf, n);
		(*out)[n] = '\0';
		*outlen = n;
	}
	yajl_gen_free(g);
	yajl_tree_free(root);
	return rc;
}
