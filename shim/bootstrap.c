/* The shim's stdin at `start` and `-info` (see bootstrap.h). */
#include "bootstrap.h"

#include "bundle/atomic.h"
#include "bundle/options.h"
#include "bundle/runcopts.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The option types bundle_options_decode knows; anything else in an Any is
 * not runtime options. */
static bool known_options_type(const char *url)
{
	return strcmp(url, "containerd.runc.v1.Options") == 0 ||
	       strcmp(url, "containerd.linux.runc.CreateOptions") == 0 ||
	       strcmp(url, "runtimeoptions.v1.Options") == 0;
}

/* A bare message name as typeurl writes it, or with a "host/" prefix. */
static const char *type_name(const char *url)
{
	const char *slash = strrchr(url, '/');
	return slash ? slash + 1 : url;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Takes a copy of the Any and decodes it as runtime options. */
static int take_options(const char *type_url, const uint8_t *data, size_t len,
                        struct shim_stdin *out, char *err, size_t errlen)
{
	out->options_type_url = strdup(type_url);
	out->options_value = malloc(len ? len : 1);
	if (!out->options_type_url || !out->options_value)
		return -ENOMEM;
	if (len)
		memcpy(out->options_value, data, len);
	out->options_len = len;
	struct ttrpc_status st = {0};
	int rc = bundle_options_decode(type_name(type_url), data, len, &out->options, &st);
	if (rc < 0)
		snprintf(err, errlen, "%s", st.message);
	return rc;
}

static int default_options(struct shim_stdin *out)
{
	out->options = containerd__runc__v1__options__unpack(NULL, 0, (const uint8_t *)"");
	return out->options ? 0 : -ENOMEM;
}

static int from_bootstrap(const Containerd__Runtime__Bootstrap__V1__BootstrapParams *bp,
                          struct shim_stdin *out, char *err, size_t errlen)
{
	out->kind = SHIM_STDIN_BOOTSTRAP;
	if (bp->socket_dir && bp->socket_dir[0] && !(out->socket_dir = strdup(bp->socket_dir)))
		return -ENOMEM;
	/* The first extension that is runtime options; others are not ours. */
	for (size_t i = 0; i < bp->n_extensions; i++) {
		const Google__Protobuf__Any *a = bp->extensions[i]->value;
		if (a && a->type_url && known_options_type(type_name(a->type_url)))
			return take_options(a->type_url, a->value.data, a->value.len, out, err,
			                    errlen);
	}
	return default_options(out);
}

int shim_stdin_parse(const uint8_t *buf, size_t len, const char *id, const char *ns,
                     struct shim_stdin *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (len == 0) {
		out->kind = SHIM_STDIN_EMPTY;
		return default_options(out);
	}
	Containerd__Runtime__Bootstrap__V1__BootstrapParams *bp =
	    containerd__runtime__bootstrap__v1__bootstrap_params__unpack(NULL, len, buf);
	Google__Protobuf__Any *any = google__protobuf__any__unpack(NULL, len, buf);
	int rc;
	/* An Any carries nothing but its two fields; unknown ones mean these
	 * bytes were never an Any (BootstrapParams with more than two fields
	 * set, or garbage that happens to parse). */
	bool is_any = any && any->base.n_unknown_fields == 0 && any->type_url && any->type_url[0];
	bool is_options = is_any && known_options_type(type_name(any->type_url));
	bool is_bootstrap = bp && bp->instance_id && bp->instance_id[0] && bp->namespace_;
	if (is_bootstrap && id && ns)
		is_bootstrap = strcmp(bp->instance_id, id) == 0 && strcmp(bp->namespace_, ns) == 0;
	else if (is_bootstrap)
		is_bootstrap = !is_options;
	if (is_bootstrap) {
		rc = from_bootstrap(bp, out, err, errlen);
	} else if (is_options) {
		out->kind = SHIM_STDIN_OPTIONS;
		rc = take_options(any->type_url, any->value.data, any->value.len, out, err, errlen);
	} else if (bp && bp->instance_id && bp->instance_id[0] && printable(bp->instance_id) &&
	           bp->namespace_ && printable(bp->namespace_)) {
		/* BootstrapParams, but for someone else: refuse rather than guess */
		snprintf(err, errlen,
		         "stdin holds BootstrapParams for task %.100s in namespace %.100s, "
		         "but this shim was started for task %.100s in namespace %.100s",
		         bp->instance_id, bp->namespace_, id ? id : "(none)", ns ? ns : "(none)");
		rc = -EINVAL;
	} else if (is_any && printable(any->type_url)) {
		snprintf(err, errlen, "stdin holds options of unknown type %.200s", any->type_url);
		rc = -EINVAL;
	} else {
		snprintf(err, errlen,
		         "stdin (%zu bytes) is neither runtime options (a protobuf Any) nor "
		         "BootstrapParams",
		         len);
		rc = -EBADMSG;
	}
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	if (bp)
		containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(bp, NULL);
	if (any)
		google__protobuf__any__free_unpacked(any, NULL);
	return rc;
}

void shim_stdin_free(struct shim_stdin *s)
{
	if (!s)
		return;
	free(s->options_type_url);
	free(s->options_value);
	bundle_options_free(s->options);
	free(s->socket_dir);
	memset(s, 0, sizeof(*s));
}

int shim_stdin_read(int fd, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (isatty(fd))
		return 0;
	char *b;
	int rc = bundle_read_fd(fd, 0, SHIM_STDIN_MAX, &b, len);
	if (rc == -EBADF)
		return 0; /* no stdin at all: nothing sent */
	if (rc == 0)
		*out = (uint8_t *)b;
	return rc;
}
