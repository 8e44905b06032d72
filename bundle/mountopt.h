/* fstab-style mount options turned into mount(2) arguments, as containerd's
 * mount package does it (mount/mount_linux.go parseMountOptions and, for
 * overlay lowerdir lists longer than a page, compactLowerdirOption). Pure: no
 * system calls beyond sysconf, so every rule is unit-testable. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct bundle_mount_plan {
	unsigned long flags;	   /* MS_* for the first mount(2) call */
	unsigned long propagation; /* MS_SHARED/PRIVATE/SLAVE/UNBINDABLE (| MS_REC), or 0 */
	bool loop;		   /* "loop": mount a loop device backed by the source */
	char *data;		   /* the other options joined by ',' (never NULL) */
	char *chdir;		   /* overlay: lowerdir entries are relative to it, or NULL */
};

/* Fills plan from options. Flag options (ro, rw, bind, rbind, nosuid, nodev,
 * noexec, remount, the atime family, sync, dirsync, mand, and their negations)
 * set or clear MS_* bits, the last one winning; propagation options (private,
 * rprivate, shared, rshared, slave, rslave, unbindable, runbindable) go to
 * plan->propagation; "defaults" is a no-op; anything else is data for the
 * filesystem. For type "overlay" whose options add up to more than a page less
 * 512 bytes, lowerdir entries are rewritten relative to their common parent
 * directory, returned in plan->chdir. -E2BIG if data is still longer than a
 * page, -ENOMEM. Release with bundle_mount_plan_release. */
int bundle_mount_plan(const char *type, char *const *options, size_t n_options,
		      struct bundle_mount_plan *plan);

void bundle_mount_plan_release(struct bundle_mount_plan *plan);
