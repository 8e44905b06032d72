/* The bundle state directory (see state.h). */
#include "state.h"

#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool valid_name(const char *name)
{
	return bundle_validate_id("name", name, NULL) == 0;
}

/* opendir on dirfd/name without following a symlink. */
static DIR *open_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

enum bundle_kind bundle_classify(int dirfd)
{
	struct stat st;
	if (fstatat(dirfd, BUNDLE_ADDRESS_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size > 0)
		return BUNDLE_LIVE;
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return BUNDLE_HALF_MADE; /* unreadable: not empty for all we know */
	}
	rewinddir(d);
	enum bundle_kind kind = BUNDLE_EMPTY;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			kind = BUNDLE_HALF_MADE;
			break;
		}
	}
	closedir(d);
	return kind;
}

int bundle_state_scan(const char *state_dir, bundle_scan_fn fn, void *userdata)
{
	DIR *top = opendir(state_dir);
	if (!top)
		return -errno;
	int rc = 0;
	struct dirent *nd;
	while (rc == 0 && (nd = readdir(top))) {
		if (!valid_name(nd->d_name))
			continue;
		DIR *nsd = open_dir_at(dirfd(top), nd->d_name);
		if (!nsd)
			continue; /* a file, a symlink, gone meanwhile */
		struct dirent *bd;
		while (rc == 0 && (bd = readdir(nsd))) {
			if (!valid_name(bd->d_name))
				continue;
			int bfd = openat(dirfd(nsd), bd->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (bfd < 0)
				continue;
			struct bundle_entry e;
			/* valid ids: at most BUNDLE_ID_MAX characters */
			memcpy(e.ns, nd->d_name, strlen(nd->d_name) + 1);
			memcpy(e.id, bd->d_name, strlen(bd->d_name) + 1);
			e.kind = bundle_classify(bfd);
			rc = fn(&e, bfd, userdata);
			close(bfd);
		}
		closedir(nsd);
	}
	closedir(top);
	return rc;
}

/* Empties directory fd (on device dev) depth first; with dry set, only checks
 * that no mount sits anywhere inside (-EBUSY), removing nothing. */
static int empty_dir(int fd, dev_t dev, bool dry)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int err = errno;
		if (dfd >= 0)
			close(dfd);
		return -err;
	}
	rewinddir(d); /* the dup shares fd's offset: an earlier pass left it at the end */
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = errno == ENOENT ? 0 : -errno;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (!dry && unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
				rc = -errno;
			continue;
		}
		if (st.st_dev != dev) { /* a mount point (a rootfs still mounted) */
			rc = -EBUSY;
			break;
		}
		int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = -errno;
			break;
		}
		struct stat sst;
		if (fstat(sub, &sst) < 0 || sst.st_dev != dev) { /* bind mount on the same device? */
			close(sub);
			rc = -EBUSY;
			break;
		}
		rc = empty_dir(sub, dev, dry);
		close(sub);
		if (rc == 0 && !dry && unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0)
			rc = errno == EBUSY ? -EBUSY : -errno;
	}
	closedir(d);
	return rc;
}

int bundle_state_remove(const char *state_dir, const char *ns, const char *id)
{
	if (!valid_name(ns) || !valid_name(id))
		return -EINVAL;
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s", state_dir, ns);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	int nsfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nsfd < 0)
		return errno == ENOENT ? 0 : -errno;
	int bfd = openat(nsfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bfd < 0) {
		int err = errno;
		close(nsfd);
		return err == ENOENT ? 0 : -err;
	}
	struct stat st, nst;
	int rc = 0;
	if (fstat(bfd, &st) < 0 || fstat(nsfd, &nst) < 0)
		rc = -errno;
	else if (st.st_dev != nst.st_dev)
		rc = -EBUSY; /* the bundle itself is a mount point */
	else if ((rc = empty_dir(bfd, st.st_dev, true)) == 0) /* nothing mounted inside */
		rc = empty_dir(bfd, st.st_dev, false);
	close(bfd);
	if (rc == 0 && unlinkat(nsfd, id, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -errno;
	close(nsfd);
	return rc;
}
