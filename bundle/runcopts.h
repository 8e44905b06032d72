/* The runc options of a container, kept in its bundle the way the Go runc shim
 * keeps them (runtime/v2/runc/container.go): "options.json", the JSON of
 * containerd.runc.v1.Options with the Go struct's json names (no_pivot_root,
 * binary_name, ..., zero values omitted), and "runtime", the binary name.
 * `shim delete` reads them back to find the runtime binary and its --root. */
#pragma once

#include "status.h"

#include "containerd/runc/v1/oci.pb-c.h"

#define BUNDLE_OPTIONS_FILE "options.json"
#define BUNDLE_RUNTIME_FILE "runtime"
#define BUNDLE_DEFAULT_RUNTIME "runc"
#define BUNDLE_DEFAULT_RUNC_ROOT "/run/containerd/runc" /* + "/<namespace>" */
/* options.json is a few hundred bytes; anything past this is not ours */
#define BUNDLE_OPTIONS_MAX (64 * 1024)

/* Writes options.json (0600) and runtime (0600: the binary name, or
 * BUNDLE_DEFAULT_RUNTIME when unset), each atomically, into the bundle
 * directory dirfd. -EINVAL (and st, if not NULL, InvalidArgument) when a
 * string is not valid UTF-8. */
int bundle_options_write(int dirfd, const Containerd__Runc__V1__Options *o,
			 struct ttrpc_status *st);

/* Reads them back into a new message *out (free with bundle_options_free).
 * A missing options.json gives an all-default message, as the Go shim reads
 * it; binary_name comes from options.json, else from runtime if present.
 * Returns 0, -EBADMSG (st: DataLoss, saying what is wrong with which file)
 * for a file that is not JSON or holds a field of the wrong type, or another
 * -errno (st: the errno's code). */
int bundle_options_read(int dirfd, Containerd__Runc__V1__Options **out,
			struct ttrpc_status *st);

/* A runtime config file with the same keys as options.json (what
 * runtimeoptions.v1.Options' config_path names); unlike the bundle's own
 * file, a missing one is an error. */
int bundle_options_read_path(const char *path, Containerd__Runc__V1__Options **out,
			     struct ttrpc_status *st);

void bundle_options_free(Containerd__Runc__V1__Options *o);

/* The binary to run and the runc root, defaults applied. */
const char *bundle_options_binary(const Containerd__Runc__V1__Options *o);
const char *bundle_options_root(const Containerd__Runc__V1__Options *o);
