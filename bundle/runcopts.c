/* options.json and runtime in a bundle (see runcopts.h). Decoding follows Go's
 * encoding/json as the Go shim uses it: keys match the json tags
 * case-insensitively, unknown keys are ignored, null leaves a field unset, a
 * later duplicate wins, and a value of the wrong type is an error. */
#include "runcopts.h"

#include "atomic.h"
#include "quote.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* the runtime file holds a binary name or path */
#define RUNTIME_MAX 4096

enum field_kind { FIELD_BOOL, FIELD_STRING, FIELD_UINT32 };

/* In the Go struct's order, which json.Marshal follows. */
static const struct field {
	const char *json;
	enum field_kind kind;
	size_t offset;
} fields[] = {
#define F(name, kind) {#name, kind, offsetof(Containerd__Runc__V1__Options, name)}
	F(no_pivot_root, FIELD_BOOL),	F(no_new_keyring, FIELD_BOOL),
	F(shim_cgroup, FIELD_STRING),	F(io_uid, FIELD_UINT32),
	F(io_gid, FIELD_UINT32),	F(binary_name, FIELD_STRING),
	F(root, FIELD_STRING),		F(criu_path, FIELD_STRING),
	F(systemd_cgroup, FIELD_BOOL),	F(criu_image_path, FIELD_STRING),
	F(criu_work_path, FIELD_STRING),
#undef F
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

#define AT(o, f, type) ((type *)((char *)(o) + (f)->offset))
#define AT_CONST(o, f, type) ((const type *)((const char *)(o) + (f)->offset))

static int gen_options(yajl_gen g, const Containerd__Runc__V1__Options *o, const char **bad)
{
	if (yajl_gen_map_open(g) != yajl_gen_status_ok)
		return -ENOMEM;
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		const char *s = NULL;
		long long n = 0;
		switch (f->kind) {
		case FIELD_BOOL:
			n = *AT_CONST(o, f, protobuf_c_boolean) != 0;
			break;
		case FIELD_UINT32:
			n = *AT_CONST(o, f, uint32_t);
			break;
		case FIELD_STRING:
			s = *AT_CONST(o, f, char *);
			break;
		}
		if (f->kind == FIELD_STRING ? !s || !*s : n == 0)
			continue; /* omitempty */
		yajl_gen_status gs =
			yajl_gen_string(g, (const unsigned char *)f->json, strlen(f->json));
		if (gs == yajl_gen_status_ok) {
			if (f->kind == FIELD_BOOL)
				gs = yajl_gen_bool(g, 1);
			else if (f->kind == FIELD_UINT32)
				gs = yajl_gen_integer(g, n);
			else
				gs = yajl_gen_string(g, (const unsigned char *)s, strlen(s));
		}
		if (gs == yajl_gen_invalid_string) {
			*bad = f->json;
			return -EINVAL;
		}
		if (gs != yajl_gen_status_ok)
			return -ENOMEM;
	}
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -ENOMEM;
}

int bundle_options_write(int dirfd, const Containerd__Runc__V1__Options *o,
			 struct ttrpc_status *st)
{
	const unsigned char *buf;
	size_t len;
	const char *bad = NULL;
	int r;

	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	r = gen_options(g, o, &bad);
	if (r == 0 && yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		r = -ENOMEM;
	if (r == 0) {
		r = bundle_write_file_volatile(dirfd, BUNDLE_OPTIONS_FILE, buf, len, 0600);
		if (r < 0 && st)
			ttrpc_status_set(st, ttrpc_code_from_errno(r), "write %s: %s",
					 BUNDLE_OPTIONS_FILE, strerror(-r));
	} else if (st) {
		if (bad)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "write %s: runc option %s is not valid UTF-8",
					 BUNDLE_OPTIONS_FILE, bad);
		else
			ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "write %s: out of memory",
					 BUNDLE_OPTIONS_FILE);
	}
	yajl_gen_free(g);
	if (r < 0)
		return r;

	const char *bin = o->binary_name && *o->binary_name ? o->binary_name
							    : BUNDLE_DEFAULT_RUNTIME;
	r = bundle_write_file_volatile(dirfd, BUNDLE_RUNTIME_FILE, bin, strlen(bin), 0600);
	if (r < 0 && st)
		ttrpc_status_set(st, ttrpc_code_from_errno(r), "write %s: %s",
				 BUNDLE_RUNTIME_FILE, strerror(-r));
	return r;
}

static Containerd__Runc__V1__Options *options_new(void)
{
	Containerd__Runc__V1__Options *o = malloc(sizeof(*o));
	if (o)
		containerd__runc__v1__options__init(o);
	return o;
}

void bundle_options_free(Containerd__Runc__V1__Options *o)
{
	/* strings are malloc'd or protobuf_c_empty_string, which this skips */
	if (o)
		containerd__runc__v1__options__free_unpacked(o, NULL);
}

static int set_string(Containerd__Runc__V1__Options *o, const struct field *f, const char *s)
{
	char **slot = AT(o, f, char *);
	char *dup = strdup(s);
	if (!dup)
		return -ENOMEM;
	if (*slot != protobuf_c_empty_string)
		free(*slot);
	*slot = dup;
	return 0;
}

/* Go's rules for a JSON number decoded into a uint32: digits only. */
static int parse_uint32(const char *raw, uint32_t *out)
{
	if (!raw || !*raw || (raw[0] == '0' && raw[1]))
		return -1;
	unsigned long long v = 0;
	for (const char *p = raw; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static const char *kind_name(enum field_kind k)
{
	switch (k) {
	case FIELD_BOOL:
		return "a boolean";
	case FIELD_UINT32:
		return "a number in 0..4294967295";
	default:
		return "a string";
	}
}

/* Applies one key/value; 0, 1 for a value of the wrong type, or -ENOMEM. */
static int apply(Containerd__Runc__V1__Options *o, const char *key, yajl_val v,
		 const struct field **which)
{
	for (size_t i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		if (strcasecmp(key, f->json) != 0)
			continue;
		*which = f;
		if (YAJL_IS_NULL(v))
			return 0;
		switch (f->kind) {
		case FIELD_BOOL:
			if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
				return 1;
			*AT(o, f, protobuf_c_boolean) = YAJL_IS_TRUE(v);
			return 0;
		case FIELD_UINT32:
			if (!YAJL_IS_NUMBER(v) || parse_uint32(v->u.number.r, AT(o, f, uint32_t)))
				return 1;
			return 0;
		case FIELD_STRING:
			if (!YAJL_IS_STRING(v))
				return 1;
			return set_string(o, f, v->u.string);
		}
	}
	return 0; /* unknown keys are ignored */
}

static int decode(const char *buf, size_t len, Containerd__Runc__V1__Options *o,
		  struct ttrpc_status *st)
{
	char err[256] = "", q[BUNDLE_QUOTE_MAX];
	if (strlen(buf) != len) {
		if (st)
			ttrpc_status_set(st, TTRPC_DATA_LOSS, "read %s: not JSON (holds a NUL byte)",
					 BUNDLE_OPTIONS_FILE);
		return -EBADMSG;
	}
	yajl_val root = yajl_tree_parse(buf, err, sizeof(err));
	if (!root) {
		bundle_one_line(err);
		if (st)
			ttrpc_status_set(st, TTRPC_DATA_LOSS, "read %s: not JSON: %s",
					 BUNDLE_OPTIONS_FILE, err[0] ? err : "parse error");
		return -EBADMSG;
	}
	int r = 0;
	if (YAJL_IS_OBJECT(root)) {
		for (size_t i = 0; i < root->u.object.len && r == 0; i++) {
			const struct field *f = NULL;
			r = apply(o, root->u.object.keys[i], root->u.object.values[i], &f);
			if (r == 1) {
				if (st)
					ttrpc_status_set(st, TTRPC_DATA_LOSS,
							 "read %s: %s must be %s",
							 BUNDLE_OPTIONS_FILE,
							 bundle_quote(q, sizeof(q),
								      root->u.object.keys[i]),
							 kind_name(f->kind));
				r = -EBADMSG;
			} else if (r < 0 && st) {
				ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED,
						 "read %s: out of memory", BUNDLE_OPTIONS_FILE);
			}
		}
	} else if (!YAJL_IS_NULL(root)) {
		if (st)
			ttrpc_status_set(st, TTRPC_DATA_LOSS, "read %s: not a JSON object",
					 BUNDLE_OPTIONS_FILE);
		r = -EBADMSG;
	}
	yajl_tree_free(root);
	return r;
}

int bundle_options_read(int dirfd, Containerd__Runc__V1__Options **out,
			struct ttrpc_status *st)
{
	char *buf = NULL;
	size_t len;
	int r;

	*out = NULL;
	Containerd__Runc__V1__Options *o = options_new();
	if (!o) {
		if (st)
			ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "read %s: out of memory",
					 BUNDLE_OPTIONS_FILE);
		return -ENOMEM;
	}

	r = bundle_read_file(dirfd, BUNDLE_OPTIONS_FILE, &buf, &len, BUNDLE_OPTIONS_MAX);
	if (r == 0) {
		r = decode(buf, len, o, st);
		free(buf);
		buf = NULL;
	} else if (r == -ENOENT) {
		r = 0;
	} else if (st && r == -EFBIG) {
		ttrpc_status_set(st, TTRPC_DATA_LOSS, "read %s: larger than %d bytes",
				 BUNDLE_OPTIONS_FILE, BUNDLE_OPTIONS_MAX);
	} else if (st && r == -EINVAL) {
		ttrpc_status_set(st, TTRPC_DATA_LOSS, "read %s: not a regular file",
				 BUNDLE_OPTIONS_FILE);
	} else if (st) {
		ttrpc_status_set(st, ttrpc_code_from_errno(r), "read %s: %s", BUNDLE_OPTIONS_FILE,
				 strerror(-r));
	}
	if (r == -EFBIG || r == -EINVAL)
		r = -EBADMSG;
	if (r < 0)
		goto fail;

	if (!*o->binary_name) {
		r = bundle_read_file(dirfd, BUNDLE_RUNTIME_FILE, &buf, &len, RUNTIME_MAX);
		if (r == 0 && len > 0 && strlen(buf) == len) {
			char *old = o->binary_name;
			o->binary_name = buf;
			buf = NULL;
			if (old != protobuf_c_empty_string)
				free(old);
		}
		free(buf);
		r = 0; /* runtime only fills in what options.json left out */
	}
	*out = o;
	return 0;
fail:
	bundle_options_free(o);
	return r;
}

int bundle_options_read_path(const char *path, Containerd__Runc__V1__Options **out,
			     struct ttrpc_status *st)
{
	char *buf = NULL;
	size_t len;
	*out = NULL;
	Containerd__Runc__V1__Options *o = options_new();
	if (!o) {
		if (st)
			ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "read %s: out of memory", path);
		return -ENOMEM;
	}
	int r = bundle_read_file(AT_FDCWD, path, &buf, &len, BUNDLE_OPTIONS_MAX);
	if (r < 0) {
		if (st)
			ttrpc_status_set(st, r == -ENOENT ? TTRPC_NOT_FOUND : TTRPC_INVALID_ARGUMENT,
					 "read runtime config %s: %s", path,
					 r == -EFBIG ? "file too large" : strerror(-r));
		bundle_options_free(o);
		return r;
	}
	r = decode(buf, len, o, st);
	free(buf);
	if (r < 0) {
		bundle_options_free(o);
		return r;
	}
	*out = o;
	return 0;
}

const char *bundle_options_binary(const Containerd__Runc__V1__Options *o)
{
	return o && o->binary_name && *o->binary_name ? o->binary_name : BUNDLE_DEFAULT_RUNTIME;
}

const char *bundle_options_root(const Containerd__Runc__V1__Options *o)
{
	return o && o->root && *o->root ? o->root : BUNDLE_DEFAULT_RUNC_ROOT;
}
