/* Rootfs mounts (see mount.h). Each component is mounted onto an O_PATH fd of
 * its mount point through /proc/self/fd, so a target inside the rootfs is
 * resolved once, inside the rootfs, and never re-walked by path; the fd is
 * opened again after the mount to reach the new mount's root for the
 * propagation change and the read-only remount. */
#include "mount.h"

#include "atomic.h"
#include "loopdev.h"
#include "mountopt.h"
#include "quote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* mountinfo of a busy host runs to a few MiB at worst */
#define MOUNTINFO_MAX (16 * 1024 * 1024)
/* mounts stacked on rootfs itself before we give up unmounting */
#define UNMOUNT_MAX_LAYERS 1024
/* rounds of "find what is still mounted below rootfs, detach it" */
#define SWEEP_ROUNDS 4
#define FD_PATH_LEN sizeof("/proc/self/fd/-2147483648")

struct component {
	const Containerd__Types__Mount *m;
	size_t index, count;
	const char *rootfs;
};

static int rootfs_path(const char *bundle_path, char *out, size_t outlen)
{
	if (!bundle_path || !*bundle_path)
		return -EINVAL;
	int n = snprintf(out, outlen, "%s/%s", bundle_path, BUNDLE_ROOTFS_DIR);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static const char *str_or_empty(const char *s)
{
	return s ? s : "";
}

/* Sets st to "mount rootfs component I of N (type, source, target,
 * options): what: strerror" and returns r. */
static int component_error(struct ttrpc_status *st, int r, int code,
			   const struct component *c, const char *what)
{
	if (!st)
		return r;
	const Containerd__Types__Mount *m = c->m;
	char qtype[BUNDLE_QUOTE_MAX], qsrc[512], qtgt[512], qopts[256];
	char target[PATH_MAX + 256], opts[512] = "";
	size_t o = 0;

	snprintf(target, sizeof(target), "%s%s%s", c->rootfs,
		 m->target && *m->target ? "/" : "", str_or_empty(m->target));
	for (size_t i = 0; i < m->n_options && o < sizeof(opts) - 1; i++) {
		int k = snprintf(opts + o, sizeof(opts) - o, "%s%s", i ? "," : "",
				 str_or_empty(m->options[i]));
		if (k < 0)
			break;
		o += (size_t)k;
	}
	ttrpc_status_set(st, code,
			 "mount rootfs component %zu of %zu (type %s, source %s, target %s, "
			 "options %s): %s%s%s",
			 c->index + 1, c->count, bundle_quote(qtype, sizeof(qtype), m->type),
			 bundle_quote(qsrc, sizeof(qsrc), m->source),
			 bundle_quote(qtgt, sizeof(qtgt), target),
			 bundle_quote(qopts, sizeof(qopts), opts), what, r ? ": " : "",
			 r ? strerror(-r) : "");
	return r;
}

/* An O_PATH fd of the component's mount point: rootfs, or target resolved
 * with rootfs as its root (RESOLVE_IN_ROOT: "..", absolute paths and symlinks
 * all stay inside). */
static int open_target(const char *rootfs, const char *target)
{
	/* O_NOFOLLOW: a rootfs replaced by a symlink must not redirect the mounts */
	int rfd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0 || !target || !*target)
		return rfd < 0 ? -errno : rfd;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rfd, target, &how, sizeof(how));
	int r = fd < 0 ? -errno : (int)fd;
	close(rfd);
	return r;
}

/* mount(2), from inside dir when it is set: overlay lowerdir entries compacted
 * by bundle_mount_plan are relative to it. This changes the process's working
 * directory for the duration of the call, which is safe in a single-threaded
 * process only (the shim and the manager are). */
static int mount_in(const char *dir, const char *source, const char *target, const char *type,
		    unsigned long flags, const char *data)
{
	if (!dir)
		return mount(source, target, type, flags, data) < 0 ? -errno : 0;

	int r, cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		return -errno;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		close(cwd);
		return r;
	}
	r = fchdir(dfd) < 0 ? -errno : 0;
	if (r == 0) {
		r = mount(source, target, type, flags, data) < 0 ? -errno : 0;
		if (fchdir(cwd) < 0 && r == 0) {
			/* cannot happen short of the old cwd's fs vanishing; undo the
			 * mount rather than leave the process somewhere unexpected */
			r = -errno;
			umount2(target, MNT_DETACH);
		}
	}
	close(dfd);
	close(cwd);
	return r;
}

static int mount_component(const struct component *c, struct ttrpc_status *st)
{
	const Containerd__Types__Mount *m = c->m;
	const char *type = str_or_empty(m->type), *source = str_or_empty(m->source);
	struct bundle_mount_plan plan;
	char fdpath[FD_PATH_LEN], loopdev[64];
	int tfd, r;

	if (strncmp(type, "fuse.", 5) == 0 || strncmp(type, "fuse3.", 6) == 0)
		return component_error(st, -EOPNOTSUPP, TTRPC_UNIMPLEMENTED, c,
				       "FUSE mounts through mount helpers are not supported");

	r = bundle_mount_plan(type, m->options, m->n_options, &plan);
	if (r == -E2BIG)
		return component_error(st, r, TTRPC_INVALID_ARGUMENT, c,
				       "mount options are longer than a page");
	if (r < 0)
		return component_error(st, r, ttrpc_code_from_errno(r), c, "parse options");

	tfd = open_target(c->rootfs, m->target);
	if (tfd < 0) {
		r = component_error(st, tfd, ttrpc_code_from_errno(tfd), c, "open the target");
		goto out;
	}
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", tfd);

	/* containerd's order: the mount itself (skipped for a bare remount), then
	 * propagation, then the read-only remount a bind mount needs */
	if (!(plan.flags & MS_REMOUNT) || plan.data[0]) {
		const char *src = source;
		int lfd = -1;
		if (plan.loop) {
			lfd = bundle_loop_attach(source, plan.flags & MS_RDONLY, loopdev,
						 sizeof(loopdev));
			if (lfd < 0) {
				r = component_error(st, lfd, ttrpc_code_from_errno(lfd), c,
						    "set up a loop device");
				goto out;
			}
			src = loopdev;
		}
		r = mount_in(plan.chdir, src, fdpath, type, plan.flags, plan.data);
		if (lfd >= 0)
			close(lfd); /* autoclear: the mount, if any, keeps it */
		if (r < 0) {
			component_error(st, r, ttrpc_code_from_errno(r), c, "mount");
			goto out;
		}
	}

	const unsigned long bind_ro = MS_BIND | MS_RDONLY;
	if (plan.propagation || (plan.flags & bind_ro) == bind_ro) {
		close(tfd);
		tfd = open_target(c->rootfs, m->target);
		if (tfd < 0) {
			r = component_error(st, tfd, ttrpc_code_from_errno(tfd), c,
					    "open the target after mounting");
			goto out;
		}
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", tfd);
	}
	if (plan.propagation && mount("", fdpath, "", plan.propagation, "") < 0) {
		r = component_error(st, -errno, ttrpc_code_from_errno(errno), c,
				    "change mount propagation");
		goto out;
	}
	if ((plan.flags & bind_ro) == bind_ro &&
	    mount("", fdpath, "", plan.flags | MS_REMOUNT, "") < 0) {
		r = component_error(st, -errno, ttrpc_code_from_errno(errno), c,
				    "remount the bind mount read-only");
		goto out;
	}
	r = 0;
out:
	if (tfd >= 0)
		close(tfd);
	bundle_mount_plan_release(&plan);
	return r;
}

int bundle_mount_rootfs(const char *bundle_path, Containerd__Types__Mount *const *mounts,
			size_t n, struct ttrpc_status *st)
{
	char rootfs[PATH_MAX], q[512];
	int r;

	if (n == 0)
		return 0;
	if (n > BUNDLE_MOUNTS_MAX) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "mount rootfs: %zu mounts requested, at most %d allowed", n,
					 BUNDLE_MOUNTS_MAX);
		return -E2BIG;
	}
	r = rootfs_path(bundle_path, rootfs, sizeof(rootfs));
	if (r < 0 || !mounts) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "mount rootfs: bundle path %s is %s",
					 bundle_quote(q, sizeof(q), bundle_path),
					 r == -ENAMETOOLONG ? "too long" : "missing");
		return r < 0 ? r : -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!mounts[i]) {
			if (st)
				ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
						 "mount rootfs component %zu of %zu: missing", i + 1,
						 n);
			return -EINVAL;
		}
	}
	if (mkdir(rootfs, 0711) < 0 && errno != EEXIST) {
		r = -errno;
		if (st)
			ttrpc_status_set(st, ttrpc_code_from_errno(r), "mount rootfs: create %s: %s",
					 bundle_quote(q, sizeof(q), rootfs), strerror(-r));
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		struct component c = {.m = mounts[i], .index = i, .count = n, .rootfs = rootfs};
		r = mount_component(&c, st);
		if (r < 0) {
			bundle_unmount_rootfs(bundle_path);
			return r;
		}
	}
	return 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
	char *w = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*w++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 3;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
}

/* Detaches whatever is mounted at or below dir (a canonical path), deepest
 * and latest first. Returns how many mount points it found, or -errno. */
static int sweep_once(const char *dir)
{
	char *buf, **points = NULL;
	size_t len, n = 0, cap = 0, dl = strlen(dir);
	int r = bundle_read_file(AT_FDCWD, "/proc/self/mountinfo", &buf, &len, MOUNTINFO_MAX);
	if (r < 0)
		return r;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		/* mount ID, parent ID, major:minor, root, mount point, ... */
		char *field = line;
		for (int i = 0; i < 4 && field; i++) {
			field = strchr(field, ' ');
			if (field)
				field++;
		}
		if (!field)
			continue;
		char *end = strchr(field, ' ');
		if (end)
			*end = '\0';
		unescape(field);
		if (strncmp(field, dir, dl) != 0 || (field[dl] != '\0' && field[dl] != '/'))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **np = realloc(points, ncap * sizeof(*np));
			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			points = np;
			cap = ncap;
		}
		points[n++] = field;
	}
	for (size_t i = n; i-- > 0;) {
		if (umount2(points[i], MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL &&
		    errno != ENOENT) {
			r = -errno;
			goto out;
		}
	}
	r = n > INT_MAX ? INT_MAX : (int)n;
out:
	free(points);
	free(buf);
	return r;
}

int bundle_unmount_rootfs(const char *bundle_path)
{
	char rootfs[PATH_MAX], canon[PATH_MAX];
	struct stat st;
	int r = rootfs_path(bundle_path, rootfs, sizeof(rootfs));
	if (r < 0)
		return r;
	if (lstat(rootfs, &st) < 0)
		return errno == ENOENT ? 0 : -errno;

	/* the stack on rootfs itself, as containerd's UnmountAll does it */
	for (int i = 0;; i++) {
		if (i == UNMOUNT_MAX_LAYERS)
			return -EBUSY;
		if (umount2(rootfs, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			break;
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;

	/* mounts on targets inside rootfs when rootfs itself was not one */
	if (!realpath(rootfs, canon))
		return errno == ENOENT ? 0 : -errno;
	for (int round = 0; round < SWEEP_ROUNDS; round++) {
		r = sweep_once(canon);
		if (r <= 0)
			return r;
	}
	return -EBUSY;
}
