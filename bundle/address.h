/* The shim's socket address, computed as containerd 1.6 does
 * (runtime/v2/shim/util_unix.go SocketAddress):
 *	unix:///run/containerd/s/<hex sha256(filepath.Join(address, ns, group))>
 * The directory is the compile-time default state dir of containerd, not its
 * --state flag, so a private containerd still puts its shims' sockets there. */
#pragma once

#include <stddef.h>

#define BUNDLE_SOCKET_DIR "/run/containerd/s"
#define BUNDLE_UNIX_SCHEME "unix://"
/* containerd's socketPathLimit: longer socket paths are refused */
#define BUNDLE_SOCKET_PATH_MAX 106
/* room for any address built here: scheme + path + NUL */
#define BUNDLE_ADDRESS_MAX (sizeof(BUNDLE_UNIX_SCHEME) + BUNDLE_SOCKET_PATH_MAX)

/* Writes the address for containerd_address (the shim's -address flag), the
 * namespace and the group id (see bundle_group_id in spec.h) into out. Empty
 * strings are skipped as filepath.Join skips them, except the namespace:
 * -EINVAL if it is empty or an argument is NULL, -ENAMETOOLONG if out is too
 * small. */
int bundle_socket_address(const char *containerd_address, const char *ns,
			  const char *group_id, char *out, size_t outlen);

/* The same under another socket directory (tests, a private manager); the
 * directory is used as given. -ENAMETOOLONG when the socket path would exceed
 * BUNDLE_SOCKET_PATH_MAX or out is too small. */
int bundle_socket_address_in(const char *socket_dir, const char *containerd_address,
			     const char *ns, const char *group_id, char *out, size_t outlen);

/* The filesystem path of a "unix://" address, for bind/connect. -EINVAL for
 * anything else (containerd reads a bare string as an abstract socket, which
 * shims stopped using after CVE-2020-15257), -ENAMETOOLONG beyond
 * BUNDLE_SOCKET_PATH_MAX or when out is too small. */
int bundle_socket_path(const char *address, char *out, size_t outlen);

/* Go's filepath.Clean, exposed for tests: writes the lexically cleaned path
 * into out (at least strlen(path) + 2 bytes). */
void bundle_path_clean(const char *path, char *out);
