/* What containerd writes on a shim's stdin, told apart by content: nothing,
 * an Any of the runtime options (containerd 1.6 to 2.2, and `-info`), or a
 * containerd.runtime.bootstrap.v1.BootstrapParams (2.3 and later, at `start`).
 * The last two both decode as a google.protobuf.Any, so BootstrapParams is
 * recognised the way containerd's own shims do it: its instance_id and
 * namespace equal the -id and -namespace flags. */
#pragma once

#include "containerd/runc/v1/oci.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* One line of error text is enough for anything refused here. */
#define SHIM_STDIN_ERR_MAX 512

enum shim_stdin_kind {
	SHIM_STDIN_EMPTY,     /* nothing: default options */
	SHIM_STDIN_OPTIONS,   /* an Any of runtime options */
	SHIM_STDIN_BOOTSTRAP, /* BootstrapParams (options from its extensions, if any) */
};

struct shim_stdin {
	enum shim_stdin_kind kind;
	/* The runtime options as received (an Any; NULL type_url when none),
	 * owned here; -info echoes them. */
	char *options_type_url;
	uint8_t *options_value;
	size_t options_len;
	/* Decoded into runc options; all-default when none. Owned here. */
	Containerd__Runc__V1__Options *options;
	/* BootstrapParams.socket_dir; NULL when unset. Owned here. */
	char *socket_dir;
};

/* Decides what buf[0..len) is and fills *out (free with shim_stdin_free; it
 * is zeroed first, so freeing after a failure is safe). id and ns are the
 * -id and -namespace flags; NULL when not given (-info is called without
 * them), and then a BootstrapParams is recognised by its non-empty
 * instance_id, provided the bytes are not an Any of a known options type.
 * Returns 0, -EBADMSG for bytes that are neither (err: one line saying why),
 * -EINVAL for options of an unknown type or a BootstrapParams for another
 * task (err says which), or -ENOMEM. */
int shim_stdin_parse(const uint8_t *buf, size_t len, const char *id, const char *ns,
                     struct shim_stdin *out, char *err, size_t errlen);
void shim_stdin_free(struct shim_stdin *s);

/* Reads all of fd (a terminal counts as empty), at most SHIM_STDIN_MAX bytes,
 * into *buf (malloc'd, free it). Returns 0, -EFBIG or -errno. */
#define SHIM_STDIN_MAX (1u << 20)
int shim_stdin_read(int fd, uint8_t **buf, size_t *len);
