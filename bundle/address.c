/* Shim socket addresses (see address.h). The hash input must be byte-for-byte
 * what Go's filepath.Join produces, cleaning included, or containerd's
 * `ctr shim` and a Go shim in the same group would look for another socket. */
#include "address.h"

#include "sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bundle_path_clean(const char *path, char *out)
{
	size_t n = strlen(path), r = 0, w = 0, dotdot = 0;
	int rooted = n > 0 && path[0] == '/';

	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' &&
			   (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				/* back up over the last element */
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < n && path[r] != '/')
				out[w++] = path[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
}

int bundle_socket_address_in(const char *socket_dir, const char *containerd_address,
			     const char *ns, const char *group_id, char *out, size_t outlen)
{
	char hex[BUNDLE_SHA256_HEX_LEN + 1];
	if (!socket_dir || !*socket_dir || !containerd_address || !ns || !*ns || !group_id)
		return -EINVAL;

	/* filepath.Join(address, ns, group): the non-empty elements joined by "/",
	 * then cleaned */
	size_t alen = strlen(containerd_address), glen = strlen(group_id);
	size_t len = alen + strlen(ns) + glen + 3;
	char *joined = malloc(len), *clean = malloc(len + 2);
	if (!joined || !clean) {
		free(joined);
		free(clean);
		return -ENOMEM;
	}
	snprintf(joined, len, "%s%s%s%s%s", containerd_address, alen ? "/" : "", ns,
		 glen ? "/" : "", group_id);
	bundle_path_clean(joined, clean);
	bundle_sha256_hex(clean, strlen(clean), hex);
	free(joined);
	free(clean);

	if (strlen(socket_dir) + 1 + BUNDLE_SHA256_HEX_LEN > BUNDLE_SOCKET_PATH_MAX)
		return -ENAMETOOLONG;
	int n = snprintf(out, outlen, "%s%s/%s", BUNDLE_UNIX_SCHEME, socket_dir, hex);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

int bundle_socket_address(const char *containerd_address, const char *ns,
			  const char *group_id, char *out, size_t outlen)
{
	return bundle_socket_address_in(BUNDLE_SOCKET_DIR, containerd_address, ns, group_id,
					out, outlen);
}

int bundle_socket_path(const char *address, char *out, size_t outlen)
{
	size_t sl = strlen(BUNDLE_UNIX_SCHEME);
	if (!address || strncmp(address, BUNDLE_UNIX_SCHEME, sl) != 0 || !address[sl])
		return -EINVAL;
	const char *path = address + sl;
	size_t len = strlen(path);
	if (len > BUNDLE_SOCKET_PATH_MAX || len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, path, len + 1);
	return 0;
}
