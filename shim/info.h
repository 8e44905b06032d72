/* `-info` (containerd 2.0+): a containerd.types.RuntimeInfo on stdout with
 * the shim's name and version, the options it was given on stdin, and the
 * OCI runtime's own `features` JSON, cached per runtime binary. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHIM_RUNTIME_NAME "io.containerd.nano.v2"
#define SHIM_FEATURES_TYPE_URL "types.containerd.io/opencontainers/runtime-spec/1/features/Features"
/* The cache of `<runtime> features` answers; the environment variable moves
 * it (tests). A cache that cannot be made just means no cache. */
/* not under nanoshimd's /run/nanoshim, whose subdirectories are namespaces */
#define SHIM_FEATURES_CACHE_DIR "/run/containerd-shim-nano-v2/features"
#define SHIM_FEATURES_CACHE_ENV "NANOSHIM_FEATURES_CACHE_DIR"
/* runc's answer is a few kB */
#define SHIM_FEATURES_MAX (1u << 20)
#define SHIM_FEATURES_TIMEOUT_MS 10000

/* `binary features`' stdout in *json (malloc'd, *len bytes), from the cache
 * when it holds an answer for this very file (path, device, inode, size and
 * mtime), else by running it and caching a successful answer. binary is a
 * name looked up in PATH, or a path. Returns 0 or -errno; *why then says what
 * failed (static or in whybuf). */
int shim_runtime_features(const char *binary, const char *cache_dir, char **json, size_t *len,
                          char *whybuf, size_t whylen);
