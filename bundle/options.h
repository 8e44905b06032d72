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
