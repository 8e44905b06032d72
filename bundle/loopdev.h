/* Loop devices for the "loop" mount option: a free /dev/loopN bound to a
 * backing file, set to detach itself (autoclear) once the last user — the
 * mount made from it, after the caller closes the returned fd — goes away. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Attaches backing (opened read-only if readonly) to a free loop device and
 * writes its path ("/dev/loopN") into dev. Returns the device's fd, to be
 * closed once it is mounted (or not), or -errno: -EINVAL (-EISDIR) when
 * backing is not a regular file or a block device. Never blocks in open. */
int bundle_loop_attach(const char *backing, bool readonly, char *dev, size_t devlen);
