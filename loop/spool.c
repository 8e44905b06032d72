/* Output spool (see spool.h). Memory holds the oldest bytes, the file what
 * came after, and the tail what came after that from a source splice cannot
 * read (a pty) when the file refused it: filling goes to memory only while
 * nothing waits in the file or the tail, so draining memory, then the file,
 * then the tail keeps the order. The file is read back with pread and copied:
 * splicing its page-cache pages into a pipe and then truncating the file
 * would let a reader find them gone. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_IO_SIZE (64u << 10)
#define SPOOL_SPLICE_MAX (1u << 20)

struct spool {
	char *dir; /* NULL: memory only */
	size_t mem_max, cap;
	char *mem; /* [mem_off, mem_off + mem_len) */
	size_t mem_off, mem_len;
	int file; /* -1 until the memory overflows */
	loff_t f_off, f_end; /* the file's bytes */
	bool file_failed;    /* it could not be made: memory only from then on */
	char *tail;	     /* read, not yet written to the file */
	size_t tail_len;
	char *io; /* file to destination */
};

struct spool *spool_new(const char *dir, size_t mem_max, size_t cap)
{
	struct spool *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (dir && !(s->dir = strdup(dir))) {
		free(s);
		return NULL;
	}
	s->cap = cap;
	s->mem_max = mem_max < cap ? mem_max : cap;
	s->file = -1;
	return s;
}

void spool_free(struct spool *s)
{
	if (!s)
		return;
	if (s->file >= 0)
		close(s->file);
	free(s->dir);
	free(s->mem);
	free(s->tail);
	free(s->io);
	free(s);
}

static size_t file_len(const struct spool *s)
{
	return (size_t)(s->f_end - s->f_off);
}

size_t spool_len(const struct spool *s)
{
	return s->mem_len + file_len(s) + s->tail_len;
}

static bool file_usable(const struct spool *s)
{
	return s->dir && !s->file_failed;
}

size_t spool_room(const struct spool *s)
{
	size_t len = spool_len(s);
	if (!file_usable(s))
		return file_len(s) || s->tail_len ? 0 : s->mem_max - s->mem_len;
	return len < s->cap ? s->cap - len : 0;
}

size_t spool_cap(const struct spool *s)
{
	return s->cap;
}

size_t spool_file_len(const struct spool *s)
{
	return file_len(s) + s->tail_len;
}

/* The overflow file: unnamed where the kernel allows it, else named and
 * unlinked at once; either way it disappears with its fd. */
static int open_file(struct spool *s)
{
	if (s->file >= 0)
		return 0;
	int fd = open(s->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char path[4096];
		size_t n = strlen(s->dir);
		if (n + sizeof("/.spool.XXXXXX") > sizeof(path)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		memcpy(path, s->dir, n);
		memcpy(path + n, "/.spool.XXXXXX", sizeof("/.spool.XXXXXX"));
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		goto fail;
	s->file = fd;
	return 0;
fail:;
	int err = errno;
	s->file_failed = true;
	return -err;
}

static int flush_tail(struct spool *s)
{
	while (s->tail_len) {
		ssize_t w = pwrite(s->file, s->tail, s->tail_len, s->f_end);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		s->f_end += w;
		s->tail_len -= (size_t)w;
		memmove(s->tail, s->tail + w, s->tail_len);
	}
	return 0;
}

static ssize_t fill_mem(struct spool *s, int fd, size_t room)
{
	if (!s->mem && !(s->mem = malloc(s->mem_max)))
		return -ENOMEM;
	if (s->mem_off) {
		memmove(s->mem, s->mem + s->mem_off, s->mem_len);
		s->mem_off = 0;
	}
	size_t want = s->mem_max - s->mem_len;
	if (want > room)
		want = room;
	ssize_t n = read(fd, s->mem + s->mem_len, want);
	if (n < 0)
		return -errno;
	s->mem_len += (size_t)n;
	return n;
}

static ssize_t fill_file(struct spool *s, int fd, size_t room)
{
	int rc = open_file(s);
	if (rc < 0)
		return rc;
	if (s->tail_len && (rc = flush_tail(s)) < 0)
		return rc;
	size_t want = room < SPOOL_SPLICE_MAX ? room : SPOOL_SPLICE_MAX;
	ssize_t n = splice(fd, NULL, s->file, &s->f_end, want, SPLICE_F_NONBLOCK);
	if (n >= 0)
		return n;
	if (errno != EINVAL)
		return -errno;
	/* not a pipe: through the tail, which keeps what the file refuses */
	if (!s->tail && !(s->tail = malloc(SPOOL_IO_SIZE)))
		return -ENOMEM;
	if (want > SPOOL_IO_SIZE)
		want = SPOOL_IO_SIZE;
	n = read(fd, s->tail, want);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	s->tail_len = (size_t)n;
	(void)flush_tail(s); /* what stays in the tail is tried again */
	return n;
}

ssize_t spool_fill(struct spool *s, int fd)
{
	size_t room = spool_room(s);
	if (!room)
		return -ENOSPC;
	ssize_t n;
	do {
		if (!file_len(s) && !s->tail_len && s->mem_len < s->mem_max)
			n = fill_mem(s, fd, room);
		else
			n = fill_file(s, fd, room);
	} while (n == -EINTR);
	return n;
}

static void file_emptied(struct spool *s)
{
	if (s->f_off != s->f_end)
		return;
	/* give the pages back; the next overflow starts at 0 */
	if (ftruncate(s->file, 0) == 0)
		s->f_off = s->f_end = 0;
}

ssize_t spool_drain(struct spool *s, int fd)
{
	ssize_t w;
	if (s->mem_len) {
		do
			w = write(fd, s->mem + s->mem_off, s->mem_len);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			return -errno;
		s->mem_off += (size_t)w;
		s->mem_len -= (size_t)w;
		if (!s->mem_len)
			s->mem_off = 0;
		return w;
	}
	if (file_len(s)) {
		if (!s->io && !(s->io = malloc(SPOOL_IO_SIZE)))
			return -ENOMEM;
		size_t want = file_len(s) < SPOOL_IO_SIZE ? file_len(s) : SPOOL_IO_SIZE;
		ssize_t n;
		do
			n = pread(s->file, s->io, want, s->f_off);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		do
			w = write(fd, s->io, (size_t)n);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			return -errno;
		s->f_off += w;
		file_emptied(s);
		return w;
	}
	if (s->tail_len) {
		do
			w = write(fd, s->tail, s->tail_len);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			return -errno;
		s->tail_len -= (size_t)w;
		memmove(s->tail, s->tail + w, s->tail_len);
		return w;
	}
	return 0;
}
