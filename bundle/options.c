/* Runtime options of every type, into one containerd.runc.v1.Options (see options.h). */
#include "options.h"

#include "atomic.h"
#include "runcopts.h"
#include "containerd/linux/runc/runc.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#define URL_RUNC "containerd.runc.v1.Options"
#define URL_CREATE "containerd.linux.runc.CreateOptions"
#define URL_RUNTIMEOPTIONS "runtimeoptions.v1.Options"

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static Containerd__Runc__V1__Options *from_create(const Containerd__Linux__Runc__CreateOptions *c)
{
	Containerd__Runc__V1__Options *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	containerd__runc__v1__options__init(o);
	o->no_pivot_root = c->no_pivot_root;
	o->no_new_keyring = c->no_new_keyring;
	o->io_uid = c->io_uid;
	o->io_gid = c->io_gid;
	o->shim_cgroup = dup_or_empty(c->shim_cgroup);
	o->criu_work_path = dup_or_empty(c->criu_work_path);
	o->criu_image_path = dup_or_empty(c->criu_image_path);
	o->binary_name = strdup("");
	o->root = strdup("");
	o->criu_path = strdup("");
	if (!o->shim_cgroup || !o->criu_work_path || !o->criu_image_path || !o->binary_name ||
	    !o->root || !o->criu_path) {
		bundle_options_free(o);
		return NULL;
	}
	return o;
}

int bundle_options_decode(const char *type_url, const uint8_t *data, size_t len,
			  Containerd__Runc__V1__Options **out, struct ttrpc_status *st)
{
	*out = NULL;
	if (!type_url || !type_url[0]) {
		*out = containerd__runc__v1__options__unpack(NULL, 0, (const uint8_t *)"");
		return *out ? 0 : -ENOMEM;
	}
	if (strcmp(type_url, URL_RUNC) == 0) {
		*out = containerd__runc__v1__options__unpack(NULL, len, data);
	} else if (strcmp(type_url, URL_CREATE) == 0) {
		Containerd__Linux__Runc__CreateOptions *c =
			containerd__linux__runc__create_options__unpack(NULL, len, data);
		if (c) {
			*out = from_create(c);
			containerd__linux__runc__create_options__free_unpacked(c, NULL);
			if (!*out) {
				ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
				return -ENOMEM;
			}
		}
	} else if (strcmp(type_url, URL_RUNTIMEOPTIONS) == 0) {
		Runtimeoptions__V1__Options *r = runtimeoptions__v1__options__unpack(NULL, len, data);
		if (!r) {
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "options %s: malformed", type_url);
			return -EBADMSG;
		}
		int rc = 0;
		if (r->config_path && r->config_path[0])
			rc = bundle_options_read_path(r->config_path, out, st);
		else
			*out = containerd__runc__v1__options__unpack(NULL, 0, (const uint8_t *)"");
		runtimeoptions__v1__options__free_unpacked(r, NULL);
		return rc;
	} else {
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "options: type with url %s: not found",
				 type_url);
		return -EINVAL;
	}
	if (!*out) {
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "options %s: malformed", type_url);
		return -EBADMSG;
	}
	return 0;
}

#define SPOOL_KEY "spool_max_bytes"

/* A JSON number that is a whole count of bytes: digits only. */
static int parse_bytes(const char *raw, uint64_t *out)
{
	if (!raw || !*raw || (raw[0] == '0' && raw[1]))
		return -1;
	uint64_t v = 0;
	for (const char *p = raw; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > BUNDLE_SPOOL_MAX_LIMIT)
			return -1;
	}
	*out = v;
	return 0;
}

int bundle_options_spool_max(const char *type_url, const uint8_t *data, size_t len,
			     uint64_t *out, struct ttrpc_status *st)
{
	*out = BUNDLE_SPOOL_MAX_DEFAULT;
	if (!type_url || strcmp(type_url, URL_RUNTIMEOPTIONS) != 0)
		return 0;
	Runtimeoptions__V1__Options *r = runtimeoptions__v1__options__unpack(NULL, len, data);
	if (!r || !r->config_path || !r->config_path[0]) {
		if (r)
			runtimeoptions__v1__options__free_unpacked(r, NULL);
		return 0; /* bundle_options_decode says what is wrong with it */
	}
	char *buf = NULL, err[256] = "";
	size_t n;
	int rc = bundle_read_file(AT_FDCWD, r->config_path, &buf, &n, BUNDLE_OPTIONS_MAX);
	yajl_val root = rc == 0 && strlen(buf) == n ? yajl_tree_parse(buf, err, sizeof(err)) : NULL;
	for (size_t i = 0; root && YAJL_IS_OBJECT(root) && i < root->u.object.len; i++) {
		yajl_val v = root->u.object.values[i];
		if (strcasecmp(root->u.object.keys[i], SPOOL_KEY) != 0 || YAJL_IS_NULL(v))
			continue; /* a later duplicate wins, as for the other keys */
		if (!YAJL_IS_NUMBER(v) || parse_bytes(v->u.number.r, out) < 0) {
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "read runtime config %s: %s must be a number of bytes in "
					 "0..%llu",
					 r->config_path, SPOOL_KEY, BUNDLE_SPOOL_MAX_LIMIT);
			rc = -EINVAL;
			break;
		}
	}
	/* an unreadable or malformed file: bundle_options_decode says so */
	yajl_tree_free(root);
	free(buf);
	runtimeoptions__v1__options__free_unpacked(r, NULL);
	return rc == -EINVAL ? rc : 0;
}
