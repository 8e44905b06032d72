/* The container's root filesystem: the Mount list of CreateTaskRequest.rootfs
 * mounted, in order, onto <bundle>/rootfs (as containerd's mount package does
 * it), and everything there unmounted again at delete. */
#pragma once

#include "status.h"

#include "containerd/types/mount.pb-c.h"

#include <stddef.h>

#define BUNDLE_ROOTFS_DIR "rootfs"
/* a create request with more rootfs mounts than this is refused */
#define BUNDLE_MOUNTS_MAX 128

/* Mounts mounts[0..n) onto <bundle_path>/rootfs (created 0711 if missing; n ==
 * 0 does nothing). Each Mount's options are read as by bundle_mount_plan; a
 * "ro" bind is remounted read-only; "loop" mounts a loop device backed by the
 * source. A Mount's target, when set, names a directory (or file) inside the
 * rootfs mounted so far, resolved with every symlink and ".." kept inside it,
 * as containerd 2.x does (1.6 ignores it). fuse.* and fuse3.* types (mount
 * helpers) are refused.
 * On failure everything mounted under rootfs is unmounted again, st (if not
 * NULL) says which component failed (type, source, target) and why, and -errno
 * is returned. */
int bundle_mount_rootfs(const char *bundle_path, Containerd__Types__Mount *const *mounts,
			size_t n, struct ttrpc_status *st);

/* Detaches (MNT_DETACH) every mount at <bundle_path>/rootfs, stacked ones
 * included, and any left below it. Idempotent: 0 when nothing is mounted or
 * rootfs does not exist; -errno otherwise. */
int bundle_unmount_rootfs(const char *bundle_path);
