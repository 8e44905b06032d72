/* File helpers for the cgroup library (see cgroup_file.h). */
#include "cgroup_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* getdents64 buffer: a cgroup directory holds a few dozen short names. */
#define DIRENT_BUF 2048

static int open_at(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int cgroup_file_lines(int dirfd, const char *name, cgroup_line_fn fn, void *ctx)
{
	size_t cap = 1024, have = 0, start;
	bool eof = false;
	char *buf, *nl;
	ssize_t n;
	int fd, r = 0;

	fd = open_at(dirfd, name, O_RDONLY);
	if (fd < 0)
		return fd;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (!eof) {
		if (have == cap - 1) {
			char *nbuf;

			if (cap >= CGROUP_LINE_MAX) {
				r = -EOVERFLOW;
				break;
			}
			nbuf = realloc(buf, cap * 2);
			if (!nbuf) {
				r = -ENOMEM;
				break;
			}
			buf = nbuf;
			cap *= 2;
		}
		n = read_retry(fd, buf + have, cap - 1 - have);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0)
			eof = true;
		have += (size_t)n;
		start = 0;
		while ((nl = memchr(buf + start, '\n', have - start))) {
			*nl = '\0';
			r = fn(buf + start, ctx);
			if (r)
				goto out;
			start = (size_t)(nl - buf) + 1;
		}
		if (eof && start < have) {
			buf[have] = '\0';
			r = fn(buf + start, ctx);
			if (r)
				goto out;
			start = have;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
out:
	free(buf);
	close(fd);
	return r;
}

int cgroup_file_read(int dirfd, const char *name, char *buf, size_t size)
{
	size_t have = 0;
	ssize_t n;
	int fd;

	if (size < 2)
		return -EINVAL;
	fd = open_at(dirfd, name, O_RDONLY);
	if (fd < 0)
		return fd;
	for (;;) {
		n = read_retry(fd, buf + have, size - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == size - 1) {
			char extra;

			n = read_retry(fd, &extra, 1);
			if (n > 0)
				n = -EFBIG;
			break;
		}
	}
	close(fd);
	if (n < 0)
		return (int)n;
	while (have > 0 && isspace((unsigned char)buf[have - 1]))
		have--;
	buf[have] = '\0';
	return (int)have;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int cgroup_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s[0] == '-' && all_digits(s + 1)) {
		*out = 0;
		return 0;
	}
	if (!all_digits(s))
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int cgroup_file_u64(int dirfd, const char *name, uint64_t *out)
{
	char buf[CGROUP_VALUE_MAX];
	int r = cgroup_file_read(dirfd, name, buf, sizeof(buf));

	if (r < 0)
		return r;
	return cgroup_parse_u64(buf, out);
}

int cgroup_file_u64_or_max(int dirfd, const char *name, uint64_t max_value, uint64_t *out)
{
	char buf[CGROUP_VALUE_MAX];
	int r = cgroup_file_read(dirfd, name, buf, sizeof(buf));

	if (r < 0)
		return r;
	if (strcmp(buf, "max") == 0) {
		*out = max_value;
		return 0;
	}
	return cgroup_parse_u64(buf, out);
}

int cgroup_split_kv(char *line, char **key, char **value)
{
	static const char ws[] = " \t\r\v\f";
	char *p = line + strspn(line, ws);
	char *k, *v;

	k = p;
	p += strcspn(p, ws);
	if (p == k || !*p)
		return -EINVAL;
	*p++ = '\0';
	p += strspn(p, ws);
	v = p;
	p += strcspn(p, ws);
	if (p == v)
		return -EINVAL;
	if (*p) {
		*p++ = '\0';
		if (p[strspn(p, ws)])
			return -EINVAL;
	}
	*key = k;
	*value = v;
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

int cgroup_dir_list(int dirfd, const char *name, cgroup_dirent_fn fn, void *ctx)
{
	char buf[DIRENT_BUF] __attribute__((aligned(8)));
	int fd, r = 0;
	long n;

	fd = open_at(dirfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);

			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			r = fn(d->d_name, ctx);
			if (r)
				goto out;
		}
	}
	if (n < 0)
		r = -errno;
out:
	close(fd);
	return r;
}

bool cgroup_err_missing(int err)
{
	return err == -ENOENT || err == -ENODEV;
}
