/* The runtime options a shim is sent, whatever their type: containerd.runc.v1
 * Options (runtime named io.containerd.runc.*), containerd.linux.runc
 * CreateOptions (the Go client's task options for any other runtime name), or
 * runtimeoptions.v1.Options (CRI and ctr --runtime-config-path: a config file
 * holding the same keys as options.json). Decoded by type URL; an unknown type
 * is an error that names it. */
#pragma once

#include "status.h"

#include "containerd/runc/v1/oci.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Fills *o (a fresh containerd.runc.v1.Options, free with bundle_options_free,
 * runcopts.h) from an Any's type URL and bytes. No type URL: defaults. Returns
 * 0, -EINVAL (an unknown type, named in st), -EBADMSG (malformed bytes) or
 * -ENOMEM; a runtimeoptions config_path is read as bundle_options_read_path does. */
int bundle_options_decode(const char *type_url, const uint8_t *data, size_t len,
			  Containerd__Runc__V1__Options **o, struct ttrpc_status *st);

/* The shim's own output spool cap (spool_max_bytes, bytes; 0: no spool) when
 * the options are a runtime config file (runtimeoptions.v1.Options naming
 * config_path, as ctr --runtime-config-path and CRI send): the same file as
 * the runc keys, which ignore this one. Any other options: the default.
 * Returns 0, or -errno with st set (a file that cannot be read, a value that
 * is not a whole number of bytes up to BUNDLE_SPOOL_MAX_LIMIT). */
#define BUNDLE_SPOOL_MAX_DEFAULT (4u << 20)
#define BUNDLE_SPOOL_MAX_LIMIT (1ull << 40)
int bundle_options_spool_max(const char *type_url, const uint8_t *data, size_t len,
			     uint64_t *out, struct ttrpc_status *st);
