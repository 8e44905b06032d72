/* The runtime options a shim is sent, whatever their type: containerd.runc.v1
 * Options (runtime named io.containerd.runc.*), containerd.linux.runc
 * CreateOptions (the Go client's task options for any other runtime name), or
 * runtimeoptions.v1.Options (CRI and ctr --runtime-config-path: a config file
 * holding the same keys as options.json). Decoded by type URL; an unknown type
 * is an error that names it. */
#pragma once

#include "ttrpc.h"

#include "containerd/runc/v1/oci.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Fills o (a fresh containerd.runc.v1.Options, free with
 * shim_options_free) from an Any's type URL and bytes. Empty input: defaults. */
int shim_options_decode(const char *type_url, const uint8_t *data, size_t len,
			Containerd__Runc__V1__Options **o, struct ttrpc_status *st);
void shim_options_free(Containerd__Runc__V1__Options *o);
