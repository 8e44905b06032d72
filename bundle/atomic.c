/* Atomic writes and bounded reads of small files (see atomic.h). */
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temp names are ".<name>.<pid>.<n>"; a few tries if one is left over from a
 * crashed writer with the same pid. */
#define TEMP_TRIES 16

static int valid_component(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(int dirfd)
{
	/* dirfd may be O_PATH or AT_FDCWD, which fsync cannot take */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int write_file(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		      bool durable)
{
	static unsigned int counter;
	char tmp[NAME_MAX + 1];
	int fd = -1, r;

	if (!valid_component(name) || (len && !data))
		return -EINVAL;
	for (int i = 0; i < TEMP_TRIES; i++) {
		int n = snprintf(tmp, sizeof(tmp), ".%s.%d.%u", name, (int)getpid(), counter++);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return -ENAMETOOLONG;
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    mode & 07777);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		return -errno;

	r = write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode & 07777) < 0)
		r = -errno;
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return durable ? fsync_dir(dirfd) : 0;
}

int bundle_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
			     mode_t mode)
{
	return write_file(dirfd, name, data, len, mode, true);
}

int bundle_write_file_volatile(int dirfd, const char *name, const void *data, size_t len,
			       mode_t mode)
{
	return write_file(dirfd, name, data, len, mode, false);
}

int bundle_read_fd(int fd, size_t hint, size_t max, char **out, size_t *len)
{
	*out = NULL;
	if (len)
		*len = 0;
	if (max >= SIZE_MAX - 1)
		return -EINVAL;
	/* hint (a regular file's st_size, or 0) is where the end should be: a
	 * read that comes short there needs no second read to see EOF */
	size_t used = 0, cap = hint > 0 ? hint + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (used == cap) {
			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (hint > 0 && used >= hint && (size_t)n < cap - (used - (size_t)n))
			break;
	}
	if (used > max) {
		free(buf);
		return -EFBIG;
	}
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	return 0;
}

int bundle_read_small(int dirfd, const char *name, char *buf, size_t cap, size_t *len)
{
	*len = 0;
	if (!name || !*name || cap < 2)
		return -EINVAL;
	buf[0] = '\0';
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	ssize_t n;
	while ((n = read(fd, buf, cap - 1)) < 0 && errno == EINTR)
		;
	int err = n < 0 ? errno : 0;
	close(fd);
	if (n < 0)
		return err == EISDIR || err == EAGAIN ? -EINVAL : -err;
	if ((size_t)n == cap - 1)
		return -EFBIG;
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}

int bundle_read_file(int dirfd, const char *name, char **out, size_t *len, size_t max)
{
	struct stat st;
	*out = NULL;
	if (len)
		*len = 0;
	if (!name || !*name || max >= SIZE_MAX - 1)
		return -EINVAL;
	/* O_NONBLOCK so a FIFO planted under a file's name cannot stall us */
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	int r;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((uint64_t)st.st_size > max)
		r = -EFBIG;
	else /* st_size is a hint only: /proc files report 0, files may grow */
		r = bundle_read_fd(fd, (size_t)st.st_size, max, out, len);
	close(fd);
	return r;
}
